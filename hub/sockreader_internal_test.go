package hub

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// clientFrame encodes a client frame (masked, all-zero key) with the
// shortest length form unless long forces the 64-bit one.
func clientFrame(op byte, fin bool, payload []byte, long bool) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case long:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// socketPair returns a sockReader over the server end of a real loopback
// TCP connection (read through its RawConn, or, wrapped, through its own
// Read) and the client end.
func socketPair(t *testing.T, wrapped bool) (*sockReader, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	var c net.Conn = server
	if wrapped {
		c = struct{ net.Conn }{server}
	}
	s := newSockReader(c, nil)
	if (s.raw != nil) == wrapped {
		t.Fatalf("wrapped %v, raw %v", wrapped, s.raw != nil)
	}
	s.closing = new(atomic.Bool)
	return s, client
}

// readBytes reads s until it has n bytes (or more, which the caller's
// comparison then catches), in reads of at most 100 bytes.
func readBytes(t *testing.T, s *sockReader, n int) []byte {
	t.Helper()
	var got []byte
	for len(got) < n {
		got = append(got, mustRead(t, s, 100)...)
	}
	return got
}

// readResult is a Read's outcome, from a goroutine.
type readResult struct {
	b   []byte
	err error
}

func readAsync(s *sockReader, n int) chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		p := make([]byte, n)
		k, err := s.Read(p)
		ch <- readResult{p[:k], err}
	}()
	return ch
}

func mustRead(t *testing.T, s *sockReader, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	k, err := s.Read(p)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return p[:k]
}

