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
	// ChunkSize is the file chunk size (default 16 KiB, at most 64 KiB).
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
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// iterations overrides PBKDF2's work factor in tests.
	iterations int
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
	Connected bool
	Path      string
	RTT       time.Duration
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
	log *slog.Logger

	chat    *chat
	files   *outQueue
	status  *status
	sess    *session
	fatal   *latch        // the error that ends the session
	leaveCh chan struct{} // closed by Leave
	leaveMu sync.Once
	running atomic.Bool

	// The hub loop's own (Run's goroutine).
	room   string
	token  string
	role   e2e.Role
	master []byte
	signal *e2e.Signaler
	ice    *proto.ICEConfig
	cur    *peer // current connection, nil between connections
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
		cfg.ChunkSize = 16 << 10
	}
	if cfg.ChunkSize < 1<<10 || cfg.ChunkSize > 64<<10 {
		return nil, fmt.Errorf("client: chunk size %d outside 1 KiB..64 KiB", cfg.ChunkSize)
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 5 * time.Second
	}
	if cfg.PeerTimeout == 0 {
		cfg.PeerTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.iterations == 0 {
		cfg.iterations = e2e.Iterations
	}
	c := &Client{
		cfg:     cfg,
		api:     rtc.NewAPI(rtc.Options{LoopbackOnly: cfg.LoopbackOnly, RelayOnly: cfg.Relay, SettingEngine: cfg.SettingEngine}),
		log:     cfg.Logger,
		chat:    newChat(),
		files:   newOutQueue(),
		status:  &status{},
		fatal:   newLatch(),
		leaveCh: make(chan struct{}),
		role:    e2e.Host,
	}
	if cfg.Room != "" {
		code, err := proto.NormalizeRoomCode(cfg.Room)
		if err != nil {
			return nil, fmt.Errorf("client: %w: %q", err, cfg.Room)
		}
		c.room, c.role = code, e2e.Guest
		c.status.setRoom(code)
	}
	c.sess = newSession(cfg, c.emit, c.fatal, c.status, c.chat, c.files)
	return c, nil
}

func (c *Client) emit(ev Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	c.cfg.OnEvent(ev)
}

// Leave ends the session for good: the peer is told, the room is closed,
// and Run returns nil.
func (c *Client) Leave() {
	c.leaveMu.Do(func() { close(c.leaveCh) })
}

// Status returns the current state.
func (c *Client) Status() Status {
	room, t, rtt := c.status.get()
	s := Status{Room: room, RTT: rtt}
	if t != nil {
		s.Connected = true
		s.Path = t.path()
	}
	return s
}

// Send queues a chat message; it is delivered once, even across reconnects.
func (c *Client) Send(text string) error {
	if len(text) > maxChatBytes {
		return fmt.Errorf("message of %d bytes exceeds %d", len(text), maxChatBytes)
	}
	c.chat.queue(text)
	return nil
}

// Run connects and keeps the session going, reconnecting after failures,
// until Leave, a fatal error, or ctx ends. It returns once every goroutine
// it started has finished. A Client runs once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("client: Run called twice")
	}
	c.sess.start()
	defer c.sess.stop() // last: the connection is closed by then
	defer c.setPeer(nil)
	backoff := 500 * time.Millisecond
	for {
		connected, err := c.hubSession(ctx)
		c.setPeer(nil)
		if err == nil {
			return nil
		}
		if ferr := c.fatal.get(); ferr != nil {
			return ferr
		}
		if errors.Is(err, ErrNoSuchRoom) || errors.Is(err, ErrRoomFull) || errors.Is(err, ErrPeerLeft) ||
			errors.Is(err, ErrPasswordMismatch) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
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
			c.emit(Event{Kind: EventDisconnected, Text: fmt.Sprintf("%v; reconnecting in %v", err, wait)})
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.leaveCh:
			t.Stop()
			return nil
		}
		backoff = min(backoff*2, proto.ReconnectBackoffMax)
	}
}

// setPeer makes p current (nil: none), closing the previous connection.
// The session goroutine sees the old one end and stops using it.
func (c *Client) setPeer(p *peer) {
	old := c.cur
	c.cur = p
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
