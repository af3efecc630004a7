package turnserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// The tests in this file pin what the relay assumes of pion/turn beyond its
// documented API, so that a pion upgrade that changes it fails here rather
// than as a rare lost datagram or a hang in Close. They drive pion's server
// alone over in-memory sockets inside a synctest bubble: every pion
// goroutine then blocks on a channel, and synctest.Wait returns once all of
// them have settled, without sleeping.

// TestPionReadLoops pins the read loops that Server.readers counts (see New
// and conn.go): pion starts exactly one goroutine reading each
// PacketConnConfig's socket and one accepting on each ListenerConfig's
// listener, plus one reading each accepted connection (streamConn's framing
// is not safe for two readers), and each of them stops at the first error it
// gets. Server.Close waits for readers to reach zero before it closes the
// relay sockets, so no loop may outlive its error, and none may be missing.
func TestPionReadLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pcs := []*fakePacketConn{newFakePacketConn("127.0.0.1:3478"), newFakePacketConn("127.0.0.1:3478"),
			newFakePacketConn("[::1]:3478")}
		lns := []*fakeListener{newFakeListener(), newFakeListener()}
		cfg := turn.ServerConfig{Realm: "tryst", AuthHandler: refuseAuth, LoggerFactory: quietPion()}
		for _, pc := range pcs {
			cfg.PacketConnConfigs = append(cfg.PacketConnConfigs, turn.PacketConnConfig{
				PacketConn: pc, RelayAddressGenerator: &fakeRelayGen{}})
		}
		for _, l := range lns {
			cfg.ListenerConfigs = append(cfg.ListenerConfigs, turn.ListenerConfig{
				Listener: l, RelayAddressGenerator: &fakeRelayGen{}})
		}
		srv, err := turn.NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for i, pc := range pcs {
			if calls, in := pc.calls.Load(), pc.inside.Load(); calls != 1 || in != 1 {
				t.Errorf("packet conn %d: %d ReadFrom calls, %d goroutines reading; want one read loop", i, calls, in)
			}
		}
		for i, l := range lns {
			if calls, in := l.calls.Load(), l.inside.Load(); calls != 1 || in != 1 {
				t.Errorf("listener %d: %d Accept calls, %d goroutines accepting; want one accept loop", i, calls, in)
			}
		}

		conn := newFakeConn()
		lns[0].accept <- acceptResult{conn: conn}
		synctest.Wait()
		if calls, in := lns[0].calls.Load(), lns[0].inside.Load(); calls != 2 || in != 1 {
			t.Errorf("listener 0 after an accept: %d Accept calls, %d goroutines accepting; want 2, 1", calls, in)
		}
		if calls, in := conn.calls.Load(), conn.inside.Load(); calls != 1 || in != 1 {
			t.Errorf("accepted connection: %d Read calls, %d goroutines reading; want one read loop", calls, in)
		}

		// The first error ends each loop; pion closes the connection whose
		// loop ended.
		pcs[0].in <- fakeRead{err: errors.New("read failed")}
		lns[1].accept <- acceptResult{err: errors.New("accept failed")}
		conn.in <- fakeRead{err: io.EOF}
		synctest.Wait()
		if calls, in := pcs[0].calls.Load(), pcs[0].inside.Load(); calls != 1 || in != 0 {
			t.Errorf("packet conn 0 after an error: %d ReadFrom calls, %d reading; want the loop ended", calls, in)
		}
		if calls, in := lns[1].calls.Load(), lns[1].inside.Load(); calls != 1 || in != 0 {
			t.Errorf("listener 1 after an error: %d Accept calls, %d accepting; want the loop ended", calls, in)
		}
		if calls, in, closes := conn.calls.Load(), conn.inside.Load(), conn.closes.Load(); calls != 1 || in != 0 || closes != 1 {
			t.Errorf("connection after an error: %d Read calls, %d reading, %d Close calls; want the loop ended, closed once",
				calls, in, closes)
		}

		// Close ends the others through their sockets' errors.
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for i, pc := range pcs {
			if in := pc.inside.Load(); in != 0 {
				t.Errorf("packet conn %d: %d goroutines still reading after Close", i, in)
			}
		}
		for i, l := range lns {
			if in := l.inside.Load(); in != 0 {
				t.Errorf("listener %d: %d goroutines still accepting after Close", i, in)
			}
		}
	})
}

