package hub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/proto"
)

// conn is one client's WebSocket. Its serving goroutine reads and handles
// frames; a writer goroutine writes queued frames and heartbeats, so a slow
// client never blocks the hub: Deliver only queues. The queue is budgeted
// in bytes (Config.SendQueueBytes), which holds whatever the other member
// may send in a burst (Config.RelayBytesBurst): a client that reads is
// never cut for a burst its peer was allowed to send. A client whose socket
// stops draining is cut by the write deadline (Config.WriteTimeout), and one
// whose queue would pass its budget anyway is cut as a slow consumer, which
// bounds the memory a client that never reads can hold.
//
// The writer runs only while it has work (see kickLocked): most connections
// sit idle for minutes, and a parked writer per connection would cost a
// goroutine stack each, which the garbage collector's heap goal then counts
// a second time.
type conn struct {
	h    *Hub
	id   uint64 // Ref.Conn: unique in this Hub's life
	ws   *websocket.Conn
	nc   net.Conn      // ws's connection, for write deadlines
	sw   *socketWriter // what ws writes to, to gather the queue's frames
	rd   *sockReader   // what ws reads from, for the idle wait
	ip   netip.Addr
	host string        // hostname the client used, for ICE server URLs
	lim  *rate.Limiter // messages, control frames included
	rlim *rate.Limiter // bytes relayed to the other member

	// Written only by the reader goroutine, once a membership starts.
	room string
	role Role

	// mu guards the queue and its gate: until a create/join/resume reply is
	// queued, events from the store are held back so that the reply comes
	// first. queued counts the bytes of queue and held together. member is
	// the membership being attached or attached (see hold), for the tokens
	// that peer-joined and peer-back carry.
	mu     sync.Mutex
	member Member
	ready  bool
	held   [][]byte
	queue  [][]byte
	queued int
	closed bool

	// wmu guards wstate and ping. It is taken after mu, never before, and
	// nothing else is locked while it is held, so kick is safe to call
	// from anywhere (closeWith runs both with and without mu held).
	wmu    sync.Mutex
	wstate writerState // whether a writer goroutine runs

	done     atomic.Bool    // the serving goroutine is done: no writer goes on
	writers  sync.WaitGroup // the writer goroutine, when one runs
	ping     *time.Timer    // the heartbeat's one timer (see heartbeat)
	pingDue  atomic.Bool    // a ping is to be written
	pongDue  atomic.Bool    // a ping went out and no pong has come since
	late     atomic.Bool    // no pong within PongTimeout: the writer drops c
	pongWait bool           // the timer runs for PongTimeout (under wmu)
	pingAt   time.Time      // when the last ping was due (under wmu)

	// over is set when the connection must go at once (a slow consumer, or
	// the reader is done): see cut.
	over atomic.Bool

	// closing is set once closeWith has set closeCode, closeMsg and flush:
	// the writer then closes the connection. (Flags rather than contexts
	// and channels: a few hundred bytes less on every idle connection.)
	closing   atomic.Bool
	closeOnce sync.Once
	// wclosed is closed once no writer will run again: the close handshake
	// is done, or writing failed (stopWriting).
	wclosed    chan struct{}
	wcloseOnce sync.Once
	closeCode  websocket.StatusCode
	closeMsg   string
	flush      bool
}

type writerState uint8

const (
	writerIdle    writerState = iota // none runs; work starts one
	writerRunning                    // one runs and will look for more work
	writerDone                       // the connection is ending: never again
)

// kick starts a writer unless one runs. Callers have just queued a frame,
// marked a ping due or requested a close.
func (c *conn) kick() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.kickLocked()
}

func (c *conn) kickLocked() {
	if c.wstate != writerIdle {
		return
	}
	c.wstate = writerRunning
	c.writers.Add(1)
	go func() {
		defer c.writers.Done()
		growStack()
		c.writeLoop()
	}()
}

func newConn(h *Hub, ws *websocket.Conn, sb *smallBuffers, ip netip.Addr, host string) *conn {
	c := &conn{
		h:       h,
		id:      h.nextConn.Add(1),
		ws:      ws,
		nc:      sb.conn,
		sw:      sb.sw,
		rd:      sb.rd,
		ip:      ip,
		host:    host,
		lim:     rate.NewLimiter(h.cfg.MessageRate, h.cfg.MessageBurst),
		rlim:    rate.NewLimiter(h.cfg.RelayBytesRate, h.cfg.RelayBytesBurst),
		wclosed: make(chan struct{}),
		ready:   true,
	}
	c.rd.closing = &c.closing
	c.rd.onPong = c.pong
	return c
}

