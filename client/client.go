package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/proto"
)

// MinChunkSize is the smallest Config.ChunkSize: smaller chunks would cost
// more in frames than they carry.
const MinChunkSize = 1 << 10

// Config configures a Client.
type Config struct {
	// Hub is the hub's URL (http://host:8080, https://host, ws://…).
	Hub string
	// Room is the code to join; empty creates a room (host).
	Room string
	// Password derives the keys. It never leaves this process.
	Password string
	// Relay forces TURN: only relay candidates are used.
	Relay bool
	// OutDir receives files (default ".").
	OutDir string
	// ChunkSize is the file data per chunk: default proto.DefaultChunkData
	// (64 KiB), from 1 KiB to proto.MaxChunkData, the most whose frame
	// fits the largest data-channel message a browser takes.
	ChunkSize int
	// PingInterval and PeerTimeout drive the encrypted keepalive
	// (default 5 s and 15 s).
	PingInterval, PeerTimeout time.Duration
	// OnEvent receives everything worth showing a person. It is called from
	// the client's goroutines and must not block for long.
	OnEvent func(Event)
	// LoopbackOnly gathers only loopback candidates: tests and local use.
	LoopbackOnly bool
	// SettingEngine, if set, adjusts pion's settings after the client's own
	// (benchmarks use it to run over an emulated network).
	SettingEngine func(*webrtc.SettingEngine)
	// Logger receives debug logs (with the network's own words for what
	// the events say in sentences); nil discards them.
	Logger *slog.Logger
	// StateDir, if set, is where the client keeps what a rerun needs to come
	// back after this process died: the room, the resume token, and the
	// files under way (state.go). Run removes it when the room ends.
	StateDir string
	// StateKey names this client's state in StateDir. Empty: a guest's is
	// RoomStateKey(Hub, Room), and a host keeps none (nothing would find it
	// again); SendStateKey names a sender's.
	StateKey string
	// noRelayRestart: a relay-only guest answers every offer as it comes,
	// as before relay restart requests (tests measure the difference).
	noRelayRestart bool
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	EventRoom         EventKind = iota + 1 // Text: the room code (host)
	EventWaiting                           // waiting for the other side
	EventConnected                         // Path: "direct (host)", "relay", …
	EventDisconnected                      // Text: why; a reconnect follows
	EventChat                              // Text, Time: a message from the peer
	EventProgress                          // File: transfer progress
	EventFileSent                          // File: the receiver verified (or rejected) a file
	EventFileReceived                      // File: a file arrived (or failed verification)
	EventWarning                           // Text
	EventPeerLeft                          // the other side left the room
	EventFileResumed                       // File: a cut transfer continues from File.Done
	// EventHub: Text says what happened to the connection to the hub: it
	// is unreachable (with when the next try is, and whether the other side
	// is still connected directly, which needs no hub), or it is back.
	// Status.Hub is the current state.
	EventHub
)

// Event is one thing that happened.
type Event struct {
	Kind EventKind
	Text string
	Time time.Time
	Path string
	File *FileStatus
}

// FileStatus describes a transfer.
type FileStatus struct {
	Name     string // as offered by the sender
	Path     string // where it was written (receiver, once verified)
	Size     int64
	Done     int64 // bytes acknowledged (sender) or written (receiver)
	Incoming bool
	Started  time.Time
	OK       bool
	Err      string
}

// Status is a snapshot for /status.
type Status struct {
	Room      string
	Connected bool // to the other side (directly or through the relay)
	Path      string
	RTT       time.Duration
	Hub       bool   // attached to the hub now
	HubIssue  string // when not attached, why, in words ("cannot reach the hub at …")
}

