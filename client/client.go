package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// Errors that end a session; callers branch on them.
var (
	// ErrPasswordMismatch: the two sides typed different passwords.
	ErrPasswordMismatch = errors.New("password mismatch: the other side uses a different password")
	// ErrNoSuchRoom: the code is unknown or the room expired.
	ErrNoSuchRoom = errors.New("no such room: check the code, or the room expired")
	// ErrRoomFull: the room already has two members.
	ErrRoomFull = errors.New("room is full")
	// ErrPeerLeft: the other member left the room for good.
	ErrPeerLeft = errors.New("the other side left")
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
type Client struct {
	cfg Config
	api *webrtc.API
	log *slog.Logger

	mu       sync.Mutex
	room     string
	token    string
	role     e2e.Role
	master   []byte
	signal   *e2e.Signaler
	ice      *proto.ICEConfig
	cur      *peer // current connection, nil between connections
	rtt      time.Duration
	fatalErr error

	// Chat: messages are numbered from 1, kept until acknowledged, and
	// sent again after a reconnect; the receiver drops what it has seen.
	nextChat   uint64
	unacked    []chatPayload
	lastChatIn uint64

	files fileState

	progress chan struct{} // signalled when chat is acknowledged or a file finishes
	failures chan *peer    // peers that failed
	readyCh  chan *peer    // peers that confirmed
	fatalCh  chan struct{} // closed on a fatal error
	leaveCh  chan struct{} // closed by Leave
	fatalMu  sync.Once
	leaveMu  sync.Once
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
		cfg:      cfg,
		log:      cfg.Logger,
		failures: make(chan *peer, 16),
		readyCh:  make(chan *peer, 16),
		fatalCh:  make(chan struct{}),
		leaveCh:  make(chan struct{}),
		progress: make(chan struct{}, 1),
		role:     e2e.Host,
	}
	if cfg.Room != "" {
		code, err := proto.NormalizeRoomCode(cfg.Room)
		if err != nil {
			return nil, fmt.Errorf("client: %w: %q", err, cfg.Room)
		}
		c.room, c.role = code, e2e.Guest
	}
	c.files.init()
	c.api = c.newAPI()
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

// fatal records an error that ends the session.
func (c *Client) fatal(err error) {
	c.fatalMu.Do(func() {
		c.mu.Lock()
		c.fatalErr = err
		c.mu.Unlock()
		close(c.fatalCh)
	})
}

func (c *Client) peerFailed(p *peer, err error) {
	select {
	case c.failures <- p:
	default: // the run loop is already behind on failures; it re-checks the current peer
	}
}

func (c *Client) peerReady(p *peer) {
	select {
	case c.readyCh <- p:
	default:
	}
}

// Leave ends the session for good: the peer is told, the room is closed,
// and Run returns nil.
func (c *Client) Leave() {
	c.leaveMu.Do(func() { close(c.leaveCh) })
}

// Status returns the current state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Room: c.room, RTT: c.rtt}
	if c.cur != nil && c.cur.confirmed.Load() {
		s.Connected = true
		s.Path = c.cur.path()
	}
	return s
}

// Send queues a chat message; it is delivered once, even across reconnects.
func (c *Client) Send(text string) error {
	if len(text) > maxChatBytes {
		return fmt.Errorf("message of %d bytes exceeds %d", len(text), maxChatBytes)
	}
	c.mu.Lock()
	c.nextChat++
	m := chatPayload{ID: c.nextChat, Text: text, TS: time.Now().UnixMilli()}
	c.unacked = append(c.unacked, m)
	p := c.cur
	c.mu.Unlock()
	if p != nil && p.confirmed.Load() {
		b, _ := json.Marshal(m)
		_ = p.send(msgChat, b) // on failure the reconnect resends it
	}
	return nil
}