// Deliver queues ev for the client. It never blocks.
//
// A report is not for the client: the other member reported a failed key
// confirmation with this one (see conn.report), and c's address is
// charged one failed attempt, on this node, where c's next join or resume
// from that address would come if c is the one guessing.
func (c *conn) Deliver(ev Event) bool {
	if ev.Type == proto.TypeReport {
		c.h.failures.allow(c.ip, c.h.cfg.Now())
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if ev.frame != nil {
		return c.queueBytesLocked(ev.frame)
	}
	f := proto.Frame{Type: ev.Type, Data: ev.Data, Reason: ev.Reason, Code: ev.Code}
	if (ev.Type == proto.TypePeerJoined || ev.Type == proto.TypePeerBack) && c.member.Room != "" {
		// The room has a guest now: the host's token says so from here
		// on, so a restart reserves the guest's slot for it
		// (docs/PROTOCOL.md, "Resume tokens").
		f.Token = c.h.keys.mint(c.member, true, c.h.cfg.Now())
	}
	return c.queueLocked(f)
}

// Replaced closes c: its member resumed on another connection.
func (c *conn) Replaced() {
	c.closeWith(websocket.StatusPolicyViolation, "session resumed on another connection", true)
}

// queueLocked queues f for the writer, or holds it back while a reply is
// awaited (see hold). A frame that would take the queue past its budget
// cuts the connection: the client has not read for a long while.
func (c *conn) queueLocked(f proto.Frame) bool {
	b, err := proto.EncodeFrame(f)
	if err != nil {
		return false
	}
	return c.queueBytesLocked(b)
}

// queueBytesLocked is queueLocked for a frame already encoded.
func (c *conn) queueBytesLocked(b []byte) bool {
	if c.queued+len(b) > c.h.cfg.SendQueueBytes {
		c.slowLocked()
		return false
	}
	c.queued += len(b)
	if !c.ready {
		c.held = append(c.held, b)
		return true
	}
	c.queue = append(c.queue, b)
	c.kick()
	return true
}

// next takes the frame the writer writes next, if any, and reports whether
// more are queued behind it.
func (c *conn) next() (b []byte, more, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return nil, false, false
	}
	b = c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	if len(c.queue) == 0 {
		c.queue = nil // an idle connection holds no array
	}
	c.queued -= len(b)
	return b, len(c.queue) > 0, true
}

func (c *conn) slowLocked() {
	c.closed = true
	c.h.m.Reject("slow_consumer")
	c.closeWith(websocket.StatusPolicyViolation, "client too slow to read; disconnected", false)
}

// reply queues a frame from the reader goroutine.
func (c *conn) reply(f proto.Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.queueLocked(f)
	}
}

// hold gates store events until open is called, and records m, the
// membership being attached.
func (c *conn) hold(m Member) {
	c.mu.Lock()
	c.ready = false
	c.member = m
	c.mu.Unlock()
}

// open queues frames (a reply and pending events), then the events held
// since hold, and lets further events through.
func (c *conn) open(frames ...proto.Frame) {
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
	c.queue = append(c.queue, held...)
	if len(held) > 0 {
		c.kick()
	}
}

// fail sends an error frame, then closes with code.
func (c *conn) fail(code websocket.StatusCode, errCode, msg string) {
	c.reply(proto.Frame{Type: proto.TypeError, Code: errCode, Message: msg})
	c.closeWith(code, msg, true)
}

// closeWith asks the writer to close the connection with code and reason,
// after writing what is queued when flush is set. Only the first call counts.
func (c *conn) closeWith(code websocket.StatusCode, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeMsg, c.flush = code, reason, flush
		c.closing.Store(true)
		if !flush {
			c.cut()
		}
		c.kick()
	})
}

// serve runs the connection on its own goroutine until it ends, then
// calls done.
func (c *conn) serve(done func()) {
	c.start()
	c.run(done)
}