// Client is one member of a room.
//
// Its parts run on three kinds of goroutine, and each part has one owner:
// Run's goroutine is the hub loop (signal.go), which owns the hub session
// (room, token, keys, ICE servers) and the lifecycle of each WebRTC
// connection; the session goroutine (session.go) owns the conversation over
// the current connection (chat, file transfers, keepalive); disk goroutines
// (disk.go) read and write files for it. The API's methods only queue work
// (chat, files) or read snapshots, under locks of their own.
type Client struct {
	cfg Config
	api *webrtc.API
	// relayAPI is api with relay-only acceptance waits, for a host's
	// connection to a relay-only guest; made when first needed.
	relayAPI *webrtc.API
	log      *slog.Logger

	chat    *chat
	files   *outQueue
	status  *status
	state   *stateFile
	sess    *session
	fatal   *latch        // the error that ends the session
	leaveCh chan struct{} // closed by Leave
	leaveMu sync.Once
	leftMu  sync.Once // EventPeerLeft is said once: bye and room-closed both say it
	running atomic.Bool

	// The hub loop's own (Run's goroutine).
	room  string
	token string
	role  e2e.Role
	// signal seals under the current epoch (docs/PROTOCOL.md, "PAKE"),
	// nil while there is none. A host's exch is its exchange waiting for
	// the guest's reply; a guest's pending, the epoch of the exchange it
	// replied to, until an offer sealed under it opens.
	signal       *e2e.Signaler
	exch         *e2e.HostExchange
	exchMsg      string // the share that started exch
	pending      *e2e.Signaler
	pendingShare string // the share pending's exchange answers
	pendingReply string // the reply that pending's exchange got
	// prepared: the host's next connection, gathered while its share
	// waits for the reply (it is cur until then).
	prepared          *peer
	preparedRelayWait bool
	preparedAt        time.Time
	// failures counts this room's failed key confirmations (GuessLimit);
	// failCounted: the one that ended the session was counted already.
	failures    int
	failCounted bool
	ice         *proto.ICEConfig
	cur         *peer // current connection, nil between connections
	// curReady: cur passed key confirmation (the session said so).
	curReady bool
	// fromState: room, role and token come from an earlier process's state.
	fromState bool
	// attachedOnce: the hub has answered a create, join or resume.
	attachedOnce bool
	// roomGone: the hub answered no_such_room to a resume while the direct
	// connection lived; once that connection is gone too, the session ends.
	roomGone bool
	// hubLost: an outage of the hub was reported; its end is reported too.
	hubLost bool
	// relayNext (host): the guest said it is relay-only; the next offer's
	// connection takes the first relayed pair that works.
	relayNext bool
	// relayAsked (guest): a relay restart request went out since the last
	// answer; the next offer is answered whatever it says.
	relayAsked bool
}

// apiOptions are the pion settings for cfg's connections; relayOnly: every
// pair they can form is relayed (this side's policy or the guest's), so
// they take the first that works (rtc.Waits).
func apiOptions(cfg Config, relayOnly bool) rtc.Options {
	return rtc.Options{LoopbackOnly: cfg.LoopbackOnly, RelayOnly: relayOnly, SettingEngine: cfg.SettingEngine}
}

// New checks cfg and returns a Client; Run starts it.
func New(cfg Config) (*Client, error) {
	if cfg.Hub == "" {
		return nil, errors.New("client: no hub URL")
	}
	if _, err := proto.WebSocketURL(cfg.Hub); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.Password == "" {
		return nil, errors.New("client: empty password")
	}
	if cfg.OutDir == "" {
		cfg.OutDir = "."
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = proto.DefaultChunkData
	}
	if cfg.ChunkSize < MinChunkSize || cfg.ChunkSize > proto.MaxChunkData {
		return nil, fmt.Errorf("client: chunk size %d outside %d..%d bytes", cfg.ChunkSize, MinChunkSize, proto.MaxChunkData)
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = proto.PingInterval
	}
	if cfg.PeerTimeout == 0 {
		cfg.PeerTimeout = proto.PeerTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:     cfg,
		api:     rtc.NewAPI(apiOptions(cfg, cfg.Relay)),
		log:     cfg.Logger,
		chat:    newChat(),
		files:   newOutQueue(),
		status:  &status{},
		fatal:   newLatch(),
		leaveCh: make(chan struct{}),
		role:    e2e.Host,
	}
	key := cfg.StateKey
	if cfg.Room != "" {
		code, err := proto.NormalizeRoomCode(cfg.Room)
		if err != nil {
			return nil, fmt.Errorf("client: %w: %q", err, cfg.Room)
		}
		c.room, c.role = code, e2e.Guest
		c.status.setRoom(code)
		if key == "" {
			key = RoomStateKey(cfg.Hub, code)
		}
	}
	c.state = openState(cfg.StateDir, key, cfg.Hub, func(err error) {
		c.emit(Event{Kind: EventWarning, Text: err.Error()})
	})
	if room, role, token, ok := c.state.resumable(); ok && (c.room == "" || c.room == room) {
		// An earlier process of this command died in this room: come back
		// as the same member.
		c.room, c.token, c.fromState = room, token, true
		c.role = e2e.Guest
		if role == "host" {
			c.role = e2e.Host
		}
		c.status.setRoom(room)
		c.failures = c.state.failures()
		if ps := c.state.pending(); ps != nil && c.role == e2e.Guest {
			if sig, err := e2e.NewSignaler(&e2e.Epoch{SID: ps.SID, Master: ps.Master}, room); err == nil {
				c.pending, c.pendingShare, c.pendingReply = sig, ps.Share, ps.Reply
			}
		}
	}
	if c.state.keyed() {
		c.chat.persist(c.state.chatIDs(), c.state.reserveChatIDs)
	}
	c.sess = newSession(cfg, c.emit, c.fatal, c.status, c.chat, c.files)
	c.sess.recv.restore(c.state)
	return c, nil
}

