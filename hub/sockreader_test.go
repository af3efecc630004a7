package hub_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/proto"
)

// wrappedListener hands out connections that are not *net.TCPConn, as TLS
// and the PROXY protocol do: the hub then reads them through their own Read
// instead of the socket's RawConn.
type wrappedListener struct{ net.Listener }

type wrappedConn struct{ net.Conn }

func (l wrappedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c}, nil
}

// eachListener runs f as a parallel subtest against a hub on each of the
// two ways the hub reads a connection: a bare TCP socket and a wrapped one.
func eachListener(t *testing.T, cfg hub.Config, f func(t *testing.T, th *testHub)) {
	for _, l := range []struct {
		name string
		wrap func(net.Listener) net.Listener
	}{
		{"bare", nil},
		{"wrapped", func(l net.Listener) net.Listener { return wrappedListener{l} }},
	} {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			f(t, startHubOn(t, cfg, l.wrap))
		})
	}
}

// writeSplit writes b in pieces cut at the given offsets, each its own
// write (TCP_NODELAY: on loopback they mostly arrive apart).
func (r *rawConn) writeSplit(b []byte, cuts ...int) {
	r.t.Helper()
	prev := 0
	for _, c := range append(cuts, len(b)) {
		if err := r.write(b[prev:c]); err != nil {
			r.t.Fatal(err)
		}
		prev = c
	}
}

// expectFrame reads the hub's next frame, which must have opcode op; for a
// text frame it returns the decoded protocol frame.
func (r *rawConn) expectFrame(op byte) (rawFrame, proto.Frame) {
	r.t.Helper()
	f, err := r.read()
	if err != nil {
		r.t.Fatalf("reading: %v", err)
	}
	if f.opcode != op {
		r.t.Fatalf("got opcode %#x (%q), want %#x", f.opcode, f.payload, op)
	}
	var pf proto.Frame
	if op == opText {
		if pf, err = proto.DecodeFrame(f.payload); err != nil {
			r.t.Fatal(err)
		}
	}
	return f, pf
}

// TestIdleConnectionReadsOn drives the hub's reader through what an idle
// connection meets between messages: control frames alone, split across
// writes, in bursts with a message, between the fragments of a message,
// and the hub's own heartbeat. After each, messages must still be read
// from where the last one ended (the reader returns to its idle wait after
// every control frame; see sockReader).
func TestIdleConnectionReadsOn(t *testing.T) {
	t.Parallel()
	eachListener(t, hub.Config{PingInterval: 20 * time.Millisecond, PongTimeout: 10 * time.Second}, func(t *testing.T, th *testHub) {
		c := rawDial(t, th)
		create := frame(opText, []byte(`{"type":"create","version":3}`))
		ping := frame(opPing, []byte("are you there"))

		// A ping cut inside its header, its mask and its payload.
		c.writeSplit(ping, 1, 4, 8)
		c.expectPongOrPing(t, "are you there")
		// An unsolicited pong, then a message cut everywhere.
		c.writeSplit(frame(opPong, []byte("unasked")))
		c.writeSplit(create, 1, 2, 6, 7, len(create)-1)
		_, created := c.expectTextSkippingPings(t)
		if created.Type != proto.TypeCreated {
			t.Fatalf("got %+v, want created", created)
		}
		// A ping and a message in one write.
		c.writeSplit(append(frame(opPing, []byte("both")), frame(opText, []byte(`{"type":"nonsense"}`))...))
		c.expectPongOrPing(t, "both")
		if _, f := c.expectTextSkippingPings(t); f.Type != proto.TypeError || f.Code != proto.CodeUnknownType {
			t.Fatalf("got %+v, want an unknown_type error", f)
		}
		// Two short messages in one write: coder/websocket's read buffer
		// (16 bytes) must not keep the second once the first is read.
		c.writeSplit(append(frame(opText, []byte(`{}`)), frame(opText, []byte(`{}`))...))
		for range 2 {
			if _, f := c.expectTextSkippingPings(t); f.Type != proto.TypeError {
				t.Fatalf("got %+v, want an error", f)
			}
		}
		// A fragmented message with a ping between its fragments.
		msg := []byte(`{"type":"nonsense","room":"x"}`)
		first := frame(opText, msg[:7])
		first[0] &^= 0x80 // not the last fragment
		c.writeSplit(first)
		c.writeSplit(frame(opPing, []byte("mid")))
		c.writeSplit(frame(opCont, msg[7:]), 3)
		c.expectPongOrPing(t, "mid")
		if _, f := c.expectTextSkippingPings(t); f.Type != proto.TypeError {
			t.Fatalf("got %+v, want an error", f)
		}
		// Several rounds of the hub's heartbeat, answered, then a message.
		for range 5 {
			c.answerHubPing(t)
		}
		c.writeSplit(frame(opText, []byte(`{"type":"nonsense"}`)), 1)
		if _, f := c.expectTextSkippingPings(t); f.Type != proto.TypeError {
			t.Fatalf("got %+v, want an error", f)
		}
	})
}

