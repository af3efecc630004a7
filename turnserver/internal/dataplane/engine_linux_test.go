package dataplane

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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
	for _, id := range []uint64{stopID, 1, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<32 + 1, 0xdeadbeef_cafef00d, math.MaxUint64} {
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

	var e Engine
	if id := e.newID(); id != 1 {
		t.Errorf("first id %d, want 1", id)
	}
	e.ids.Store(math.MaxUint64 - 1)
	for range 3 {
		if id := e.newID(); id == stopID {
			t.Fatal("newID returned the stop sentinel after wrapping")
		}
	}
}

// TestEngineRelays drives the engine alone, as the relay's pion hooks
// would: a listener and a relay socket, one allocation with one channel.
// ChannelData from the client must reach the peer from the relay socket,
// the peer's answer the client as ChannelData, both counted, and none of it
// passed on to pion. The relay socket's id needs more than 32 bits: the
// worker must find it from its epoll event.
func TestEngineRelays(t *testing.T) {
	t.Parallel()
	toPeer, toClient := make(chan [2]int, 1), make(chan [2]int, 1)
	e, err := New(Config{
		PublicIP: netip.MustParseAddr("127.0.0.1"),
		ToPeer:   func(p, b int) { toPeer <- [2]int{p, b} },
		ToClient: func(p, b int) { toClient <- [2]int{p, b} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)     // after the sockets' cleanups
	e.ids.Store(1<<32 + 7) // the listener gets 1<<32+8, the relay socket 1<<32+9
	lc, err := e.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	rc, err := e.BindRelay(netip.MustParseAddr("127.0.0.1"), 0, func(int) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	if id := rc.(*socket).id; id <= 1<<32 {
		t.Fatalf("relay socket id %#x, want above 2^32", id)
	}
	client, peer := udpSocket(t), udpSocket(t)
	clientAddr, peerAddr := client.LocalAddr().(*net.UDPAddr).AddrPort(), peer.LocalAddr().(*net.UDPAddr).AddrPort()
	relayAddr := rc.LocalAddr().(*net.UDPAddr).AddrPort()
	e.AllocationCreated(clientAddr, int(relayAddr.Port()))
	e.ChannelCreated(clientAddr, 0x4000, peerAddr)

	msg := []byte{0x40, 0x00, 0, 7, 'w', 'i', 'd', 'e', ' ', 'i', 'd', 0}
	if _, err := client.WriteToUDPAddrPort(msg, lc.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	got, from := readUDP(t, peer)
	if string(got) != "wide id" || from.Port() != relayAddr.Port() {
		t.Fatalf("peer got %q from %v, want %q from the relay socket %v", got, from, "wide id", relayAddr)
	}
	if c := <-toPeer; c != [2]int{1, 7} {
		t.Errorf("counted to peers: %v, want 1 datagram, 7 bytes", c)
	}
	if _, err := peer.WriteToUDPAddrPort([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	got, _ = readUDP(t, client)
	if len(got) != 8 || binary.BigEndian.Uint16(got) != 0x4000 || binary.BigEndian.Uint16(got[2:]) != 4 ||
		string(got[4:]) != "back" {
		t.Fatalf("client got %q, want ChannelData 0x4000 %q", got, "back")
	}
	if c := <-toClient; c != [2]int{1, 4} {
		t.Errorf("counted to clients: %v, want 1 datagram, 4 bytes", c)
	}
	if st := e.Stats(); st != (Stats{}) {
		t.Errorf("stats %+v: something went to pion or hairpinned", st)
	}
}

func udpSocket(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readUDP returns the next datagram on c, failing the test if none comes
// within 5 s.
func readUDP(t *testing.T, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 2048)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n], from
}
