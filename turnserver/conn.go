package turnserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// listenConn wraps a UDP listener socket handed to pion. It rate-limits
// unauthenticated requests per source, stashes authenticated requests for the
// AuthHandler (which needs the raw message to pick the matching secret), and
// counts relayed data sent to clients.
type listenConn struct {
	net.PacketConn
	s        *Server
	exitOnce sync.Once
}

func (c *listenConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			// pion's read loop stops at the first error.
			c.exitOnce.Do(c.s.readers.Done)
			return n, addr, err
		}
		reply := func(b []byte) { _, _ = c.PacketConn.WriteTo(b, addr) }
		if n, pass := c.s.inspect(p[:n], addr, reply); pass {
			return n, addr, nil
		}
	}
}

func (c *listenConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	out := c.s.outgoing(p, addr)
	n, err := c.PacketConn.WriteTo(out, addr)
	if err == nil {
		c.s.countToClient(out)
		n = len(p) // pion checks that all of what it wrote went out
	}
	return n, err
}

// streamListener wraps the TCP or TLS listener handed to pion. It tracks
// accepted connections so Close can end them (pion does not) and frames
// their byte stream so each Read returns whole TURN messages.
type streamListener struct {
	net.Listener
	s        *Server
	exitOnce sync.Once

	mu     sync.Mutex
	conns  map[*streamConn]struct{}
	closed bool
}

// handshakeTimeout bounds the TLS handshake and the first request on a new
// stream connection; idleTimeout bounds silence afterwards (allocations
// refresh at least hourly).
const (
	handshakeTimeout = 10 * time.Second
	idleTimeout      = 65 * time.Minute
)

func (l *streamListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.exitOnce.Do(l.s.readers.Done)
		return nil, err
	}
	sc := &streamConn{Conn: c, s: l.s, l: l, r: bufio.NewReaderSize(c, 4096)}
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		l.exitOnce.Do(l.s.readers.Done)
		return nil, net.ErrClosed
	}
	l.s.readers.Add(1)
	l.conns[sc] = struct{}{}
	l.mu.Unlock()
	return sc, nil
}

// closeConns ends every accepted connection; their pion loops then exit.
func (l *streamListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*streamConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}

// streamConn is one TURN-over-TCP/TLS connection.
type streamConn struct {
	net.Conn
	s        *Server
	l        *streamListener
	r        *bufio.Reader
	exitOnce sync.Once

	frame    []byte // current frame
	off      int    // bytes of frame already returned
	extended time.Time
}

var errBadFrame = errors.New("stream carries neither STUN nor ChannelData")

// Read returns bytes of whole frames only, so pion's STUNConn, which reads
// into its MTU-sized buffer, sees message boundaries.
func (c *streamConn) Read(p []byte) (int, error) {
	for c.off >= len(c.frame) {
		if err := c.readFrame(); err != nil {
			c.exit()
			return 0, err
		}
		n, pass := c.s.inspect(c.frame, c.Conn.RemoteAddr(), c.reply)
		c.frame = c.frame[:n]
		if !pass {
			c.off = len(c.frame)
		}
	}
	n := copy(p, c.frame[c.off:])
	c.off += n
	return n, nil
}

func (c *streamConn) readFrame() error {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return err
	}
	n, ok := channelFrameLen(hdr[:])
	if !ok {
		return errBadFrame
	}
	if cap(c.frame) < n {
		c.frame = make([]byte, n)
	}
	c.frame = c.frame[:n]
	copy(c.frame, hdr[:])
	if _, err := io.ReadFull(c.r, c.frame[4:]); err != nil {
		return err
	}
	c.off = 0
	if now := time.Now(); now.Sub(c.extended) > time.Second {
		c.extended = now
		_ = c.Conn.SetReadDeadline(now.Add(idleTimeout))
	}
	return nil
}

func (c *streamConn) Write(p []byte) (int, error) {
	out := c.s.outgoing(p, c.Conn.RemoteAddr())
	n, err := c.Conn.Write(out)
	if err == nil {
		c.s.countToClient(out)
		n = len(p)
	}
	return n, err
}

// reply sends an answer of the pre-filter.
func (c *streamConn) reply(b []byte) {
	_, _ = c.Conn.Write(b)
}

func (c *streamConn) exit() {
	c.exitOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.s.readers.Done()
	})
}

// Close is called by pion when its loop for this connection ends.
func (c *streamConn) Close() error {
	err := c.Conn.Close()
	c.exit()
	return err
}

// relayConn wraps an allocation's relay socket: it enforces the bandwidth
// caps, counts client-to-peer traffic, closes itself at the allocation's
// maximum lifetime and releases its slot in the global allocation count.
type relayConn struct {
	net.PacketConn
	s      *Server
	lim    *rate.Limiter // per allocation, nil = unlimited
	timer  *time.Timer
	closed atomic.Bool
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.s.allowBytes(c.lim, n) {
			return n, addr, err
		}
	}
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.s.allowBytes(c.lim, len(p)) {
		return len(p), nil // dropped like a lost datagram
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.s.toPeerPackets.Inc()
		c.s.toPeerBytes.Add(float64(n))
	}
	return n, err
}

// Close is idempotent and returns nil on repeated calls: pion's allocation
// manager stops closing allocations at the first error.
func (c *relayConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.s.relayClosed(c)
	if err := c.PacketConn.Close(); err != nil {
		return fmt.Errorf("turnserver: close relay socket: %w", err)
	}
	return nil
}