// expectPongOrPing reads frames, answering the hub's pings, until the pong
// carrying payload.
func (r *rawConn) expectPongOrPing(t *testing.T, payload string) {
	t.Helper()
	for {
		f, err := r.read()
		if err != nil {
			t.Fatalf("waiting for pong %q: %v", payload, err)
		}
		switch {
		case f.opcode == opPing:
			if err := r.write(frame(opPong, f.payload)); err != nil {
				t.Fatal(err)
			}
		case f.opcode == opPong && string(f.payload) == payload:
			return
		default:
			t.Fatalf("got opcode %#x (%q) waiting for pong %q", f.opcode, f.payload, payload)
		}
	}
}

// expectTextSkippingPings answers the hub's pings until a text frame comes.
func (r *rawConn) expectTextSkippingPings(t *testing.T) (rawFrame, proto.Frame) {
	t.Helper()
	for {
		f, err := r.read()
		if err != nil {
			t.Fatalf("waiting for a text frame: %v", err)
		}
		if f.opcode == opPing {
			if err := r.write(frame(opPong, f.payload)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if f.opcode != opText {
			t.Fatalf("got opcode %#x (%q), want text", f.opcode, f.payload)
		}
		pf, err := proto.DecodeFrame(f.payload)
		if err != nil {
			t.Fatal(err)
		}
		return f, pf
	}
}

// answerHubPing waits for the hub's next ping and answers it, the pong cut
// in two.
func (r *rawConn) answerHubPing(t *testing.T) {
	t.Helper()
	f, _ := r.expectFrame(opPing)
	r.writeSplit(frame(opPong, f.payload), 3)
}

// TestCloseHandshakeFromIdle: the hub closes connections that wait between
// messages (a drain), and the close handshake completes: the client's close
// frame reaches coder/websocket although the idle wait took it off the
// socket. A lost one would hold Shutdown for coder/websocket's 5 s.
func TestCloseHandshakeFromIdle(t *testing.T) {
	t.Parallel()
	eachListener(t, hub.Config{}, func(t *testing.T, th *testHub) {
		conns := make([]*rawConn, 3)
		for i := range conns {
			conns[i] = rawDial(t, th)
			conns[i].writeSplit(frame(opText, []byte(`{"type":"create","version":3}`)))
			conns[i].expectFrame(opText)
		}
		done := make(chan int, len(conns))
		for _, c := range conns {
			go func() {
				_, code := c.untilClose()
				done <- code
			}()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		if err := th.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v (a close handshake did not complete)", err)
		}
		for range conns {
			if code := <-done; code != 1001 {
				t.Errorf("close code %d, want 1001", code)
			}
		}
	})
}

// TestFramesSentWithTheHandshake: a client that sends its first frames in
// the same write as its HTTP request (not waiting for the 101) is read
// from where the request ended.
func TestFramesSentWithTheHandshake(t *testing.T) {
	t.Parallel()
	eachListener(t, hub.Config{}, func(t *testing.T, th *testHub) {
		early := append(frame(opPing, []byte("early")), frame(opText, []byte(`{"type":"create","version":3}`))...)
		r := rawDialWith(t, th, early)
		r.expectPongOrPing(t, "early")
		if _, f := r.expectTextSkippingPings(t); f.Type != proto.TypeCreated {
			t.Fatalf("got %+v, want created", f)
		}
	})
}

// TestOversizedFrameHeaderFromIdle: a frame announcing a 2^63-byte payload
// after an idle wait ends the connection with a protocol error, and the
// hub goes on serving others.
func TestOversizedFrameHeaderFromIdle(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	c := rawDial(t, th)
	h := []byte{0x81, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, 1<<63)
	c.writeSplit(append(h, 0, 0, 0, 0), 2)
	if _, err := io.Copy(io.Discard, c.br); isTimeout(err) {
		t.Fatal("the hub kept a connection whose frame header is invalid")
	}
	other := rawDial(t, th)
	other.writeSplit(frame(opText, []byte(`{"type":"create","version":3}`)))
	if _, f := other.expectTextSkippingPings(t); f.Type != proto.TypeCreated {
		t.Fatalf("got %+v, want created", f)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestHeartbeatDropsAClientThatStopsAnswering: pongs keep a connection
// (many rounds, each shorter than PongTimeout, so a missed pong would show),
// and a client that then stops answering is dropped.
func TestHeartbeatDropsAClientThatStopsAnswering(t *testing.T) {
	t.Parallel()
	eachListener(t, hub.Config{PingInterval: 10 * time.Millisecond, PongTimeout: 300 * time.Millisecond}, func(t *testing.T, th *testHub) {
		c := rawDial(t, th)
		for range 50 { // 50 rounds last longer than PongTimeout
			c.answerHubPing(t)
		}
		c.writeSplit(frame(opText, []byte(`{"type":"create","version":3}`)))
		if _, f := c.expectTextSkippingPings(t); f.Type != proto.TypeCreated {
			t.Fatalf("got %+v, want created", f)
		}
		for {
			f, err := c.read()
			if isTimeout(err) {
				t.Fatal("a client that stopped answering pings was kept")
			}
			if err != nil {
				return // dropped
			}
			if f.opcode != opPing {
				t.Fatalf("got opcode %#x (%q), want pings until the end", f.opcode, f.payload)
			}
		}
	})
}