// TestPionEventsBeforeAnswers pins the order the data plane's mirror of
// pion's allocations and channels depends on (internal/dataplane): pion
// raises OnAllocationCreated before it answers the Allocate and
// OnChannelCreated before it answers the ChannelBind, on the goroutine that
// answers, so a client that sends ChannelData as soon as it has the answer
// finds the binding mirrored and gets the fast path; a refresh of the
// binding raises no second event; an expired binding raises
// OnChannelDeleted; and a Refresh with lifetime 0 raises OnChannelDeleted
// and OnAllocationDeleted before its answer, so no route outlives the
// allocation the client was told is gone.
func TestPionEventsBeforeAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu     sync.Mutex
			events []string
		)
		record := func(format string, args ...any) {
			mu.Lock()
			events = append(events, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		const user, pass, realm = "alice", "secret", "tryst"
		pc := newFakePacketConn("127.0.0.1:3478")
		answers := make(chan *stun.Message, 1)
		pc.written = func(b []byte) {
			m := &stun.Message{Raw: append([]byte(nil), b...)}
			if err := m.Decode(); err != nil {
				t.Errorf("pion wrote something other than STUN: %v", err)
				return
			}
			record("answer %v", m.Type)
			answers <- m
		}
		srv, err := turn.NewServer(turn.ServerConfig{
			Realm: realm,
			AuthHandler: func(username, realm string, _ net.Addr) ([]byte, bool) {
				return turn.GenerateAuthKey(username, realm, pass), true
			},
			LoggerFactory: quietPion(),
			EventHandler: turn.EventHandler{
				OnAllocationCreated: func(_, _ net.Addr, _, _, _ string, _ net.Addr, _ int) {
					record("allocation created")
				},
				OnAllocationDeleted: func(_, _ net.Addr, _, _, _ string) { record("allocation deleted") },
				OnChannelCreated: func(_, _ net.Addr, _, _, _ string, _, peer net.Addr, number uint16) {
					record("channel %#x created for %v", number, peer)
				},
				OnChannelDeleted: func(_, _ net.Addr, _, _, _ string, _, peer net.Addr, number uint16) {
					record("channel %#x deleted for %v", number, peer)
				},
			},
			PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc, RelayAddressGenerator: &fakeRelayGen{}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()

		client := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}
		var nonce stun.Nonce
		request := func(method stun.Method, attrs ...stun.Setter) *stun.Message {
			t.Helper()
			setters := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)
			if nonce != nil {
				setters = append(setters, stun.NewUsername(user), stun.NewRealm(realm), nonce,
					stun.NewLongTermIntegrity(user, realm, pass))
			}
			m, err := stun.Build(append(setters, stun.Fingerprint)...)
			if err != nil {
				t.Fatal(err)
			}
			pc.in <- fakeRead{b: m.Raw, from: client}
			synctest.Wait()
			select {
			case a := <-answers:
				return a
			default:
				t.Fatalf("no answer to %v; events %q", method, events)
				return nil
			}
		}
		// happened checks that the events happened, in this order, right
		// before the last answer, which must be a success to method.
		happened := func(method stun.Method, want ...string) {
			t.Helper()
			mu.Lock()
			got := slices.Clone(events)
			events = events[:0]
			mu.Unlock()
			want = append(want, "answer "+stun.NewType(method, stun.ClassSuccessResponse).String())
			if !slices.Equal(got, want) {
				t.Errorf("%v: events %q, want %q", method, got, want)
			}
		}

		a := request(stun.MethodAllocate, requestedTransportUDP())
		if err := nonce.GetFrom(a); err != nil {
			t.Fatalf("first Allocate: %v, no nonce: %v", a.Type, err)
		}
		mu.Lock()
		events = events[:0]
		mu.Unlock()
		request(stun.MethodAllocate, requestedTransportUDP())
		happened(stun.MethodAllocate, "allocation created")
		request(stun.MethodRefresh, lifetime(1800)) // outlive the channel (pion takes 10 min for 3600 s and above)
		happened(stun.MethodRefresh)

		peer := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 7000}
		bind := func() { request(stun.MethodChannelBind, xorPeer(peer.IP, peer.Port), channelNumber(0x4000)) }
		bind()
		happened(stun.MethodChannelBind, "channel 0x4000 created for "+peer.String())
		bind()
		happened(stun.MethodChannelBind) // a refresh

		time.Sleep(10*time.Minute + time.Second) // the binding's lifetime, on the bubble's clock
		synctest.Wait()
		bind()
		happened(stun.MethodChannelBind, "channel 0x4000 deleted for "+peer.String(),
			"channel 0x4000 created for "+peer.String())

		request(stun.MethodRefresh, lifetime(0))
		happened(stun.MethodRefresh, "channel 0x4000 deleted for "+peer.String(), "allocation deleted")
	})
}