// run reads until the connection ends. Between messages it waits in
// sockReader.wait rather than in coder/websocket's Reader, a few frames
// from the goroutine's start (see sockReader). Once the connection has gone
// quiet after messages (nothing for idleMove, or a wake-up that brought
// only the heartbeat's pong or other control frames), it goes on on a
// fresh goroutine and this one ends: handling messages grew this one's
// stack to 8 KiB, and the collector shrinks a parked goroutine's stack
// only while a quarter of it holds the frames in use plus 800 bytes of
// guard, which a goroutine parked on a socket never meets below 4 KiB; a
// fresh one starts at 2 KiB (the runtime sizes new stacks by the average
// use it finds, mostly idle connections) and stays there while it waits. A
// busy connection never pays for the move; an idle one pays once after its
// last message.
func (c *conn) run(done func()) {
	grown := false
	for {
		var idle time.Duration
		if grown {
			idle = idleMove
		}
		quiet, err := c.rd.wait(idle)
		if err != nil {
			break
		}
		if quiet {
			if grown {
				go c.run(done)
				return
			}
			continue
		}
		if !grown {
			growStack()
		}
		r := c.readMessages()
		if r == readEnded {
			break
		}
		if r == readQuiet {
			go c.run(done)
			return
		}
		grown = true
	}
	c.finish()
	done()
}

// growStack grows the calling goroutine's stack to 8 KiB in one step, a
// few frames from its start: handling a message needs 4-8 KiB, and a
// goroutine that starts small (the runtime starts new ones at the average
// use it finds, which idle connections, parked shallow, keep at 2 KiB)
// would otherwise grow twice, each time copying its frames deep inside
// coder/websocket and the store (7 % of the hub's CPU in a pairing run, 4 %
// before the idle wait).
//
//go:noinline
func growStack() {
	var frame [5 << 10]byte
	if used(frame[:]) {
		growStack() // never: the frame is zero
	}
}

// used keeps growStack's frame from being optimised away.
//
//go:noinline
func used(b []byte) bool { return b[len(b)-1] != 0 }

// idleMove is how long a connection that has handled messages waits
// before it moves to a fresh goroutine (see run): long enough that a
// pairing in progress never pays for it, short enough that an idle
// connection's stack is 2 KiB within seconds.
const idleMove = time.Second

// readOutcome is what readMessages found.
type readOutcome uint8

const (
	readEnded readOutcome = iota // the connection is done
	readIdle                     // messages came and were handled; nothing more waits
	readQuiet                    // only control frames came
)

//go:noinline
func (c *conn) start() {
	c.wmu.Lock()
	c.ping = time.AfterFunc(c.h.cfg.PingInterval, c.heartbeat)
	c.wmu.Unlock()
	// No library read limit: readMessage enforces ours so the client gets
	// an error frame naming it.
	c.ws.SetReadLimit(-1)
}

// heartbeat runs on the timer. Every PingInterval it has a writer send a
// ping and sets the timer to PongTimeout; a pong moves the timer on to the
// next ping (see pong), and if none has come when it fires, the writer
// drops the connection. One timer, and no goroutine waits for the pong: the
// hub writes the ping itself and the connection's reader notes any pong,
// where coder/websocket's Ping kept a writer parked for the round trip and
// left contexts, timers and a map entry behind on both sides, every 15 s on
// every idle connection.
func (c *conn) heartbeat() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wstate == writerDone {
		return
	}
	switch {
	case c.pongWait && c.pongDue.Load():
		c.late.Store(true)
		c.kickLocked()
	case c.pongWait: // a pong came as the timer fired
		c.pongWait = false
		c.ping.Reset(max(c.h.cfg.PingInterval-time.Since(c.pingAt), 0))
	default:
		c.pingAt = time.Now()
		c.pongDue.Store(true)
		c.pingDue.Store(true)
		c.pongWait = true
		c.kickLocked()
		c.ping.Reset(c.h.cfg.PongTimeout)
	}
}

// pong notes a pong from the client (any pong: RFC 6455 lets a client
// answer only the latest ping), sets the timer for the next ping, and
// counts the pong against the message budget.
func (c *conn) pong() {
	c.pongDue.Store(false)
	c.wmu.Lock()
	if c.pongWait && c.wstate != writerDone {
		c.pongWait = false
		c.ping.Reset(max(c.h.cfg.PingInterval-time.Since(c.pingAt), 0))
	}
	c.wmu.Unlock()
	c.onControl()
}

// pingFrame is the hub's ping: a server's frames are unmasked, and the
// payload is empty. The writer writes it through the socketWriter between
// two frames of its own; coder/websocket's frames (a pong to the client's
// ping, the close frame) reach the socketWriter each in one Write, so
// nothing interleaves.
var pingFrame = []byte{0x89, 0x00}

//go:noinline
func (c *conn) finish() {
	c.done.Store(true)
	c.cut()
	c.stopWriting()
	c.wmu.Lock()
	c.ping.Stop()
	c.wmu.Unlock()
	c.writers.Wait()
	c.ws.CloseNow()

	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.room != "" {
		// Detach with a fresh context: the request's is already done.
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		if err := c.h.store.Detach(dctx, c.room, c.role, c.ref()); err != nil {
			c.h.log.Warn("detach failed", "err", err)
		}
	}
}

