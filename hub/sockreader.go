package hub

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errIdle is what sockReader returns to coder/websocket's Reader, instead
// of blocking, when the client has sent nothing past a frame it has handled
// (a pong, a ping it answered): the reader goes back to the idle wait.
var errIdle = errors.New("hub: connection idle")

// sockReader is the source coder/websocket reads a client from. It exists
// so that an idle connection costs as little as a goroutine can: most of a
// hub's connections wait minutes between messages, and a goroutine blocked
// inside coder/websocket's Reader sits ~20 frames deep, so the collector
// never shrinks its stack below 8 KiB (it halves a stack only while less
// than a quarter of it, plus a guard, is in use). Instead the connection's
// goroutine waits in wait, a few frames from its start, on a goroutine
// whose stack stays at 2 KiB (see conn.run), and calls Reader only once
// bytes have come.
//
// Four things make that work with coder/websocket unchanged:
//
//   - The bytes read wait here, in a pooled buffer that an idle connection
//     does not hold (on a bare TCP socket the read happens in the callback
//     of a RawConn, so no buffer is taken while nothing has come; a TLS or
//     PROXY-protocol connection blocks reading into 16 bytes of its own), and
//     coder/websocket's own read buffer is the smallest bufio allows.
//   - Read hands out bytes of one frame at a time (it follows the frame
//     headers it passes on), so coder/websocket's buffer never holds the
//     start of the next frame once it is done with one: when the hub has
//     read a message, whatever the client sent next is here, where wait
//     sees it.
//   - The heartbeat's pongs, all an idle client sends, are taken in wait
//     and never reach coder/websocket (the hub writes its pings itself:
//     see conn.heartbeat).
//   - While the hub is in Reader and the connection is not closing, a read
//     at a frame's edge with nothing waiting returns errIdle: Reader has
//     handled a control frame and would otherwise block for the next
//     message, deep. An error before a frame's first byte leaves
//     coder/websocket's state as it was (it has read nothing of the next
//     frame), which the tests pin (TestIdleConnectionReadsOn).
//
// One goroutine reads at a time (mu is held across the blocking read):
// besides the connection's own, only coder/websocket's close handshake
// reads, and it must see bytes the idle wait has already taken.
type sockReader struct {
	net.Conn                 // writes, deadlines and Close go straight through
	raw      syscall.RawConn // nil where the connection is not a bare socket (TLS, PROXY protocol)
	closing  *atomic.Bool    // the connection's: no errIdle once it closes
	onPong   func()          // called for each pong wait takes
	inReader atomic.Bool     // the hub is in coder/websocket's Reader

	mu    sync.Mutex
	buf   *[]byte // from sockBufs while bytes wait in buf[r:w]; nil otherwise
	r, w  int
	err   error // the socket's error, returned once the bytes before it are read
	edge  frameEdge
	ready func(fd uintptr) bool // readReady, bound once: a closure per read would be garbage
	first [16]byte              // a wrapped connection's blocking read (see fillLocked)
}

// sockBufSize is a read's size. Signaling messages are at most a few kB
// (an offer with its candidates), so one read takes most messages whole.
const sockBufSize = 4 << 10

var sockBufs = sync.Pool{New: func() any { b := make([]byte, sockBufSize); return &b }}

// newSockReader wraps conn, with pending: bytes already read past the
// HTTP request (a client that did not wait for the 101).
func newSockReader(conn net.Conn, pending []byte) *sockReader {
	s := &sockReader{Conn: conn, raw: rawConn(conn)}
	if s.raw != nil {
		s.ready = s.readReady
	}
	if len(pending) > 0 {
		b := make([]byte, len(pending))
		copy(b, pending)
		s.buf, s.w = &b, len(b)
	}
	return s
}

// Read gives coder/websocket the waiting bytes, at most up to the end of
// the current frame, or reads the socket.
func (s *sockReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buf == nil {
		if s.err != nil {
			return 0, s.err
		}
		if s.edge.atEdge() && s.inReader.Load() && (s.closing == nil || !s.closing.Load()) {
			return 0, errIdle
		}
		if err := s.fillLocked(); err != nil {
			return 0, err
		}
	}
	b := (*s.buf)[s.r:s.w]
	n := s.edge.take(b[:min(len(b), len(p))])
	copy(p, b[:n])
	s.r += n
	if s.r == s.w {
		s.release()
	}
	return n, nil
}

// wait returns once bytes wait to be read (quiet false), or a pong was
// the only thing to come, or nothing came for idle (quiet true), or the
// socket has failed. It blocks holding no buffer on a bare socket. The
// hub's heartbeat pongs, the only thing an idle client sends, are taken
// here, whole frames at a frame's edge, and never reach coder/websocket
// (see conn.heartbeat). idle > 0 bounds the wait with the socket's read
// deadline, on a bare socket only (a TLS read is not to be cut short);
// the deadline is cleared before mu is released, so no other read meets
// it. (No defer: wait's frame is part of every idle connection's stack.)
func (s *sockReader) wait(idle time.Duration) (quiet bool, err error) {
	s.mu.Lock()
	armed := false
	if idle > 0 && s.raw != nil && s.buf == nil && s.err == nil {
		armed = s.Conn.SetReadDeadline(time.Now().Add(idle)) == nil
	}
	for {
		if s.buf != nil {
			if !s.takePongsLocked() || s.buf != nil {
				break // something else waits
			}
			quiet = true
			break
		}
		if err = s.err; err != nil {
			break
		}
		if err = s.fillLocked(); err != nil {
			if armed && errors.Is(err, os.ErrDeadlineExceeded) {
				s.err, err, quiet = nil, nil, true
			}
			break
		}
	}
	if armed {
		_ = s.Conn.SetReadDeadline(time.Time{})
	}
	s.mu.Unlock()
	return quiet, err
}