// Run connects and keeps the session going, reconnecting after failures,
// until Leave, a fatal error, or ctx ends.
func (c *Client) Run(ctx context.Context) error {
	defer c.setPeer(nil)
	defer c.files.closeAll()
	backoff := 500 * time.Millisecond
	for {
		connected, err := c.session(ctx)
		c.setPeer(nil)
		if err == nil {
			return nil
		}
		if ferr := c.fatalError(); ferr != nil {
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
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		case <-c.leaveCh:
			return nil
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (c *Client) fatalError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatalErr
}

// setPeer makes p current (nil: none), closing the previous connection.
func (c *Client) setPeer(p *peer) {
	c.mu.Lock()
	old := c.cur
	c.cur = p
	c.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// waitError ends a hub connection with a wait the hub asked for (its
// retry_after): Run waits at least after before the next attempt and tells
// the user so in one event.
type waitError struct {
	kind  EventKind     // how Run reports it
	err   error         // what happened
	next  string        // what follows the wait: "retrying", …
	after time.Duration // no attempt before this
}

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// retryAfter turns a retry_after in seconds into a wait. A hub that sent
// none (or 0) still gets a pause rather than an immediate retry; 5 s is
// what the browser client assumes too.
func retryAfter(secs int) time.Duration {
	if secs <= 0 {
		return 5 * time.Second
	}
	return time.Duration(secs) * time.Second
}

func hubError(f proto.Frame) error {
	switch f.Code {
	case proto.CodeNoSuchRoom:
		return ErrNoSuchRoom
	case proto.CodeRoomFull:
		return ErrRoomFull
	case proto.CodeRateLimited:
		// With retry_after this is the credential budget refusing a create
		// (docs/PROTOCOL.md); without it, the per-connection message limit,
		// which closes the connection and takes the usual backoff.
		if f.RetryAfter > 0 {
			return &waitError{
				kind: EventWarning,
				err: errors.New("the hub refused to open a room: too many rooms and relay credentials " +
					"requested from your address"),
				next:  "retrying",
				after: retryAfter(f.RetryAfter),
			}
		}
	}
	return fmt.Errorf("hub: %s", f.Message)
}

// Notices for ICE without a relay (ice.limited): the hub's budget of TURN
// credentials for this address is spent.
const (
	noticeNoRelay     = "the hub gave no relay credentials (too many requests from your address); direct connections only for now"
	errNoRelayAllowed = "the hub gave no relay credentials (too many requests from your address), and only relayed connections are allowed"
)

// limitedWait reports, when the ICE this client holds has no relay because
// the hub's budget was spent, how long until a resume could bring TURN back.
func (c *Client) limitedWait() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ice == nil || !c.ice.Limited {
		return 0, false
	}
	return retryAfter(c.ice.RetryAfter), true
}

// session runs one hub connection: attach (create, join or resume), then
// signal and keep the peer connection until something breaks. It reports
// whether a peer connection was established.
func (c *Client) session(ctx context.Context) (connected bool, err error) {
	hc, err := dialHub(ctx, c.cfg.Hub)
	if err != nil {
		return false, err
	}
	defer hc.Close()

	c.mu.Lock()
	token, room, role := c.token, c.room, c.role
	c.mu.Unlock()
	var req proto.Frame
	switch {
	case token != "":
		req = proto.Frame{Type: proto.TypeResume, Token: token}
	case role == e2e.Host:
		req = proto.Frame{Type: proto.TypeCreate}
	default:
		req = proto.Frame{Type: proto.TypeJoin, Room: room}
	}
	if err := hc.Send(ctx, req); err != nil {
		return false, err
	}
	f, err := hc.Next(ctx)
	if err != nil {
		return false, err
	}
	switch f.Type {
	case proto.TypeCreated, proto.TypeJoined, proto.TypeResumed:
	case proto.TypeError:
		return false, hubError(f)
	default:
		return false, fmt.Errorf("hub answered %q to %s", f.Type, req.Type)
	}
	_, wasLimited := c.limitedWait()
	if err := c.attached(f); err != nil {
		return false, err
	}
	if role == e2e.Host && f.Type == proto.TypeCreated {
		c.emit(Event{Kind: EventRoom, Text: f.Room})
	}
	if wait, limited := c.limitedWait(); limited {
		if c.cfg.Relay {
			// Relay only and no TURN server: no peer connection can even
			// start. Come back (resume) when the hub can hand out TURN
			// again; the room and the other side's mailbox wait meanwhile.
			return false, &waitError{
				kind: EventWarning, err: errors.New(errNoRelayAllowed),
				next: "reconnecting to the hub for them", after: wait,
			}
		}
		if !wasLimited {
			// Once per spell without a relay: the resumes that follow a
			// failure while limited would otherwise repeat it.
			c.emit(Event{Kind: EventWarning, Text: noticeNoRelay})
		}
	}
	if role == e2e.Host {
		// The host always offers after (re)attaching; the offer waits in the
		// hub's mailbox if the guest is away.
		if err := c.offer(ctx, hc); err != nil {
			return false, err
		}
	}
	if f.Type != proto.TypeResumed || (f.Peer != nil && !*f.Peer) {
		c.emit(Event{Kind: EventWaiting, Text: "waiting for the other side"})
	}

	for {
		select {
		case <-ctx.Done():
			c.sayGoodbye(hc)
			return connected, nil
		case <-c.leaveCh:
			c.sayGoodbye(hc)
			return connected, nil
		case <-c.fatalCh:
			return connected, c.fatalError()
		case p := <-c.readyCh:
			if c.isCurrent(p) {
				connected = true
				c.onReady(p)
			}
		case p := <-c.failures:
			if !c.isCurrent(p) {
				continue
			}
			if ferr := c.fatalError(); ferr != nil {
				return connected, ferr
			}
			if wait, limited := c.limitedWait(); limited {
				// This connection may have needed the relay the hub withheld:
				// trying again with the same ICE servers could fail forever.
				// Resume instead, once the hub can hand out TURN again.
				return connected, &waitError{
					kind: EventDisconnected, err: fmt.Errorf("%w, with no relay to fall back on", p.failErr),
					next: "reconnecting to the hub for relay credentials", after: wait,
				}
			}
			c.emit(Event{Kind: EventDisconnected, Text: p.failErr.Error() + "; reconnecting"})
			c.setPeer(nil)
			if role == e2e.Host {
				if err := c.offer(ctx, hc); err != nil {
					return connected, err
				}
			} else {
				c.requestRestart(ctx, hc)
			}
		case <-hc.Done():
			return connected, fmt.Errorf("hub connection lost: %w", hc.Err())
		case f := <-hc.Frames():
			if err := c.onHubFrame(ctx, hc, f); err != nil {
				return connected, err
			}
		}
	}
}

func (c *Client) isCurrent(p *peer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur == p
}

// attached records what the hub said on create/join/resume and derives the
// room secret the first time.
func (c *Client) attached(f proto.Frame) error {
	c.mu.Lock()
	c.token, c.room, c.ice = f.Token, f.Room, f.ICE
	need := c.master == nil
	room := c.room
	c.mu.Unlock()
	if !need {
		return nil
	}
	master, err := e2eMaster(c.cfg.Password, room, c.cfg.iterations)
	if err != nil {
		return err
	}
	sig, err := e2e.NewSignaler(master, room)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.master, c.signal = master, sig
	c.mu.Unlock()
	return nil
}

func (c *Client) sayGoodbye(hc *hubconn.Conn) {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	if p != nil && p.confirmed.Load() {
		_ = p.send(msgBye, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hc.Send(ctx, proto.Frame{Type: proto.TypeLeave})
}

func (c *Client) onHubFrame(ctx context.Context, hc *hubconn.Conn, f proto.Frame) error {
	switch f.Type {
	case proto.TypeOffer:
		if c.role == e2e.Guest {
			return c.answer(ctx, hc, f.Data)
		}
	case proto.TypeAnswer:
		if c.role == e2e.Host {
			return c.acceptAnswer(f.Data)
		}
	case proto.TypeCandidate:
		pt, err := c.signal.Open("candidate", c.role.Other(), f.Data)
		if err != nil {
			return nil // not from our peer; ignore
		}
		var cp controlPayload
		if json.Unmarshal(pt, &cp) == nil && cp.Restart && c.role == e2e.Host {
			return c.offer(ctx, hc)
		}
	case proto.TypePeerBack:
		if c.role == e2e.Host {
			return c.offer(ctx, hc)
		}
	case proto.TypePeerLeft:
		c.emit(Event{Kind: EventWaiting, Text: "the other side disconnected; waiting for it to come back"})
	case proto.TypeRoomClosed:
		c.emit(Event{Kind: EventPeerLeft, Text: "the other side left the room"})
		return ErrPeerLeft
	case proto.TypeError:
		if f.Code == proto.CodeNoSuchRoom {
			return ErrNoSuchRoom
		}
		c.emit(Event{Kind: EventWarning, Text: "hub: " + f.Message})
	}
	return nil
}

// offer starts a fresh connection as host and posts its sealed offer.
func (c *Client) offer(ctx context.Context, hc *hubconn.Conn) error {
	c.mu.Lock()
	ice, sig := c.ice, c.signal
	c.mu.Unlock()
	p, err := c.newPeer(e2e.Host, ice)
	if err != nil {
		return err
	}
	p.nonceHost = e2e.NewNonce()
	dc, err := p.pc.CreateDataChannel("tryst", nil)
	if err != nil {
		p.close()
		return fmt.Errorf("create data channel: %w", err)
	}
	p.attach(dc)
	c.setPeer(p)
	sdp, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(sdp)
	}
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := p.gather(ctx); err != nil {
		return err
	}
	b, _ := json.Marshal(offerPayload{SDP: p.pc.LocalDescription().SDP, Nonce: p.nonceHost})
	return hc.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: sig.Seal("offer", e2e.Host, b)})
}

func (c *Client) acceptAnswer(blob string) error {
	c.mu.Lock()
	p, sig, master := c.cur, c.signal, c.master
	c.mu.Unlock()
	pt, err := sig.Open("answer", e2e.Guest, blob)
	if errors.Is(err, e2e.ErrMismatch) {
		c.fatal(ErrPasswordMismatch)
		return ErrPasswordMismatch
	}
	if err != nil {
		c.emit(Event{Kind: EventWarning, Text: "ignored a malformed answer"})
		return nil
	}
	var a answerPayload
	if err := json.Unmarshal(pt, &a); err != nil {
		return nil
	}
	if a.Mismatch {
		c.fatal(ErrPasswordMismatch)
		return ErrPasswordMismatch
	}
	if p == nil || string(a.OfferNonce) != string(p.nonceHost) {
		return nil // an answer to an older offer
	}
	fpHost, err := fingerprint(p.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	fpGuest, err := fingerprint(a.SDP)
	if err != nil {
		c.emit(Event{Kind: EventWarning, Text: "answer without a DTLS fingerprint"})
		return nil
	}
	sess, err := e2e.NewSession(master, e2e.Host, p.nonceHost, a.Nonce, fpHost, fpGuest)
	if err != nil {
		return nil
	}
	p.setSession(sess)
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP}); err != nil {
		p.fail(fmt.Errorf("apply answer: %w", err))
	}
	return nil
}

