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
	// pion asks for "udp4" (relays are IPv4), which both engines open.
	conn, err := g.bind(requestedPort, rc)
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

// bind opens the relay socket through the engine, in the port range.
func (g *relayGenerator) bind(requestedPort int, rc *relayConn) (net.PacketConn, error) {
	// The data plane relays past rc and asks it about the bandwidth caps.
	allow := func(n int) bool { return g.s.allowBytes(rc.lim, n) }
	open := func(port int) (net.PacketConn, error) {
		return g.s.engine.BindRelay(g.bindIP, port, allow)
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
