package dataplane

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkFastPath runs one 200-byte datagram through the fast path per
// operation, on the calling goroutine with a worker of its own: the routing
// decision and its locking, the bandwidth check and, unless -nosend, the
// sendto to a socket nobody reads (the kernel drops what does not fit). The
// mirror's lock was measured with it (docs/BENCHMARKS.md).
func BenchmarkFastPath(b *testing.B) {
	e, err := New(Config{PublicIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Close) // after the sockets' cleanups
	lc, err := e.ListenUDP("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = lc.Close() })
	rc, err := e.BindRelay(netip.MustParseAddr("127.0.0.1"), 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rc.Close() })
	client, peer := sink(b), sink(b)
	// A thousand other allocations and a few channels, as on a busy relay.
	e.mu.Lock()
	for i := range 1000 {
		e.clients[netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 5000)] =
			&route{chans: map[uint16]netip.AddrPort{0x4000: peer}}
	}
	e.mu.Unlock()
	e.AllocationCreated(client, rc.LocalAddr().(*net.UDPAddr).Port)
	for n := range uint16(8) {
		e.ChannelCreated(client, 0x4000+n, netip.AddrPortFrom(peer.Addr(), peer.Port()+n))
	}
	ls, relay := lc.(*socket), rc.(*socket)
	payload := make([]byte, 200)
	msg := append([]byte{0x40, 0x00, 0, byte(len(payload))}, payload...)

	for _, send := range []bool{true, false} {
		suffix := ""
		if !send {
			suffix = "-nosend"
		}
		b.Run("client-to-peer"+suffix, func(b *testing.B) {
			w := idleWorker(b, e)
			buf := make([]byte, bufSize)
			for b.Loop() {
				n := copy(buf, msg)
				w.fromClient(ls, buf[:n], client)
				w.done(send)
			}
		})
		b.Run("peer-to-client"+suffix, func(b *testing.B) {
			w := idleWorker(b, e)
			buf := make([]byte, bufSize)
			for b.Loop() {
				n := copy(buf[4:], payload)
				w.fromPeer(relay, buf[:4+n], peer)
				w.done(send)
			}
		})
	}
	// Workers on several CPUs routing at once share the mirror's lock.
	b.Run("client-to-peer-nosend-parallel", func(b *testing.B) {
		// RunParallel starts GOMAXPROCS goroutines.
		workers := make([]*worker, runtime.GOMAXPROCS(0))
		for i := range workers {
			workers[i] = idleWorker(b, e)
		}
		var next atomic.Int32
		b.RunParallel(func(pb *testing.PB) {
			w := workers[next.Add(1)-1]
			buf := make([]byte, bufSize)
			for pb.Next() {
				n := copy(buf, msg)
				w.fromClient(ls, buf[:n], client)
				w.done(false)
			}
		})
	})
	if st := e.Stats(); st.ToPion != 0 {
		b.Fatalf("%d datagrams went to pion", st.ToPion)
	}
}

// idleWorker returns a worker of e that no goroutine runs: the caller owns
// its buffers.
func idleWorker(b *testing.B, e *Engine) *worker {
	w, err := newWorker(e)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = unix.Close(w.epfd)
		_ = unix.Close(w.evfd)
	})
	return w
}

// done sends what the worker queued, or forgets it.
func (w *worker) done(send bool) {
	if send {
		w.flush()
		return
	}
	clear(w.out[:w.nout])
	w.nout = 0
}

// sink is a UDP socket on loopback that nobody reads: the kernel drops what
// its buffer does not take.
func sink(b *testing.B) netip.AddrPort {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}
