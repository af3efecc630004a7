package turnserver

import (
	"bytes"
	"math"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

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

// TestEpollEventIDs: socket ids use all 64 bits of epoll_data, on every
// architecture's layout of unix.EpollEvent, and the stop sentinel is not an
// id, even once the counter wraps.
func TestEpollEventIDs(t *testing.T) {
	t.Parallel()
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	evfd, err := unix.Eventfd(1, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK) // always readable
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(evfd)
	op := unix.EPOLL_CTL_ADD
	for _, id := range []uint64{dpStopID, 1, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<32 + 1, 0xdeadbeef_cafef00d, math.MaxUint64} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN}
		setEventID(&ev, id)
		if err := unix.EpollCtl(epfd, op, evfd, &ev); err != nil {
			t.Fatal(err)
		}
		op = unix.EPOLL_CTL_MOD
		var got [1]unix.EpollEvent
		if n, err := unix.EpollWait(epfd, got[:], 5000); n != 1 || err != nil {
			t.Fatalf("epoll_wait: %d events, %v", n, err)
		}
		if back := eventID(&got[0]); back != id {
			t.Errorf("id %#x came back from epoll as %#x", id, back)
		}
	}

	var dp dataPlane
	if id := dp.newID(); id != 1 {
		t.Errorf("first id %d, want 1", id)
	}
	dp.ids.Store(math.MaxUint64 - 1)
	for range 3 {
		if id := dp.newID(); id == dpStopID {
			t.Fatal("newID returned the stop sentinel after wrapping")
		}
	}
}

// TestDataPlaneIDAbove32Bits relays through a socket whose id needs more
// than 32 bits: the worker must find it from its epoll event.
func TestDataPlaneIDAbove32Bits(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	s.dp.ids.Store(1<<32 + 7) // listeners have small ids; the relay socket gets 1<<32+8
	peer := echoPeer(t)
	_, relay := allocate(t, s, "wide")
	s.dp.mu.RLock()
	var id uint64
	for _, c := range s.dp.relays {
		id = c.id
	}
	s.dp.mu.RUnlock()
	if id <= 1<<32 {
		t.Fatalf("relay socket id %#x, want above 2^32", id)
	}
	roundTrip(t, relay, peer.LocalAddr(), []byte("wide id"))
}