func quietPion() logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	return lf
}

func refuseAuth(string, string, net.Addr) ([]byte, bool) { return nil, false }

// fakeRead is what one ReadFrom or Read returns.
type fakeRead struct {
	b    []byte
	from net.Addr
	err  error
}

// fakePacketConn is a net.PacketConn fed through a channel. It counts
// ReadFrom calls and the goroutines inside ReadFrom.
type fakePacketConn struct {
	addr    net.Addr
	in      chan fakeRead
	written func([]byte) // nil: discard
	done    chan struct{}
	once    sync.Once

	calls, inside atomic.Int32
}

func newFakePacketConn(addr string) *fakePacketConn {
	return &fakePacketConn{addr: net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)), in: make(chan fakeRead),
		done: make(chan struct{})}
}

func (c *fakePacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.calls.Add(1)
	c.inside.Add(1)
	defer c.inside.Add(-1)
	select {
	case r := <-c.in:
		return copy(p, r.b), r.from, r.err
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakePacketConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	if c.written != nil {
		c.written(p)
	}
	return len(p), nil
}

func (c *fakePacketConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *fakePacketConn) LocalAddr() net.Addr              { return c.addr }
func (c *fakePacketConn) SetDeadline(time.Time) error      { return nil }
func (c *fakePacketConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakePacketConn) SetWriteDeadline(time.Time) error { return nil }

// fakeRelayGen hands out in-memory relay sockets.
type fakeRelayGen struct{ port atomic.Int32 }

func (g *fakeRelayGen) Validate() error { return nil }

func (g *fakeRelayGen) AllocatePacketConn(string, int) (net.PacketConn, net.Addr, error) {
	c := newFakePacketConn(fmt.Sprintf("192.0.2.1:%d", 50000+g.port.Add(1)))
	return c, c.addr, nil
}

func (g *fakeRelayGen) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errors.New("no TCP relays")
}

type acceptResult struct {
	conn net.Conn
	err  error
}

// fakeListener hands out what is sent on accept. It counts Accept calls
// and the goroutines inside Accept.
type fakeListener struct {
	accept chan acceptResult
	done   chan struct{}
	once   sync.Once

	calls, inside atomic.Int32
}

func newFakeListener() *fakeListener {
	return &fakeListener{accept: make(chan acceptResult), done: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	l.inside.Add(1)
	defer l.inside.Add(-1)
	select {
	case r := <-l.accept:
		return r.conn, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *fakeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478} }

// fakeConn is an accepted stream connection fed through a channel. It
// counts Read calls, the goroutines inside Read, and Close calls.
type fakeConn struct {
	in   chan fakeRead
	done chan struct{}
	once sync.Once

	calls, inside, closes atomic.Int32
}

func newFakeConn() *fakeConn { return &fakeConn{in: make(chan fakeRead), done: make(chan struct{})} }

func (c *fakeConn) Read(p []byte) (int, error) {
	c.calls.Add(1)
	c.inside.Add(1)
	defer c.inside.Add(-1)
	select {
	case r := <-c.in:
		return copy(p, r.b), r.err
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *fakeConn) Write(p []byte) (int, error) { return len(p), nil }

func (c *fakeConn) Close() error {
	c.closes.Add(1)
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *fakeConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478}
}

func (c *fakeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 8), Port: 40001}
}
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
