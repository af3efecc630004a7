package turnserver

import (
	"bytes"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/metrics"
)

// TestDataPlaneFastPath checks that ChannelData goes through the epoll data
// plane rather than pion, that the mirror of pion's channel bindings follows
// the allocation, and that the counters stay exact.
func TestDataPlaneFastPath(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	if s.dp == nil {
		t.Fatal("no data plane on Linux")
	}
	peer := echoPeer(t)
	c, relay := allocate(t, s, "bob")
	const packets, size = 200, 100
	payload := bytes.Repeat([]byte("y"), size)
	for i := 0; i < packets; i++ {
		payload[0] = byte(i)
		roundTrip(t, relay, peer.LocalAddr(), payload)
	}
	s.dp.mu.RLock()
	routes, chans := len(s.dp.clients), 0
	for _, rt := range s.dp.clients {
		chans += len(rt.chans)
	}
	s.dp.mu.RUnlock()
	if routes != 1 || chans != 1 {
		t.Errorf("mirror: %d allocations, %d channels; want 1, 1", routes, chans)
	}
	// pion's client sends Send indications until its ChannelBind succeeds;
	// after that everything must take the fast path.
	if slow := s.dp.slow.Load(); slow > packets/2 {
		t.Errorf("%d of %d datagrams went through pion", slow, 2*packets)
	}
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	c.close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.dp.mu.RLock()
	left := len(s.dp.clients) + len(s.dp.relays)
	s.dp.mu.RUnlock()
	if left != 0 {
		t.Errorf("mirror keeps %d entries after Close", left)
	}
	for _, dir := range []string{metrics.DirectionClientToPeer, metrics.DirectionPeerToClient} {
		if got := testutil.ToFloat64(m.RelayBytes.WithLabelValues(dir)); got != packets*size {
			t.Errorf("bytes %s = %v, want %d", dir, got, packets*size)
		}
		if got := testutil.ToFloat64(m.RelayPackets.WithLabelValues(dir)); got != packets {
			t.Errorf("packets %s = %v, want %d", dir, got, packets)
		}
	}
}

// TestPortableRelay runs the relay the way non-Linux systems do, through
// pion's goroutines and net.UDPConn only.
func TestPortableRelay(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.DisableDataPlane = true })
	if s.dp != nil {
		t.Fatal("data plane running in portable mode")
	}
	peer := echoPeer(t)
	c, relay := allocate(t, s, "carol")
	if _, ok := relay.LocalAddr().(*net.UDPAddr); !ok {
		t.Fatalf("relay address %v", relay.LocalAddr())
	}
	const packets, size = 20, 300
	payload := bytes.Repeat([]byte("z"), size)
	for i := 0; i < packets; i++ {
		payload[0] = byte(i)
		roundTrip(t, relay, peer.LocalAddr(), payload)
	}
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	c.close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.RelayPackets.WithLabelValues(metrics.DirectionPeerToClient)); got != packets {
		t.Errorf("packets peer_to_client = %v, want %d", got, packets)
	}
}
