package turnserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/turnserver/internal/dataplane"
)

// TestDataPlaneFastPath checks that ChannelData goes through the epoll data
// plane rather than pion, that the mirror of pion's channel bindings follows
// the allocation, and that the counters stay exact.
func TestDataPlaneFastPath(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	dp := s.dataPlane()
	if dp == nil {
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
	mirror, _ := dp.Mirror()
	routes, chans := len(mirror), 0
	for _, rt := range mirror {
		chans += len(rt.Chans)
	}
	if routes != 1 || chans != 1 {
		t.Errorf("mirror: %d allocations, %d channels; want 1, 1", routes, chans)
	}
	// pion's client sends Send indications until its ChannelBind succeeds;
	// after that everything must take the fast path.
	if slow := dp.Stats().ToPion; slow > packets/2 {
		t.Errorf("%d of %d datagrams went through pion", slow, 2*packets)
	}
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	c.close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mirror, relays := dp.Mirror()
	if left := len(mirror) + relays; left != 0 {
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
	if s.dataPlane() != nil {
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
			dataplane.SysSocket = func(domain, typ, proto int) (int, error) {
				if domain == unix.AF_INET6 {
					tries6.Add(1)
					if tc.socketErr != nil {
						return -1, tc.socketErr
					}
				}
				return unix.Socket(domain, typ, proto)
			}
			dataplane.SysBind = func(fd int, sa unix.Sockaddr) error {
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
			defer func() { dataplane.SysSocket, dataplane.SysBind = unix.Socket, unix.Bind }()
			// With port 0, a TCP listener that collides with the UDP port
			// makes the server start over (listen): one IPv6 try per
			// attempt, not one per socket.
			var attempts atomic.Int32
			listenTCP = func(network, addr string) (net.Listener, error) {
				attempts.Add(1)
				return net.Listen(network, addr)
			}
			defer func() { listenTCP = net.Listen }()
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
			if n := attempts.Load(); tries6.Load() != n || strings.Count(logs.String(), "no IPv6") != int(n) {
				t.Errorf("%d IPv6 sockets tried in %d attempts, log:\n%s\nwant one try per attempt, logged once each", tries6.Load(), n, &logs)
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

// TestChannelDataRightAfterBind: pion mirrors a channel into the data plane
// before it answers the ChannelBind (TestPionEventsBeforeAnswers pins that),
// so ChannelData a client sends the moment it has the answer, and the
// peer's reply, take the fast path: nothing more is passed on to pion.
func TestChannelDataRightAfterBind(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	dp := s.dataPlane()
	peer := echoPeer(t).LocalAddr().(*net.UDPAddr)
	c, _ := rawAllocate(t, s, "eager")
	const ch = 0x4000
	resp, err := c.do(stun.MethodChannelBind, xorPeer(peer.IP, peer.Port), channelNumber(ch))
	wantSuccess(t, "ChannelBind", resp, err)
	before := dp.Stats().ToPion
	payload := []byte("right after the answer")
	c.sendChannelData(ch, payload)
	got := c.read()
	if len(got) < 4 || binary.BigEndian.Uint16(got) != ch ||
		!bytes.Equal(got[4:min(len(got), 4+int(binary.BigEndian.Uint16(got[2:])))], payload) {
		t.Fatalf("echo through the relay: got %q, want ChannelData %#x %q", got, ch, payload)
	}
	if after := dp.Stats().ToPion; after != before {
		t.Errorf("%d datagrams passed on to pion after the ChannelBind answer, want 0", after-before)
	}
}