// writeLoop writes queued frames, a due ping and the close handshake, and
// returns when there is nothing left to do. It is the only writer while it
// runs; once it has closed the connection or failed, no other starts.
func (c *conn) writeLoop() {
	for {
		if c.closing.Load() {
			if c.flush {
				c.drain()
			}
			// The close frame gets a bound of its own, even after a cut:
			// a slow consumer whose socket still takes it is told why
			// (1008), as before the deadline replaced contexts; the
			// reader's end cuts it short. Whatever is still gathered goes
			// first (nothing, unless the queue was dropped): the close
			// handshake waits for an answer.
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
			if c.sw.uncork() == nil {
				c.ws.Close(c.closeCode, c.closeMsg)
			} else {
				c.ws.CloseNow()
			}
			c.stopWriting()
			return
		}
		if c.done.Load() {
			c.stopWriting()
			return
		}
		if c.late.Load() {
			c.h.log.Debug("no pong within the timeout; dropping connection")
			c.ws.CloseNow()
			c.stopWriting()
			return
		}
		if c.pingDue.Swap(false) {
			err := c.arm()
			if err == nil {
				_, err = c.sw.Write(pingFrame)
			}
			if err == nil {
				err = c.sw.uncork()
			}
			c.disarm()
			if err != nil {
				c.h.log.Debug("heartbeat failed; dropping connection", "err", err)
				c.ws.CloseNow()
				c.stopWriting()
				return
			}
		}
		if b, more, ok := c.next(); ok {
			if err := c.write(b, more); err != nil {
				c.ws.CloseNow()
				c.stopWriting()
				return
			}
			continue
		}
		// Out of work. Deciding under mu and wmu closes the race with
		// kick: work queued after this check finds the writer idle and
		// starts another.
		c.mu.Lock()
		c.wmu.Lock()
		if len(c.queue) == 0 && !c.pingDue.Load() && !c.late.Load() && !c.closing.Load() {
			if c.wstate == writerRunning {
				c.wstate = writerIdle
			}
			c.wmu.Unlock()
			c.mu.Unlock()
			return
		}
		c.wmu.Unlock()
		c.mu.Unlock()
	}
}

// stopWriting keeps any further writer from starting.
func (c *conn) stopWriting() {
	c.wmu.Lock()
	c.wstate = writerDone
	c.wmu.Unlock()
	c.wcloseOnce.Do(func() { close(c.wclosed) })
}

func (c *conn) drain() {
	for {
		b, more, ok := c.next()
		if !ok || c.write(b, more) != nil {
			return
		}
	}
}

// cut ends c's life: a write blocked on a full socket fails at once, and
// so does every later one (the close handshake's included).
func (c *conn) cut() {
	c.over.Store(true)
	_ = c.nc.SetWriteDeadline(time.Unix(1, 0)) // fails only once closed
}

// arm bounds the next write by WriteTimeout, unless c was cut. The bound is
// the socket's write deadline rather than a context: with a cancellable
// context coder/websocket registers a context.AfterFunc on every write, and
// the hub added another and a timer, allocations and microseconds that
// every pairing paid five times. The deadline is set before over is
// checked, so a cut that comes in between still aborts the write (cut sets
// the deadline after over).
func (c *conn) arm() error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
		return err
	}
	if c.over.Load() {
		_ = c.nc.SetWriteDeadline(time.Unix(1, 0))
		return errCut
	}
	return nil
}

// disarm clears the deadline once a write is done: the connection's reader
// writes too (coder/websocket answers the client's pings there), and must
// not meet a deadline long past.
func (c *conn) disarm() { _ = c.nc.SetWriteDeadline(time.Time{}) }

// gatherLimit bounds what the writer gathers before it writes (see
// socketWriter).
const gatherLimit = 32 << 10

// write writes one frame within WriteTimeout. While more frames are queued
// behind it, it only gathers the frame, and the last one of the burst goes
// out with all of them in one system call.
func (c *conn) write(b []byte, more bool) error {
	if err := c.arm(); err != nil {
		return err
	}
	c.sw.cork()
	err := c.ws.Write(context.Background(), websocket.MessageText, b)
	if !more || err != nil || c.sw.gathered() >= gatherLimit {
		if uerr := c.sw.uncork(); err == nil {
			err = uerr
		}
	}
	c.disarm()
	return err
}

var errTooBig = errors.New("message too big")

// errCut fails a write after cut.
var errCut = errors.New("hub: connection cut")