// answer opens the host's offer and answers it with a fresh connection.
func (c *Client) answer(ctx context.Context, hc *hubconn.Conn, blob string) error {
	c.mu.Lock()
	ice, sig, master := c.ice, c.signal, c.master
	c.mu.Unlock()
	pt, err := sig.Open("offer", e2e.Host, blob)
	if errors.Is(err, e2e.ErrMismatch) {
		// Tell the host too: an answer it cannot open either.
		b, _ := json.Marshal(answerPayload{Mismatch: true})
		_ = hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: sig.Seal("answer", e2e.Guest, b)})
		c.fatal(ErrPasswordMismatch)
		return ErrPasswordMismatch
	}
	var o offerPayload
	if err != nil || json.Unmarshal(pt, &o) != nil {
		c.emit(Event{Kind: EventWarning, Text: "ignored a malformed offer"})
		return nil
	}
	fpHost, err := fingerprint(o.SDP)
	if err != nil {
		return nil
	}
	p, err := c.newPeer(e2e.Guest, ice)
	if err != nil {
		return err
	}
	p.nonceHost = o.Nonce
	nonceGuest := e2e.NewNonce()
	p.pc.OnDataChannel(p.attach)
	c.setPeer(p)
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.SDP}); err != nil {
		p.fail(fmt.Errorf("apply offer: %w", err))
		return nil
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(ans)
	}
	if err != nil {
		p.fail(fmt.Errorf("create answer: %w", err))
		return nil
	}
	if err := p.gather(ctx); err != nil {
		return err
	}
	local := p.pc.LocalDescription().SDP
	fpGuest, err := fingerprint(local)
	if err != nil {
		return err
	}
	sess, err := e2e.NewSession(master, e2e.Guest, o.Nonce, nonceGuest, fpHost, fpGuest)
	if err != nil {
		return nil
	}
	p.setSession(sess)
	b, _ := json.Marshal(answerPayload{SDP: local, Nonce: nonceGuest, OfferNonce: o.Nonce})
	return hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: sig.Seal("answer", e2e.Guest, b)})
}