func (c *Client) emit(ev Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Kind == EventPeerLeft {
		c.leftMu.Do(func() { c.cfg.OnEvent(ev) })
		return
	}
	c.cfg.OnEvent(ev)
}

// Leave ends the session for good: the peer is told, the room is closed
// (at the hub too, if it can be reached), the state kept for a rerun is
// removed, and Run returns nil.
func (c *Client) Leave() {
	c.leaveMu.Do(func() { close(c.leaveCh) })
}

// Status returns the current state.
func (c *Client) Status() Status {
	room, t, rtt, hub, issue := c.status.get()
	s := Status{Room: room, RTT: rtt, Hub: hub, HubIssue: issue}
	if t != nil {
		s.Connected = true
		s.Path = t.path()
	}
	return s
}

// Send queues a chat message; it is delivered once, even across reconnects.
func (c *Client) Send(text string) error {
	if len(text) > proto.MaxChatText {
		return fmt.Errorf("message of %d bytes exceeds %d", len(text), proto.MaxChatText)
	}
	c.chat.queue(text)
	return nil
}

// Run connects and keeps the session going, reconnecting after failures,
// until Leave, a fatal error, or ctx ends. It returns once every goroutine
// it started has finished. A Client runs once.
//
// The connection to the other side does not need the hub once it is up:
// when the hub connection drops, chat and transfers go on over it while
// the hub loop reconnects in the background. The hub is needed again only
// when that connection fails (for a new offer), and a room the hub no
// longer knows ends the session only then.
//
// ctx ending is a leave, as Leave is: the other side is told, the room is
// closed, and Run returns ctx's error. Leave makes it return nil.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("client: Run called twice")
	}
	c.sess.start()
	defer c.sess.stop() // last: the connection is closed by then
	defer c.setPeer(nil)
	err := c.loop(ctx)
	// A wrong key confirmation on the data channel ends the session; if the
	// hub was away then, it is counted (and the room closed at the limit)
	// here, without a report.
	c.countSessionMismatch(context.Background(), nil, err)
	if !errors.Is(err, ErrReplaced) && !errors.Is(err, ErrPasswordMismatch) {
		// Every other way out ends this member's part in the room: nothing
		// to come back to. (The process that took over keeps the state; a
		// member that found the password wrong keeps its place, so that the
		// same command run again with the right one resumes it.)
		c.state.remove()
	}
	return err
}

