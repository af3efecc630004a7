package hub

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// conn is one client's WebSocket. Its handler goroutine reads and handles
// frames; one writer goroutine owns the heartbeat and writes queued frames,
// so a slow client never blocks the hub: Deliver only queues, and a full
// queue disconnects the client.
type conn struct {
	h    *Hub
	ws   *websocket.Conn
	ip   netip.Addr
	host string // hostname the client used, for ICE server URLs
	lim  *rate.Limiter

	// Written only by the reader goroutine, once a membership starts.
	room string
	role Role

	// mu guards the queue gate: until a create/join/resume reply is queued,
	// events from the store are held back so that the reply comes first.
	mu     sync.Mutex
	ready  bool
	held   []Event
	send   chan []byte
	closed bool

	// life ends when the connection must go at once (a slow consumer):
	// cancelling it aborts a write that is blocked on a full socket.
	life  context.Context
	abort context.CancelFunc

	closing   atomic.Bool
	closeReq  chan struct{}
	closeOnce sync.Once
	closeCode websocket.StatusCode
	closeMsg  string
	flush     bool
}

func newConn(h *Hub, ws *websocket.Conn, ip netip.Addr, host string) *conn {
	life, abort := context.WithCancel(context.Background())
	return &conn{
		life:     life,
		abort:    abort,
		h:        h,
		ws:       ws,
		ip:       ip,
		host:     host,
		lim:      rate.NewLimiter(h.cfg.MessageRate, h.cfg.MessageBurst),
		send:     make(chan []byte, h.cfg.SendQueue),
		closeReq: make(chan struct{}),
		ready:    true,
	}
}

// Deliver implements Peer. It never blocks.
func (c *conn) Deliver(ev Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if !c.ready {
		if len(c.held) >= cap(c.send) {
			c.slowLocked()
			return false
		}
		c.held = append(c.held, ev)
		return true
	}
	return c.queueLocked(Frame{Type: ev.Type, Data: ev.Data, Reason: ev.Reason})
}

// Replaced implements Peer.
func (c *conn) Replaced() {
	c.closeWith(websocket.StatusPolicyViolation, "session resumed on another connection", true)
}

func (c *conn) queueLocked(f Frame) bool {
	b, err := encodeFrame(f)
	if err != nil {
		return false
	}
	select {
	case c.send <- b:
		return true
	default:
		c.slowLocked()
		return false
	}
}

func (c *conn) slowLocked() {
	c.closed = true
	c.h.m.Reject("slow_consumer")
	c.closeWith(websocket.StatusPolicyViolation, "client too slow to read; disconnected", false)
}

// reply queues a frame from the reader goroutine.
func (c *conn) reply(f Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.queueLocked(f)
	}
}

// hold gates store events until open is called.
func (c *conn) hold() {
	c.mu.Lock()
	c.ready = false
	c.mu.Unlock()
}

// open queues frames (a reply and pending events), then the events held
// since hold, and lets further events through.
func (c *conn) open(frames ...Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready = true
	held := c.held
	c.held = nil
	if c.closed {
		return
	}
	for _, f := range frames {
		if !c.queueLocked(f) {
			return
		}
	}
	for _, ev := range held {
		if !c.queueLocked(Frame{Type: ev.Type, Data: ev.Data, Reason: ev.Reason}) {
			return
		}
	}
}

// fail sends an error frame, then closes with code.
func (c *conn) fail(code websocket.StatusCode, errCode, msg string) {
	c.reply(Frame{Type: TypeError, Code: errCode, Message: msg})
	c.closeWith(code, msg, true)
}

// closeWith asks the writer to close the connection with code and reason,
// after writing what is queued when flush is set. Only the first call counts.
func (c *conn) closeWith(code websocket.StatusCode, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeMsg, c.flush = code, reason, flush
		c.closing.Store(true)
		close(c.closeReq)
		if !flush {
			c.abort()
		}
	})
}

func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop(ctx)
	}()
	c.readLoop(ctx)
	cancel()
	c.abort()
	wg.Wait()
	c.ws.CloseNow()

	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.room != "" {
		// Detach with a fresh context: the request's is already done.
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		if err := c.h.store.Detach(dctx, c.room, c.role, c); err != nil {
			c.h.log.Warn("detach failed", "err", err)
		}
	}
}

func (c *conn) writeLoop(ctx context.Context) {
	ping := time.NewTicker(c.h.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case b := <-c.send:
			if err := c.write(ctx, b); err != nil {
				c.ws.CloseNow()
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, c.h.cfg.PongTimeout)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.h.log.Debug("heartbeat failed; dropping connection", "err", err)
				c.ws.CloseNow()
				return
			}
		case <-c.closeReq:
			if c.flush {
				c.drain(ctx)
			}
			c.ws.Close(c.closeCode, c.closeMsg)
			return
		case <-ctx.Done():
			return
		}
	}
}

func (c *conn) drain(ctx context.Context) {
	for {
		select {
		case b := <-c.send:
			if c.write(ctx, b) != nil {
				return
			}
		default:
			return
		}
	}
}

func (c *conn) write(ctx context.Context, b []byte) error {
	if c.life.Err() != nil {
		return c.life.Err()
	}
	stop := context.AfterFunc(c.life, func() { c.ws.CloseNow() })
	defer stop()
	wctx, cancel := context.WithTimeout(ctx, c.h.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

var errTooBig = errors.New("message too big")

// readMessage reads one message of at most MaxMessageBytes. It reads one
// byte more than allowed to tell an oversized message from one that fits.
func (c *conn) readMessage(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, r, err := c.ws.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	max := int64(c.h.cfg.MaxMessageBytes)
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return typ, nil, err
	}
	if int64(len(b)) > max {
		return typ, nil, errTooBig
	}
	return typ, b, nil
}

func (c *conn) readLoop(ctx context.Context) {
	// No library read limit: readMessage enforces ours so the client gets
	// an error frame naming it.
	c.ws.SetReadLimit(-1)
	for {
		typ, msg, err := c.readMessage(ctx)
		if err != nil {
			if errors.Is(err, errTooBig) && !c.closing.Load() {
				c.h.m.Reject("too_big")
				c.fail(websocket.StatusMessageTooBig, CodeTooBig, "message exceeds the hub's size limit")
				continue // keep reading until the close handshake completes
			}
			return
		}
		if c.closing.Load() {
			continue // discard frames that arrive while closing
		}
		if typ != websocket.MessageText {
			c.h.m.Reject("binary")
			c.fail(websocket.StatusUnsupportedData, CodeBinary, "binary frames are not part of the protocol; send JSON text")
			continue
		}
		if !c.lim.Allow() {
			c.h.m.Reject("rate_limited")
			c.fail(websocket.StatusPolicyViolation, CodeRateLimited, "too many messages; slow down")
			continue
		}
		f, err := DecodeFrame(msg)
		if err != nil {
			c.h.m.Reject("malformed")
			c.reply(Frame{Type: TypeError, Code: CodeBadRequest, Message: "malformed frame: " + err.Error()})
			continue
		}
		c.h.m.Message(f.Type)
		c.handle(ctx, f)
	}
}