// requestRestart asks the host, through the hub, for a fresh offer.
func (c *Client) requestRestart(ctx context.Context, hc *hubconn.Conn) {
	b, _ := json.Marshal(controlPayload{Restart: true})
	_ = hc.Send(ctx, proto.Frame{Type: proto.TypeCandidate, Data: c.signal.Seal("candidate", c.role, b)})
}

// onReady runs when a connection has passed key confirmation: report it,
// resend unacknowledged chat, resume transfers, start the keepalive.
func (c *Client) onReady(p *peer) {
	c.emit(Event{Kind: EventConnected, Path: p.path()})
	c.mu.Lock()
	pending := append([]chatPayload(nil), c.unacked...)
	c.mu.Unlock()
	for _, m := range pending {
		b, _ := json.Marshal(m)
		if p.send(msgChat, b) != nil {
			break
		}
	}
	p.wg.Add(2)
	go p.keepalive()
	go c.sendFiles(p)
}

func (c *Client) handleMessage(p *peer, typ byte, payload []byte) {
	switch typ {
	case msgChat:
		var m chatPayload
		if decodeJSON(payload, &m) != nil {
			return
		}
		c.mu.Lock()
		fresh := m.ID > c.lastChatIn
		if fresh {
			c.lastChatIn = m.ID
		}
		c.mu.Unlock()
		if fresh {
			c.emit(Event{Kind: EventChat, Text: m.Text, Time: time.UnixMilli(m.TS)})
		}
		b, _ := json.Marshal(ackPayload{ID: m.ID})
		_ = p.send(msgChatAck, b)
	case msgChatAck:
		var a ackPayload
		if decodeJSON(payload, &a) != nil {
			return
		}
		c.mu.Lock()
		i := 0
		for i < len(c.unacked) && c.unacked[i].ID <= a.ID {
			i++
		}
		c.unacked = c.unacked[i:]
		c.mu.Unlock()
		c.signalProgress()
	case msgPing:
		_ = p.send(msgPong, payload)
	case msgPong:
		var pp pingPayload
		if decodeJSON(payload, &pp) == nil {
			c.mu.Lock()
			c.rtt = time.Since(time.Unix(0, pp.T))
			c.mu.Unlock()
		}
	case msgBye:
		c.emit(Event{Kind: EventPeerLeft, Text: "the other side left"})
		c.fatal(ErrPeerLeft)
	case msgFileOffer, msgFileAccept, msgFileChunk, msgFileAck, msgFileDone, msgFileResult:
		c.handleFileMessage(p, typ, payload)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func e2eMaster(password, room string, iterations int) ([]byte, error) {
	return e2e.MasterWithIterations(password, room, iterations)
}

func (c *Client) signalProgress() {
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// WaitIdle blocks until every chat message sent so far is acknowledged and
// every queued file has a verdict, or until ctx ends or the session fails.
func (c *Client) WaitIdle(ctx context.Context) error {
	for {
		c.mu.Lock()
		idle := len(c.unacked) == 0
		c.mu.Unlock()
		if idle && c.PendingFiles() == 0 {
			return nil
		}
		select {
		case <-c.progress:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.fatalCh:
			return c.fatalError()
		}
	}
}