// loop runs hub sessions one after another, and waits with backoff between
// them, until the session ends.
func (c *Client) loop(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for {
		connected, err := c.hubSession(ctx)
		c.status.setHub(false, "")
		if err == nil { // left: Leave, or ctx ended
			return ctx.Err()
		}
		c.log.Debug("hub session ended", "err", err)
		if ferr := c.fatal.get(); ferr != nil {
			return ferr
		}
		if ctx.Err() != nil {
			c.sayGoodbye(nil)
			return ctx.Err()
		}
		switch {
		case errors.Is(err, ErrNoSuchRoom) && c.peerLive():
			// The hub restarted and forgot the room, or let it expire:
			// the direct connection needs no hub, so it goes on, and the
			// hub loop keeps trying (the room may come back with the hub).
			c.roomGone = true
			err = &sentenceError{msg: "the hub no longer knows this room (it restarted, or the room expired)", err: err}
		case errors.Is(err, ErrNoSuchRoom) && c.fromState && !c.attachedOnce && c.role == e2e.Host:
			// A rerun of a host (tryst send) whose earlier room is gone:
			// open a new one for the same files.
			c.emit(Event{Kind: EventWarning, Text: "the room of the earlier run is gone (it expired, or the hub forgot it); opening a new one"})
			c.room, c.token, c.fromState = "", "", false
			c.signal, c.pending, c.exch, c.failures = nil, nil, nil, 0
			c.state.forgetRoom()
			continue
		case errors.Is(err, ErrNoSuchRoom) && c.attachedOnce:
			return errRoomForgotten
		case errors.Is(err, ErrNoSuchRoom) && c.fromState:
			return errEarlierRoomGone
		case endsSession(err):
			return err
		}
		if connected {
			backoff = 500 * time.Millisecond
		}
		wait := backoff
		if we, ok := errors.AsType[*waitError](err); ok {
			// The hub said when trying again can succeed; an earlier
			// attempt would only be refused (or limited) again and, for a
			// create, prolong the wait.
			wait = max(wait, we.after)
			c.emit(Event{Kind: we.kind, Text: fmt.Sprintf("%v; %s in %v", we.err, we.next, wait)})
		} else {
			c.emit(Event{Kind: EventHub, Text: c.hubTrouble(err, wait)})
		}
		if done, err := c.pause(ctx, wait); done {
			return err
		}
		backoff = min(backoff*2, proto.ReconnectBackoffMax)
	}
}

// hubTrouble reports a hub connection that ended or could not be made, in
// words, with what happens next.
func (c *Client) hubTrouble(err error, wait time.Duration) string {
	why := err.Error()
	c.status.setHub(false, why)
	if c.attachedOnce {
		c.hubLost = true
	}
	if c.peerLive() {
		return fmt.Sprintf("%s; still connected to the other side, reconnecting to the hub in the background (next try in %v)", why, wait)
	}
	return fmt.Sprintf("%s; retrying in %v", why, wait)
}

// pause waits between two hub sessions. The connection to the other side
// lives on meanwhile; if it fails, it waits for the hub. It reports whether
// the session ended, and how.
func (c *Client) pause(ctx context.Context, wait time.Duration) (bool, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		var lost <-chan struct{}
		if c.cur != nil {
			lost = c.cur.done()
		}
		select {
		case <-t.C:
			return false, nil
		case <-ctx.Done():
			c.sayGoodbye(nil)
			return true, ctx.Err()
		case <-c.leaveCh:
			c.sayGoodbye(nil)
			return true, nil
		case <-c.fatal.done():
			return true, c.fatal.get()
		case tr := <-c.sess.ready:
			if c.cur != nil && tr == transport(c.cur) {
				c.curReady = true
			}
		case <-lost:
			if ferr := c.fatal.get(); ferr != nil {
				return true, ferr
			}
			why := c.cur.err()
			c.setPeer(nil)
			if c.roomGone {
				return true, errRoomForgotten
			}
			c.emit(Event{Kind: EventDisconnected, Text: fmt.Sprintf(
				"%v; reconnecting needs the hub, which is unreachable: waiting for it", why)})
		}
	}
}

// peerLive reports whether the current connection passed key confirmation
// and has not failed: chat and transfers go over it without the hub.
func (c *Client) peerLive() bool {
	if c.cur == nil || !c.curReady {
		return false
	}
	select {
	case <-c.cur.done():
		return false
	default:
		return true
	}
}

// setPeer makes p current (nil: none), closing the previous connection.
// The session goroutine sees the old one end and stops using it.
func (c *Client) setPeer(p *peer) {
	old := c.cur
	c.cur, c.curReady = p, false
	if old != nil {
		old.close()
	}
}

// WaitIdle blocks until every chat message sent so far is acknowledged and
// every queued file has a verdict, or until ctx ends or the session fails.
func (c *Client) WaitIdle(ctx context.Context) error {
	for {
		if c.chat.pending() == 0 && c.files.pending() == 0 {
			return nil
		}
		select {
		case <-c.sess.progress:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.fatal.done():
			return c.fatal.get()
		}
	}
}