// readBufs recycles message buffers: every message used to get a fresh,
// growing buffer, and at thousands of pairings a second that garbage was a
// large part of the hub's GC work. A buffer goes back once the frame is
// decoded (DecodeFrame copies what it keeps).
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readMessage reads one message of at most MaxMessageBytes into a buffer
// from readBufs, which the caller puts back (putReadBuf) once done with
// msg. It reads one byte more than allowed to tell an oversized message
// from one that fits. The buffer is taken only once a message has begun:
// taken before, every idle connection held one while it waited (1.2 KiB
// each at 5,000 connections).
//
// ctx must have no Done channel: for a cancellable ctx coder/websocket
// registers a context.AfterFunc on every read, which an idle connection
// would hold for its whole life. Nothing needs it: every way a connection
// ends closes the socket, which ends a blocked read.
func (c *conn) readMessage(ctx context.Context) (typ websocket.MessageType, msg []byte, buf *bytes.Buffer, err error) {
	c.rd.inReader.Store(true)
	typ, r, err := c.ws.Reader(ctx)
	c.rd.inReader.Store(false)
	if err != nil {
		return 0, nil, nil, err
	}
	max := int64(c.h.cfg.MaxMessageBytes)
	buf = readBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		return typ, nil, buf, err
	}
	if int64(buf.Len()) > max {
		return typ, nil, buf, errTooBig
	}
	return typ, buf.Bytes(), buf, nil
}

// readMessages reads and handles messages until none is left to read at
// once.
//
//go:noinline
func (c *conn) readMessages() readOutcome {
	// Nothing cancels what a message starts (a store call): the
	// connection ends only after its reader has returned from here.
	ctx := context.Background()
	rctx := ctx // see readMessage
	out := readQuiet
	for {
		typ, msg, buf, err := c.readMessage(rctx)
		if errors.Is(err, errIdle) {
			return out // a control frame came, and nothing after it
		}
		if err == nil {
			c.onMessage(ctx, typ, msg)
			out = readIdle
		}
		if buf != nil {
			putReadBuf(buf)
		}
		if errors.Is(err, errTooBig) {
			// The rest of the oversized message is still on the socket, and
			// is never parsed: the reader stops here, and the writer's close
			// handshake (websocket.Conn.Close) skips the rest of that
			// message's payload and discards whatever follows until the
			// client's close frame. Reading on would take the payload's bytes
			// for frame headers (a ping hidden in it was answered, and the
			// client got 1002 "unexpected rsv bits" instead of too_big).
			if !c.closing.Load() {
				c.h.m.Reject("too_big")
				c.fail(websocket.StatusMessageTooBig, proto.CodeTooBig, "message exceeds the hub's size limit")
			}
			<-c.wclosed
			return readEnded
		}
		if err != nil {
			return readEnded
		}
		if !c.rd.pending() {
			return readIdle
		}
	}
}

// putReadBuf recycles buf unless an unusually large message grew it.
func putReadBuf(buf *bytes.Buffer) {
	if buf.Cap() <= 16<<10 {
		readBufs.Put(buf)
	}
}

// onControl counts a ping or pong from the client against the message
// budget: without it a client could have the hub answer pings as fast as
// it sends them (20,000 in 3 s on one connection). It reports whether a
// ping may be answered: not over the limit, and not once the connection
// is closing (the close handshake answers nothing).
func (c *conn) onControl() bool {
	if c.closing.Load() {
		return false
	}
	if !c.lim.Allow() {
		c.h.m.Reject("rate_limited")
		c.fail(websocket.StatusPolicyViolation, proto.CodeRateLimited, "too many messages (pings count too); slow down")
		return false
	}
	return true
}

// onMessage checks and handles one message; msg is valid only during the
// call.
func (c *conn) onMessage(ctx context.Context, typ websocket.MessageType, msg []byte) {
	if c.closing.Load() {
		return // discard frames that arrive while closing
	}
	if typ != websocket.MessageText {
		c.h.m.Reject("binary")
		c.fail(websocket.StatusUnsupportedData, proto.CodeBinary, "binary frames are not part of the protocol; send JSON text")
		return
	}
	if !c.lim.Allow() {
		c.h.m.Reject("rate_limited")
		c.fail(websocket.StatusPolicyViolation, proto.CodeRateLimited, "too many messages; slow down")
		return
	}
	f, err := proto.DecodeFrame(msg)
	if err != nil {
		c.h.m.Reject("malformed")
		c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeBadRequest, Message: "malformed frame: " + err.Error()})
		return
	}
	c.h.m.Message(f.Type)
	c.handle(ctx, f)
}
