package turnserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/tryst-chat/tryst/turnserver/internal/dataplane"
)

// engine carries the datagrams of the UDP listener and relay sockets: the
// Linux epoll data plane (internal/dataplane), or pion's portable path
// where the data plane is switched off or not built. The Server opens its
// UDP sockets through it and tells it, from pion's event hooks, about the
// allocations and channels of UDP clients; what the data plane needs of the
// Server it gets as hooks (see newEngine), never as a pointer back.
type engine interface {
	// ListenUDP opens one UDP listener socket (SO_REUSEPORT) on addr.
	ListenUDP(addr string) (net.PacketConn, error)
	// BindRelay opens a relay socket on ip:port; allow checks each
	// datagram's payload against the allocation's bandwidth caps.
	BindRelay(ip netip.Addr, port int, allow func(n int) bool) (net.PacketConn, error)
	AllocationCreated(client netip.AddrPort, relayPort int)
	AllocationDeleted(client netip.AddrPort)
	ChannelCreated(client netip.AddrPort, number uint16, peer netip.AddrPort)
	ChannelDeleted(client netip.AddrPort, number uint16, peer netip.AddrPort)
	// Close stops the engine once the sockets it opened are closed; it is
	// idempotent.
	Close()
}

// newEngine returns the data plane where it runs, else the portable path.
func newEngine(cfg Config, own map[netip.Addr]struct{}, toPeer, toClient func(packets, bytes int)) (engine, error) {
	if cfg.DisableDataPlane || !dataplane.Supported {
		return portable{}, nil
	}
	ownAddrs := make([]netip.Addr, 0, len(own))
	for ip := range own {
		ownAddrs = append(ownAddrs, ip)
	}
	e, err := dataplane.New(dataplane.Config{
		PublicIP:     cfg.PublicIP,
		OwnAddrs:     ownAddrs,
		ListenBuffer: socketBuffer,
		RelayBuffer:  relaySocketBuffer,
		ToPeer:       toPeer,
		ToClient:     toClient,
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("turnserver: data plane: %w", err)
	}
	return e, nil
}

// portable is pion's own path: net.UDPConn sockets that pion's goroutines
// read, one per listener socket and one per allocation. It mirrors nothing.
type portable struct{}

func (portable) ListenUDP(addr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: reusePort}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	if u, ok := pc.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(socketBuffer)
		_ = u.SetWriteBuffer(socketBuffer)
	}
	return pc, nil
}

// BindRelay opens an IPv4 socket, as pion asks for ("udp4"); the relay's
// wrapper applies the bandwidth caps on this path.
func (portable) BindRelay(ip netip.Addr, port int, _ func(int) bool) (net.PacketConn, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(relaySocketBuffer)
	_ = conn.SetWriteBuffer(relaySocketBuffer)
	return conn, nil
}

func (portable) AllocationCreated(netip.AddrPort, int)                 {}
func (portable) AllocationDeleted(netip.AddrPort)                      {}
func (portable) ChannelCreated(netip.AddrPort, uint16, netip.AddrPort) {}
func (portable) ChannelDeleted(netip.AddrPort, uint16, netip.AddrPort) {}
func (portable) Close()                                                {}

// udpClient returns the address of a client whose allocation the engine
// mirrors: one over UDP. pion reports every allocation with protocol "UDP"
// (its five-tuples are UDP even over TCP and TLS); those have a TCP source.
func udpClient(src net.Addr, protocol string) (netip.AddrPort, bool) {
	u, ok := src.(*net.UDPAddr)
	if !ok || protocol != "UDP" {
		return netip.AddrPort{}, false
	}
	return u.AddrPort(), true
}

// The Server's pion event hooks call these to keep the engine's mirror.

func (s *Server) mirrorAllocation(src net.Addr, protocol string, relay net.Addr, created bool) {
	client, ok := udpClient(src, protocol)
	if !ok {
		return // allocations over TCP/TLS stay on pion's path
	}
	if !created {
		s.engine.AllocationDeleted(client)
		return
	}
	if r, ok := relay.(*net.UDPAddr); ok {
		s.engine.AllocationCreated(client, r.Port)
	}
}

func (s *Server) mirrorChannel(src net.Addr, protocol string, peer net.Addr, number uint16, created bool) {
	client, ok := udpClient(src, protocol)
	p, isUDP := peer.(*net.UDPAddr)
	if !ok || !isUDP {
		return
	}
	if created {
		s.engine.ChannelCreated(client, number, p.AddrPort())
	} else {
		s.engine.ChannelDeleted(client, number, p.AddrPort())
	}
}