// takePongsLocked takes the whole pong frames at the start of the waiting
// bytes, at a frame's edge, and reports whether it took any.
func (s *sockReader) takePongsLocked() bool {
	took := false
	for s.buf != nil && s.edge.atEdge() {
		b := (*s.buf)[s.r:s.w]
		// FIN, opcode pong; masked (a client's), at most 125 bytes.
		if len(b) < 6 || b[0] != 0x8a || b[1]&0x80 == 0 {
			break
		}
		n := 6 + int(b[1]&0x7f)
		if b[1]&0x7f > 125 || len(b) < n {
			break
		}
		s.edge.take(b[:n])
		s.r += n
		if s.r == s.w {
			s.release()
		}
		took = true
		if s.onPong != nil {
			s.onPong()
		}
	}
	return took
}

// pending reports whether read bytes wait.
func (s *sockReader) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf != nil
}

func (s *sockReader) release() {
	// The bytes that came with the handshake are in a buffer of their own
	// size, which the pool must not hand out as a read's.
	if len(*s.buf) == sockBufSize {
		sockBufs.Put(s.buf)
	}
	s.buf, s.r, s.w = nil, 0, 0
}

// fillLocked reads the socket into a pooled buffer, blocking until some
// bytes come or it fails; the error is kept for later reads. On a bare
// socket the buffer is taken only once bytes have come (readReady), so a
// connection parked here holds none.
func (s *sockReader) fillLocked() error {
	if s.raw != nil {
		if err := s.raw.Read(s.ready); err != nil && s.err == nil {
			s.err = err // closed, or a deadline
		}
		if s.buf != nil {
			return nil
		}
		return s.err
	}
	// A wrapped connection's Read blocks until its wrapper has bytes
	// (decrypted, or past the PROXY header): it reads into a few bytes of
	// the sockReader's own, so that a connection parked here holds no
	// pooled buffer (4 KiB of every idle TLS connection otherwise). A pong
	// or a frame header fits; the rest of a message, which the wrapper
	// already holds, comes with the next fill, without a system call.
	var (
		n   int
		err error
	)
	for n == 0 && err == nil {
		n, err = s.Conn.Read(s.first[:])
	}
	// An error that came with bytes (io.EOF after the last ones) is
	// returned once they are read.
	s.err = err
	if n == 0 {
		return err
	}
	b := sockBufs.Get().(*[]byte)
	copy(*b, s.first[:n])
	s.buf, s.r, s.w = b, 0, n
	return nil
}

// frameEdge follows the frame headers of the bytes a sockReader hands out,
// so that it knows where each frame ends (RFC 6455 5.2: two bytes, a 16-
// or 64-bit extended length, a 4-byte mask if the mask bit is set, the
// payload). It only measures; coder/websocket checks everything else.
type frameEdge struct {
	hdr  [14]byte // the header so far, while hn > 0
	hn   int
	left int64 // payload bytes of the current frame not yet handed out
}

// atEdge reports whether the bytes handed out so far end with a whole frame.
func (f *frameEdge) atEdge() bool { return f.hn == 0 && f.left == 0 }

// take consumes the leading bytes of b that belong to the current frame and
// returns how many: all of b, or up to the frame's end (at least one byte of
// a non-empty b).
func (f *frameEdge) take(b []byte) int {
	n := 0
	for n < len(b) {
		if f.left > 0 {
			k := int(min(f.left, int64(len(b)-n)))
			f.left -= int64(k)
			n += k
			if f.left == 0 {
				return n
			}
			continue
		}
		f.hdr[f.hn] = b[n]
		f.hn++
		n++
		if f.hn >= 2 && f.hn == f.headerLen() {
			f.left, f.hn = f.payloadLen(), 0
			if f.left == 0 {
				return n
			}
		}
	}
	return n
}

func (f *frameEdge) headerLen() int {
	n := 2
	switch f.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if f.hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func (f *frameEdge) payloadLen() int64 {
	switch l := f.hdr[1] & 0x7f; l {
	case 126:
		return int64(f.hdr[2])<<8 | int64(f.hdr[3])
	case 127:
		var v uint64
		for _, c := range f.hdr[2:10] {
			v = v<<8 | uint64(c)
		}
		if v > math.MaxInt64 {
			// Invalid (the most significant bit must be 0);
			// coder/websocket refuses the frame, and the connection ends.
			return math.MaxInt64
		}
		return int64(v)
	default:
		return int64(l)
	}
}

var _ io.Reader = (*sockReader)(nil)