func TestSockReader(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		name := "raw"
		if wrapped {
			name = "wrapped"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("one frame at a time", func(t *testing.T) {
				s, c := socketPair(t, wrapped)
				a := clientFrame(0x9, true, []byte("ping"), false)
				b := clientFrame(0x1, true, []byte(`{"type":"x"}`), false)
				if _, err := c.Write(append(append([]byte{}, a...), b...)); err != nil {
					t.Fatal(err)
				}
				if _, err := s.wait(0); err != nil {
					t.Fatal(err)
				}
				if got := readBytes(t, s, len(a)); !bytes.Equal(got, a) {
					t.Fatalf("first reads gave %q, want the first frame %q", got, a)
				}
				if !s.pending() {
					t.Fatal("the second frame is not waiting")
				}
				// A wrapped connection's read takes a few bytes first
				// (fillLocked), so the frame may come in more reads.
				if got := readBytes(t, s, len(b)); !bytes.Equal(got, b) {
					t.Fatalf("got %q, want the second frame", got)
				}
				if s.pending() {
					t.Fatal("bytes still pending; the buffer was not released")
				}
			})
			t.Run("yields only at a frame's edge", func(t *testing.T) {
				s, c := socketPair(t, wrapped)
				s.inReader.Store(true)
				// Nothing read yet: an edge, so Read yields.
				if _, err := s.Read(make([]byte, 16)); !errors.Is(err, errIdle) {
					t.Fatalf("at an edge: %v, want errIdle", err)
				}
				f := clientFrame(0x9, true, []byte("payload"), false)
				for _, cut := range []int{1, 2, 6} { // inside the header, the mask, the payload
					if _, err := c.Write(f[:cut]); err != nil {
						t.Fatal(err)
					}
					if _, err := s.wait(0); err != nil {
						t.Fatal(err)
					}
					got := mustRead(t, s, cut)
					rest := f[len(got):]
					// Mid-frame a Read must wait for the rest, not yield.
					ch := readAsync(s, 100)
					if _, err := c.Write(rest); err != nil {
						t.Fatal(err)
					}
					r := <-ch
					if r.err != nil {
						t.Fatalf("cut at %d: %v, want the rest of the frame", cut, r.err)
					}
					got = append(got, r.b...)
					got = append(got, readBytes(t, s, len(f)-len(got))...)
					if !bytes.Equal(got, f) {
						t.Fatalf("cut at %d: got %q, want %q", cut, got, f)
					}
					if _, err := s.Read(make([]byte, 16)); !errors.Is(err, errIdle) {
						t.Fatalf("after the frame: %v, want errIdle", err)
					}
				}
			})
			t.Run("no yield once closing", func(t *testing.T) {
				s, c := socketPair(t, wrapped)
				s.inReader.Store(true)
				s.closing.Store(true)
				ch := readAsync(s, 100)
				f := clientFrame(0x8, true, []byte{0x03, 0xe8}, false)
				if _, err := c.Write(f); err != nil {
					t.Fatal(err)
				}
				if r := <-ch; r.err != nil || !bytes.Equal(r.b, f) {
					t.Fatalf("got %q, %v; want the close frame", r.b, r.err)
				}
			})
			t.Run("the close frame the idle wait took", func(t *testing.T) {
				// The connection's goroutine parks in wait; coder/websocket's
				// close handshake then reads from another goroutine. It
				// must get the bytes wait took off the socket.
				s, c := socketPair(t, wrapped)
				waited := make(chan error, 1)
				go func() { _, err := s.wait(0); waited <- err }()
				// wait holds mu while it is parked on the socket.
				for s.mu.TryLock() {
					s.mu.Unlock()
					runtime.Gosched()
				}
				ch := readAsync(s, 100)
				f := clientFrame(0x8, true, []byte{0x03, 0xe8}, false)
				if _, err := c.Write(f); err != nil {
					t.Fatal(err)
				}
				var r readResult
				select {
				case r = <-ch:
				case <-time.After(10 * time.Second):
					t.Fatal("the close handshake's read never got the bytes wait took")
				}
				if err := <-waited; err != nil {
					t.Fatal(err)
				}
				if r.err != nil || !bytes.Equal(r.b, f) {
					t.Fatalf("got %q, %v; want the close frame", r.b, r.err)
				}
			})
			t.Run("an idle bound", func(t *testing.T) {
				s, c := socketPair(t, wrapped)
				if !wrapped { // a wrapped connection (TLS) is never cut short
					quiet, err := s.wait(10 * time.Millisecond)
					if !quiet || err != nil {
						t.Fatalf("wait with nothing sent: quiet %v, %v; want quiet", quiet, err)
					}
				}
				// The deadline is gone: the bytes that come later are read.
				f := clientFrame(0x1, true, []byte("later"), false)
				if _, err := c.Write(f); err != nil {
					t.Fatal(err)
				}
				if quiet, err := s.wait(time.Hour); quiet || err != nil {
					t.Fatalf("wait: quiet %v, %v", quiet, err)
				}
				if got := mustRead(t, s, 100); !bytes.Equal(got, f) {
					t.Fatalf("got %q, want %q", got, f)
				}
				if err := s.Conn.SetReadDeadline(time.Time{}); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("pongs taken while waiting", func(t *testing.T) {
				s, c := socketPair(t, wrapped)
				pongs := 0
				s.onPong = func() { pongs++ }
				two := append(clientFrame(0xA, true, nil, false), clientFrame(0xA, true, []byte("x"), false)...)
				if _, err := c.Write(two); err != nil {
					t.Fatal(err)
				}
				for pongs < 2 {
					quiet, err := s.wait(0)
					if !quiet || err != nil {
						t.Fatalf("after %d pongs: quiet %v, %v", pongs, quiet, err)
					}
				}
				if s.pending() {
					t.Fatal("a pong was left for coder/websocket")
				}
				// A pong followed by a message: the pong is taken, the
				// message waits.
				msg := clientFrame(0x1, true, []byte("m"), false)
				if _, err := c.Write(append(clientFrame(0xA, true, nil, false), msg...)); err != nil {
					t.Fatal(err)
				}
				for !s.pending() || pongs < 3 {
					if _, err := s.wait(0); err != nil {
						t.Fatal(err)
					}
				}
				if got := mustRead(t, s, 100); !bytes.Equal(got, msg) {
					t.Fatalf("got %q, want the message", got)
				}
			})
			t.Run("end of stream after bytes", func(t *testing.T) {
				s, c := socketPair(t, wrapped)
				f := clientFrame(0x1, true, []byte("last"), false)
				if _, err := c.Write(f); err != nil {
					t.Fatal(err)
				}
				c.Close()
				if _, err := s.wait(0); err != nil {
					t.Fatal(err)
				}
				readBytes(t, s, len(f))
				if _, err := s.Read(make([]byte, 16)); !errors.Is(err, io.EOF) {
					t.Fatalf("after the last bytes: %v, want EOF", err)
				}
				if _, err := s.wait(0); !errors.Is(err, io.EOF) {
					t.Fatalf("wait after the end: %v, want EOF", err)
				}
			})
		})
	}
}

