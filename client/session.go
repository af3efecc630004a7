package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
)

// session is the goroutine that owns a running Client's conversation with
// the other member: the current connection, chat, file transfers and the
// keepalive. Everything reaches it through channels (frames from the
// connection's bounded inbox, connections from the hub loop, chat and files
// queued through the API, reports from the disk goroutines), so it needs no
// lock for what it owns, and it never waits for the network or the disk:
// a ping is answered while a file is being synced.
type session struct {
	cfg      Config
	emit     func(Event)
	fatal    *latch        // set when the session must end: password mismatch, the other side left
	progress chan struct{} // signalled when chat is acknowledged or a file gets its verdict
	status   *status
	chat     *chat
	send     *sender
	recv     *receiver

	attachCh chan *conn      // from the hub loop: the connection to use now
	ready    chan transport  // to the hub loop: a connection passed key confirmation
	calls    chan func()     // run on the session goroutine
	reports  chan diskReport // from the writers
	disk     sync.WaitGroup  // the readers and writers
	quit     chan struct{}   // closed by stop
	stopped  chan struct{}   // closed when run has returned
	stopOnce sync.Once

	// The session goroutine's own.
	cur      *conn
	lastRecv time.Time
	ticker   *time.Ticker
}

func newSession(cfg Config, emit func(Event), fatal *latch, st *status, ch *chat, q *outQueue) *session {
	s := &session{
		cfg: cfg, emit: emit, fatal: fatal, status: st, chat: ch,
		progress: make(chan struct{}, 1),
		attachCh: make(chan *conn),
		ready:    make(chan transport, 16),
		calls:    make(chan func()),
		reports:  make(chan diskReport, writerQueue),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	s.send = newSender(q, cfg.ChunkSize, emit, func() { notify(s.progress) }, &s.disk)
	s.recv = newReceiver(dirStore{cfg.OutDir}, emit, &s.disk, s.reports, s.quit)
	return s
}

// start runs the session goroutine until stop.
func (s *session) start() { go s.run() }

// stop ends the session goroutine and waits for it and for the disk
// goroutines; files being received keep their .part files. It is
// idempotent.
func (s *session) stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	<-s.stopped
}

