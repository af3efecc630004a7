// Package dataplane is the TURN relay's Linux data plane: it relays
// ChannelData between clients and peers without going through pion's
// goroutines.
//
// Why: with Go's netpoller every datagram readies a goroutine (pion's
// listener read loop or an allocation's relay read loop), and readying a
// goroutine while a P is idle wakes a second OS thread to look for more work
// (futex wake, spin, futex sleep). On a relay that forwards one small packet
// per wake-up that scheduler traffic cost more kernel time than the
// recvfrom/sendto doing the work; it was the whole CPU gap to coturn.
//
// So the UDP listener and relay sockets are plain non-blocking sockets that
// the Go runtime does not know about. A few worker goroutines each block in
// epoll_wait on their share of them (level-triggered), drain a ready socket
// with one recvmmsg and forward ChannelData straight to the other socket,
// one sendmmsg per destination socket and batch. A worker returning from
// epoll_wait reclaims its own P without involving the scheduler, so a packet
// costs at most three system calls and no thread wake-ups. ChannelData to
// another allocation's relayed address on this server skips the two relay
// sockets altogether (see hairpinLocked).
//
// pion stays in charge of everything else: every datagram the fast path does
// not handle (STUN requests, Send indications, data from peers without a
// channel, ChannelData for unknown channels) is queued to the socket's
// net.PacketConn face, which pion reads as before. The fast path only
// forwards on channel bindings pion created, which the caller mirrors into
// the Engine from pion's event hooks (AllocationCreated, ChannelCreated, ...),
// and applies the caller's bandwidth checks and counters (Config, BindRelay)
// as pion's path does.
//
// The Engine knows nothing of the relay that uses it: it gets plain values
// and hooks. Elsewhere than on Linux, Supported is false and New fails; the
// relay then leaves every socket to pion.
package dataplane

import (
	"log/slog"
	"net/netip"
)

// Config is what the engine needs from the relay.
type Config struct {
	// PublicIP is the address the relay advertises in relayed addresses,
	// OwnAddrs the addresses of this host. A datagram a client sends
	// through its relay socket to PublicIP, to a relay socket's bound
	// address, or (for relay sockets bound to a wildcard) to one of
	// OwnAddrs, on the port of another relay socket of this engine, is
	// delivered relay to relay instead of through the kernel.
	PublicIP netip.Addr
	OwnAddrs []netip.Addr
	// ListenBuffer and RelayBuffer are the kernel buffer sizes
	// (SO_RCVBUF, SO_SNDBUF) asked for listener and relay sockets.
	ListenBuffer, RelayBuffer int
	// ToPeer and ToClient count the datagrams the engine relayed itself and
	// their payload bytes, sent to peers and to clients; nil counts
	// nothing. They are called from the workers, once per batch.
	ToPeer, ToClient func(packets, bytes int)
	// Logger gets the IPv4 fallback of a listener and worker failures; nil
	// discards them.
	Logger *slog.Logger
}

// Stats counts datagrams the engine did not relay the plain way, for tests.
type Stats struct {
	ToPion   int64 // passed on to pion
	Hairpins int64 // delivered relay to relay
}

// Route is the mirror of one UDP allocation, as Mirror reports it.
type Route struct {
	RelayPort int
	Chans     map[uint16]netip.AddrPort // channel number -> peer
	Peers     map[netip.AddrPort]uint16 // peer -> channel number
	// Linked: the relay socket hands its peers' datagrams to this route.
	Linked bool
}