// TestFrameEdgeSplits feeds frames of every length form, cut at random,
// and checks that take stops exactly at each frame's end.
func TestFrameEdgeSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		checkFrameEdge(t, rng, round)
	}
}

func checkFrameEdge(t *testing.T, rng *rand.Rand, round int) {
	t.Helper()
	var stream []byte
	var ends []int
	for range 1 + rng.IntN(8) {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = 0
		case 1:
			n = rng.IntN(126)
		case 2:
			n = 126 + rng.IntN(1000)
		default:
			n = 65536 + rng.IntN(100)
		}
		f := clientFrame(byte(rng.IntN(3)), rng.IntN(2) == 0, make([]byte, n), rng.IntN(5) == 0)
		if rng.IntN(4) == 0 { // unmasked (a server's; the edge does not care)
			f[1] &^= 0x80
			hl := len(f) - n - 4
			f = append(f[:hl], f[hl+4:]...)
		}
		stream = append(stream, f...)
		ends = append(ends, len(stream))
	}
	var e frameEdge
	pos := 0
	var gotEnds []int
	for pos < len(stream) {
		limit := min(len(stream)-pos, 1+rng.IntN(300))
		n := e.take(stream[pos : pos+limit])
		if n < 1 || n > limit {
			t.Fatalf("round %d: take gave %d of %d", round, n, limit)
		}
		pos += n
		if e.atEdge() {
			gotEnds = append(gotEnds, pos)
		}
	}
	// take stops at every end, so each one is seen.
	if !slicesEqual(gotEnds, ends) {
		t.Fatalf("round %d: edges at %v, want %v", round, gotEnds, ends)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzFrameEdge: whatever the bytes, take consumes at least one byte and at
// most what it is given, and, for a stream of well-formed frames built from
// the input, stops exactly at their ends.
func FuzzFrameEdge(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'}, uint64(1))
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint64(7))
	f.Add([]byte{0x82, 0x7e, 0xff, 0xff}, uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		var e frameEdge
		rng := rand.New(rand.NewPCG(seed, 0))
		for pos := 0; pos < len(data); {
			limit := min(len(data)-pos, 1+rng.IntN(20))
			n := e.take(data[pos : pos+limit])
			if n < 1 || n > limit {
				t.Fatalf("take gave %d of %d", n, limit)
			}
			pos += n
		}
		checkFrameEdge(t, rng, int(seed%1000))
	})
}

// readSizes is a wrapped connection that reports the size of each read
// asked of it before it blocks.
type readSizes struct {
	net.Conn
	sizes chan int
}

func (r readSizes) Read(p []byte) (int, error) {
	r.sizes <- len(p)
	return r.Conn.Read(p)
}

// TestWrappedIdleWaitHoldsNoBuffer: a wrapped connection (TLS, PROXY
// protocol) waits in its own blocking Read; that read is into the
// sockReader's few bytes, not a pooled 4 KiB buffer, and what did not fit
// comes with the next read.
func TestWrappedIdleWaitHoldsNoBuffer(t *testing.T) {
	raw, client := socketPair(t, false)
	sizes := make(chan int, 8)
	s := newSockReader(readSizes{raw.Conn, sizes}, nil)
	s.closing = new(atomic.Bool)
	done := make(chan error, 1)
	go func() {
		_, err := s.wait(0)
		done <- err
	}()
	if n := <-sizes; n > len(s.first) {
		t.Fatalf("the idle wait reads into %d bytes; want at most %d", n, len(s.first))
	}
	msg := clientFrame(0x1, true, bytes.Repeat([]byte("x"), 100), false)
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readBytes(t, s, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("read %q, want %q", got, msg)
	}
}