// attach makes c the connection the session uses (nil: none), once the
// hub loop agreed its keys.
func (s *session) attach(ctx context.Context, c *conn) error {
	select {
	case s.attachCh <- c:
		return nil
	case <-s.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs fn on the session goroutine and waits for it.
func (s *session) call(ctx context.Context, fn func()) error {
	ran := make(chan struct{})
	select {
	case s.calls <- func() { fn(); close(ran) }:
	case <-s.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	<-ran // taken by the session goroutine, which runs it at once
	return nil
}

// link is the current connection once it passed key confirmation: the one
// chat and file transfer use. It is nil (a nil interface) otherwise.
func (s *session) link() link {
	if s.cur == nil || !s.cur.confirmed {
		return nil
	}
	return s.cur
}

// alwaysReady stands in a select for work that can be done now.
var alwaysReady = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func (s *session) run() {
	defer close(s.stopped)
	s.ticker = time.NewTicker(s.cfg.PingInterval)
	defer s.ticker.Stop()
	defer s.shutdown()
	for {
		c := s.cur
		var (
			control, bulk       <-chan []byte
			opened, low, lost   <-chan struct{}
			pump                <-chan struct{}
			tick                <-chan time.Time
			heldCh, job         = s.recv.heldFor()
			chatWake, filesWake <-chan struct{}
		)
		if c != nil {
			lost = c.t.done()
			if !c.confirmSent {
				opened = c.t.opened()
			}
			control = c.t.frames(proto.ControlChannel)
			if !s.recv.holding() {
				// A write waits for the disk: file data waits with it,
				// control (a ping, chat) does not.
				bulk = c.t.frames(proto.BulkChannel)
			}
			if c.confirmed {
				tick = s.ticker.C
				chatWake, filesWake = s.chat.wake, s.send.q.wake
				if s.send.waitingLow() {
					low = c.t.lowWater()
				}
				if s.send.canPump() {
					pump = alwaysReady
				}
			}
		}
		data := s.send.data()
		select {
		case <-s.quit:
			return
		case c := <-s.attachCh:
			s.detach()
			s.cur = c
		case fn := <-s.calls:
			fn()
		case <-lost:
			s.detach()
		case <-opened:
			_ = c.confirm() // a failure fails the transport: lost is next
		case f := <-control:
			s.frame(c, proto.ControlChannel, f)
		case f := <-bulk:
			s.frame(c, proto.BulkChannel, f)
		case <-low:
			s.send.lowWater()
		case <-pump:
			s.send.pump(c)
		case b, ok := <-data:
			s.send.read(s.link(), b, ok)
		case heldCh <- job:
			s.recv.handed()
		case rep := <-s.reports:
			s.recv.report(s.link(), rep)
		case <-chatWake:
			s.chat.flush(c)
		case <-filesWake:
			s.send.start(c)
		case now := <-tick:
			s.keepalive(c, now)
		}
	}
}

// detach forgets the current connection: the hub loop replaced it, or it
// failed (the hub loop sees that too, and reconnects).
func (s *session) detach() {
	if s.cur == nil {
		return
	}
	s.cur = nil
	s.send.stop()
	s.chat.reset()
	s.status.setConn(nil)
}

// shutdown runs when the session goroutine ends.
func (s *session) shutdown() {
	s.detach()
	s.recv.close()
	s.disk.Wait()
}

// frame takes one frame from c's inbox of channel ch.
func (s *session) frame(c *conn, ch int, raw []byte) {
	select {
	case <-c.t.done():
		// Once a frame was rejected (or the connection failed), nothing
		// more from this connection counts, even frames that would open.
		s.detach()
		return
	default:
	}
	if ch == proto.BulkChannel && !c.confirmed {
		// File data follows a file-accept, which this side sends only once
		// the connection is ready: no correct peer sends it earlier.
		s.emit(Event{Kind: EventWarning, Text: "dropped the connection: file data arrived before key confirmation"})
		c.close(errors.New("file data before key confirmation"))
		s.detach()
		return
	}
	typ, payload, err := c.chans[ch].OpenInPlace(raw)
	if err != nil {
		if !c.confirmed && errors.Is(err, e2e.ErrMismatch) {
			s.mismatch(c)
			return
		}
		// DTLS already guarantees integrity between the two endpoints, so a
		// frame that fails here was forged, replayed or reordered by one of
		// them: drop the connection and start again with fresh keys.
		s.emit(Event{Kind: EventWarning, Text: "rejected a data-channel frame: " + err.Error()})
		c.close(fmt.Errorf("rejected frame: %w", err))
		s.detach()
		return
	}
	s.lastRecv = time.Now()
	if !c.confirmed {
		if typ != proto.MsgConfirm || c.keys.CheckConfirmation(payload) != nil {
			s.mismatch(c)
			return
		}
		s.confirmed(c)
		return
	}
	if channelOf(typ) != ch {
		// A known type on the wrong channel is ignored (opened first, so
		// that the sequences stay in step): bulk carries file data only, and
		// file data on control could overtake or trail the file's other
		// chunks.
		return
	}
	switch typ {
	case proto.MsgChat:
		s.chat.receive(c, payload, func(m chatPayload) {
			s.emit(Event{Kind: EventChat, Text: m.Text, Time: time.UnixMilli(m.TS)})
		})
	case proto.MsgChatAck:
		if s.chat.acked(payload) {
			notify(s.progress)
		}
	case proto.MsgPing:
		_ = c.send(proto.MsgPong, payload)
	case proto.MsgPong:
		var pp pingPayload
		if decodeJSON(payload, &pp) == nil {
			s.status.setRTT(time.Since(time.Unix(0, pp.T)))
		}
	case proto.MsgBye:
		s.emit(Event{Kind: EventPeerLeft, Text: "the other side left; the room is closed"})
		s.fatal.set(ErrPeerLeft)
	case proto.MsgFileAccept, proto.MsgFileAck, proto.MsgFileResult:
		s.send.handle(c, typ, payload)
	case proto.MsgFileOffer, proto.MsgFileChunk, proto.MsgFileDone:
		s.recv.handle(c, typ, payload)
	}
}

// mismatch ends the session: the other side derived different keys.
func (s *session) mismatch(c *conn) {
	s.fatal.set(ErrPasswordMismatch)
	c.close(ErrPasswordMismatch)
	s.detach()
}

// confirmed runs when c passed key confirmation: report it, resend
// unacknowledged chat, resume transfers, start the keepalive.
func (s *session) confirmed(c *conn) {
	c.confirmed = true
	s.status.setConn(c.t)
	s.emit(Event{Kind: EventConnected, Path: c.t.path()})
	select {
	case s.ready <- c.t:
	default: // the hub loop is behind; it only needs to know that one connected
	}
	s.ticker.Reset(s.cfg.PingInterval)
	s.chat.flush(c)
	s.send.start(c)
}

// keepalive sends an encrypted ping every PingInterval and fails the
// connection after PeerTimeout without any frame from the other side.
func (s *session) keepalive(c *conn, now time.Time) {
	if s.recv.holding() {
		// Frames wait because this side's disk is slow, not because the
		// other side went quiet.
		s.lastRecv = now
	}
	if now.Sub(s.lastRecv) > s.cfg.PeerTimeout {
		c.close(fmt.Errorf("peer silent for %v", s.cfg.PeerTimeout))
		s.detach()
		return
	}
	b, _ := json.Marshal(pingPayload{T: time.Now().UnixNano()})
	_ = c.send(proto.MsgPing, b)
}

// status is what Status reports, written by the hub loop (the room) and by
// the session goroutine (the connection, the round trip).
type status struct {
	mu       sync.Mutex
	room     string
	conn     transport // confirmed, nil when none
	rtt      time.Duration
	hub      bool   // attached to the hub
	hubIssue string // why not, in words
}

func (st *status) setRoom(room string) {
	st.mu.Lock()
	st.room = room
	st.mu.Unlock()
}

func (st *status) setConn(t transport) {
	st.mu.Lock()
	st.conn = t
	st.mu.Unlock()
}

func (st *status) setRTT(rtt time.Duration) {
	st.mu.Lock()
	st.rtt = rtt
	st.mu.Unlock()
}

func (st *status) setHub(up bool, issue string) {
	st.mu.Lock()
	st.hub, st.hubIssue = up, issue
	st.mu.Unlock()
}

func (st *status) get() (room string, t transport, rtt time.Duration, hub bool, hubIssue string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.room, st.conn, st.rtt, st.hub, st.hubIssue
}
