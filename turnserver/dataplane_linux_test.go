package turnserver

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
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

// mirroredChannel reports whether the data plane forwards ChannelData on
// channel num of the UDP client at client.
func mirroredChannel(s *Server, client netip.AddrPort, num uint16) bool {
	s.dp.mu.RLock()
	defer s.dp.mu.RUnlock()
	rt := s.dp.clients[client]
	if rt == nil {
		return false
	}
	_, ok := rt.chans[num]
	return ok
}

// TestListenFallsBackToIPv4: where the kernel has no IPv6 (booted with
// ipv6.disable=1, so socket(AF_INET6) fails with EAFNOSUPPORT) or cannot
// bind ::, the wildcard listener is an IPv4 socket instead, tried and logged
// once however many sockets share the port; a port in use is no reason to
// fall back. A network namespace cannot take IPv6 out of the kernel, so the
// failures are injected. Not parallel: it replaces package hooks.
func TestListenFallsBackToIPv4(t *testing.T) {
	for _, tc := range []struct {
		name       string
		socketErr  error // for socket(AF_INET6)
		bindErr    error // for bind(::)
		fallBackOK bool
	}{
		{name: "no-af-inet6", socketErr: unix.EAFNOSUPPORT, fallBackOK: true},
		{name: "no-protocol", socketErr: unix.EPROTONOSUPPORT, fallBackOK: true},
		{name: "bind-unavailable", bindErr: unix.EADDRNOTAVAIL, fallBackOK: true},
		{name: "bind-in-use", bindErr: unix.EADDRINUSE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tries6, binds4 atomic.Int32
			sysSocket = func(domain, typ, proto int) (int, error) {
				if domain == unix.AF_INET6 {
					tries6.Add(1)
					if tc.socketErr != nil {
						return -1, tc.socketErr
					}
				}
				return unix.Socket(domain, typ, proto)
			}
			sysBind = func(fd int, sa unix.Sockaddr) error {
				switch a := sa.(type) {
				case *unix.SockaddrInet6:
					if tc.bindErr != nil && a.Addr == [16]byte{} {
						return tc.bindErr
					}
				case *unix.SockaddrInet4:
					if a.Addr == [4]byte{} && a.Port != 0 {
						binds4.Add(1) // a listener, not a relay
					}
				}
				return unix.Bind(fd, sa)
			}
			defer func() { sysSocket, sysBind = unix.Socket, unix.Bind }()
			var logs bytes.Buffer
			cfg := Config{ListenAddr: ":0", Secrets: [][]byte{testSecret}, Sockets: 3,
				AllowLoopbackPeers: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			s, err := New(cfg)
			if !tc.fallBackOK {
				if err == nil {
					_ = s.Close()
					t.Fatal("New succeeded")
				}
				if !errors.Is(err, unix.EADDRINUSE) || binds4.Load() != 0 {
					t.Fatalf("New: %v after %d IPv4 binds; want EADDRINUSE and no IPv4 fallback", err, binds4.Load())
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close()
			if tries6.Load() != 1 || strings.Count(logs.String(), "no IPv6") != 1 {
				t.Errorf("%d IPv6 sockets tried, log:\n%s\nwant one try, logged once", tries6.Load(), &logs)
			}
			for _, c := range s.udp {
				if a := c.LocalAddr().(*net.UDPAddr); a.IP.To4() == nil || !a.IP.IsUnspecified() {
					t.Errorf("listener on %v, want 0.0.0.0", a)
				}
			}
			peer := echoPeer(t)
			checkUDPClient(t, s, netip.MustParseAddr("127.0.0.1"), "v4only", peer.LocalAddr().(*net.UDPAddr))
			checkTCPClient(t, s, netip.MustParseAddr("127.0.0.1"), "v4only", peer.LocalAddr())
		})
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
