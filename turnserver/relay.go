package turnserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/metrics"
)

// relaySocketBuffer is the kernel buffer requested for relay sockets.
const relaySocketBuffer = 1 << 20

// relayGenerator is the pion RelayAddressGenerator: it binds relay sockets
// inside the configured port range (also for EVEN-PORT and reservation
// requests, which pion's range generator lets escape it) and wraps them.
type relayGenerator struct {
	s                *Server
	bindIP, publicIP netip.Addr
	min, max         int
}

func (g *relayGenerator) Validate() error { return nil }

func (g *relayGenerator) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	s := g.s
	if n := s.relayOpen.Add(1); s.cfg.MaxAllocations > 0 && n > int64(s.cfg.MaxAllocations) {
		s.relayOpen.Add(-1)
		return nil, nil, fmt.Errorf("turnserver: %w (%d)", errGlobalQuota, s.cfg.MaxAllocations)
	}
	rc := &relayConn{s: s}
	if s.cfg.BandwidthPerAllocation > 0 {
		rc.lim = rate.NewLimiter(rate.Limit(s.cfg.BandwidthPerAllocation), burstFor(s.cfg.BandwidthPerAllocation))
	}
	conn, err := g.bind(network, requestedPort, rc)
	if err != nil {
		s.relayOpen.Add(-1)
		return nil, nil, err
	}
	rc.PacketConn = conn
	s.m.RelayPortsUsed.Set(float64(s.relayOpen.Load()))
	// Closing the relay socket makes pion delete the allocation.
	rc.timer = time.AfterFunc(s.cfg.MaxLifetime, func() { _ = rc.Close() })
	s.mu.Lock()
	s.relays[rc] = struct{}{}
	s.mu.Unlock()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	return rc, &net.UDPAddr{IP: g.publicIP.AsSlice(), Port: port}, nil
}

// bind opens the relay socket: a data-plane socket when the data plane runs,
// else a net.UDPConn.
func (g *relayGenerator) bind(network string, requestedPort int, rc *relayConn) (net.PacketConn, error) {
	open := func(port int) (net.PacketConn, error) {
		if dp := g.s.dp; dp != nil {
			return dp.bindRelay(g.bindIP, port, rc)
		}
		conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(g.bindIP, uint16(port))))
		if err != nil {
			return nil, err
		}
		_ = conn.SetReadBuffer(relaySocketBuffer)
		_ = conn.SetWriteBuffer(relaySocketBuffer)
		return conn, nil
	}
	if requestedPort != 0 {
		if requestedPort < g.min || requestedPort > g.max {
			return nil, fmt.Errorf("turnserver: requested relay port %d outside %d-%d: %w",
				requestedPort, g.min, g.max, errNoPort)
		}
		return open(requestedPort)
	}
	size := g.max - g.min + 1
	tries := min(size, 256)
	start := rand.IntN(size) //nolint:gosec // port choice needs no cryptographic randomness
	for i := 0; i < tries; i++ {
		conn, err := open(g.min + (start+i)%size)
		if err == nil {
			return conn, nil
		}
	}
	g.s.m.QuotaRejections.WithLabelValues(metrics.QuotaRelayPorts).Inc()
	return nil, fmt.Errorf("turnserver: %w in %d-%d after %d tries", errNoPort, g.min, g.max, tries)
}

func (g *relayGenerator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, fmt.Errorf("turnserver: TCP relay allocations (RFC 6062) are not supported")
}
