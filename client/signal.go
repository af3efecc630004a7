package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// The hub loop runs on Run's goroutine: one hub connection at a time
// (attach with create, join or resume, then signal), creating a WebRTC
// connection per offer and handing it, with its keys, to the session
// goroutine. It owns the hub session's state (Client's fields below
// "the hub loop's own") and the connections' lifecycle.

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
	return &sentenceError{msg: "the hub refused: " + f.Message, err: fmt.Errorf("hub error %s", f.Code)}
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
	if c.ice == nil || !c.ice.Limited {
		return 0, false
	}
	return retryAfter(c.ice.RetryAfter), true
}

// hubSession runs one hub connection: attach (create, join or resume),
// then signal until something breaks. The peer connection outlives it: a
// hub connection that ends leaves the current connection to the other side
// as it is. It reports whether a peer connection was established, and
// returns nil when this member left (Leave, or ctx ended).
func (c *Client) hubSession(ctx context.Context) (connected bool, err error) {
	hc, err := dialHub(ctx, c.cfg.Hub)
	if err != nil {
		return false, err
	}
	defer hc.Close()
	defer func() {
		// A send that failed because the connection did: say that, not
		// what the WebSocket library says.
		if err != nil && hc.Err() != nil && !errors.As(err, new(*lostError)) && !endsSession(err) &&
			c.fatal.get() == nil {
			c.log.Debug("hub connection failed", "err", err)
			err = &lostError{hc.Err()}
		}
	}()

	var req proto.Frame
	switch {
	case c.token != "":
		req = proto.Frame{Type: proto.TypeResume, Token: c.token}
	case c.role == e2e.Host:
		req = proto.Frame{Type: proto.TypeCreate}
	default:
		req = proto.Frame{Type: proto.TypeJoin, Room: c.room}
	}
	req.Version = proto.ProtocolVersion
	if err := hc.Send(ctx, req); err != nil {
		return false, &lostError{err}
	}
	f, err := hc.Next(ctx)
	if err != nil {
		if replaced(err) {
			return false, ErrReplaced
		}
		return false, &lostError{err}
	}
	switch f.Type {
	case proto.TypeCreated, proto.TypeJoined, proto.TypeResumed:
	case proto.TypeError:
		return false, hubError(f)
	default:
		return false, fmt.Errorf("hub answered %q to %s", f.Type, req.Type)
	}
	_, wasLimited := c.limitedWait()
	first := !c.attachedOnce
	if err := c.attached(f); err != nil {
		return false, err
	}
	if c.role == e2e.Host && (f.Type == proto.TypeCreated || first && c.fromState) {
		c.emit(Event{Kind: EventRoom, Text: f.Room})
	}
	if first && c.fromState {
		c.emit(Event{Kind: EventWaiting, Text: "back in room " + f.Room + ", where the earlier run left off"})
	}
	c.status.setHub(true, "")
	if c.hubLost {
		c.hubLost = false
		c.emit(Event{Kind: EventHub, Text: "reconnected to the hub"})
	}
	c.roomGone = false
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
	live := c.peerLive()
	switch {
	case live:
		// Back on the hub while the connection to the other side lived on:
		// nothing to signal.
	case c.role == e2e.Host:
		// The host offers after (re)attaching without a connection; the
		// offer waits in the hub's mailbox if the guest is away.
		if err := c.offer(ctx, hc); err != nil {
			return false, err
		}
	case f.Type == proto.TypeResumed && c.cur == nil && f.Peer != nil && *f.Peer:
		// The guest came back without a connection (a restarted process,
		// or it failed while the hub was away) to a host that may think
		// its own still lives: ask for a fresh offer.
		c.requestRestart(ctx, hc)
	}
	if !live && (f.Type != proto.TypeResumed || (f.Peer != nil && !*f.Peer)) {
		c.emit(Event{Kind: EventWaiting, Text: "waiting for the other side"})
	}

	for {
		var lost <-chan struct{}
		if c.cur != nil {
			lost = c.cur.done()
		}
		select {
		case <-ctx.Done():
			c.sayGoodbye(hc)
			return connected, nil
		case <-c.leaveCh:
			c.sayGoodbye(hc)
			return connected, nil
		case <-c.fatal.done():
			c.countSessionMismatch(ctx, hc, c.fatal.get())
			return connected, c.fatal.get()
		case t := <-c.sess.ready:
			if c.cur != nil && t == transport(c.cur) {
				connected, c.curReady = true, true
			}
		case <-lost:
			if ferr := c.fatal.get(); ferr != nil {
				return connected, ferr
			}
			failErr := c.cur.err()
			if wait, limited := c.limitedWait(); limited {
				// This connection may have needed the relay the hub withheld:
				// trying again with the same ICE servers could fail forever.
				// Resume instead, once the hub can hand out TURN again.
				return connected, &waitError{
					kind: EventDisconnected, err: fmt.Errorf("%w, with no relay to fall back on", failErr),
					next: "reconnecting to the hub for relay credentials", after: wait,
				}
			}
			c.emit(Event{Kind: EventDisconnected, Text: failErr.Error() + "; reconnecting"})
			c.setPeer(nil)
			if c.role == e2e.Host {
				if err := c.offer(ctx, hc); err != nil {
					return connected, err
				}
			} else {
				c.requestRestart(ctx, hc)
			}
		case <-hc.Done():
			if replaced(hc.Err()) {
				return connected, ErrReplaced
			}
			return connected, &lostError{hc.Err()}
		case f := <-hc.Frames():
			if err := c.onHubFrame(ctx, hc, f); err != nil {
				return connected, err
			}
		}
	}
}

// endsSession reports whether err ends the session whatever the hub does
// next.
func endsSession(err error) bool {
	for _, e := range []error{ErrNoSuchRoom, ErrRoomFull, ErrPeerLeft, ErrPasswordMismatch, ErrGuessLimit, ErrReplaced} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// attached records what the hub said on create/join/resume. The keys
// come from the PAKE that the offers start (docs/PROTOCOL.md, "PAKE").
func (c *Client) attached(f proto.Frame) error {
	c.token, c.room, c.ice = f.Token, f.Room, f.ICE
	c.attachedOnce = true
	c.status.setRoom(f.Room)
	c.saveRoom()
	return nil
}

// sayGoodbye tells the other side, then the hub, that this member leaves.
// hc is the hub connection, nil when there is none: then a fresh one is
// tried, to close the room, if the hub can be reached at once. The other
// side is told over the direct connection in any case, which is all it
// needs while the hub is away.
func (c *Client) sayGoodbye(hc *hubconn.Conn) { c.leaveRoom(hc, "") }

// leaveRoom is sayGoodbye with the reason the leave frame gives the hub
// (proto.ClosedGuessLimit, or none).
func (c *Client) leaveRoom(hc *hubconn.Conn, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sentBye := false
	if reason == "" {
		// At the guess limit the room-closed frame says why; a bye first
		// would make the other side end on "the other side left".
		_ = c.sess.call(ctx, func() {
			if l := c.sess.link(); l != nil {
				sentBye = l.send(proto.MsgBye, nil) == nil
			}
		})
	}
	if c.token != "" {
		if hc == nil {
			hc = c.resumeToLeave(ctx)
			if hc != nil {
				defer hc.Close()
			}
		}
		if hc != nil && hc.Send(ctx, proto.Frame{Type: proto.TypeLeave, Reason: reason}) == nil {
			// The hub closes the connection once it has deleted the room.
			// Closing it first could lose the leave: a close with unread
			// data resets the connection, and the hub may then never read
			// it, keeping the room for its TTL.
			select {
			case <-hc.Done():
			case <-ctx.Done():
			}
		}
	}
	if sentBye && c.cur != nil {
		// The other side closes the connection once it has the bye:
		// closing it here first could lose the bye on the way.
		select {
		case <-c.cur.done():
		case <-ctx.Done():
		}
	}
}

// resumeToLeave attaches a fresh hub connection to the room, only to leave
// it; nil if the hub cannot be reached or refuses.
func (c *Client) resumeToLeave(ctx context.Context) *hubconn.Conn {
	hc, err := dialHub(ctx, c.cfg.Hub)
	if err != nil {
		return nil
	}
	if err := hc.Send(ctx, proto.Frame{Type: proto.TypeResume, Token: c.token, Version: proto.ProtocolVersion}); err != nil {
		hc.Close()
		return nil
	}
	if f, err := hc.Next(ctx); err != nil || f.Type != proto.TypeResumed {
		hc.Close()
		return nil
	}
	return hc
}

func (c *Client) onHubFrame(ctx context.Context, hc *hubconn.Conn, f proto.Frame) error {
	if f.Token != "" && f.Token != c.token && (f.Type == proto.TypePeerJoined || f.Type == proto.TypePeerBack) {
		// The hub re-issues the resume token as the room changes: the
		// latest one is what recreates the room after a hub restart
		// (docs/PROTOCOL.md, resume tokens and hub restarts).
		c.token = f.Token
		c.saveRoom()
	}
	switch f.Type {
	case proto.TypeOffer:
		if c.role == e2e.Guest && e2e.IsPAKE(f.Data) {
			return c.onPAKEAsGuest(ctx, hc, f.Data)
		}
		if c.role == e2e.Guest {
			return c.answer(ctx, hc, f.Data)
		}
	case proto.TypeAnswer:
		if c.role == e2e.Host && e2e.IsPAKE(f.Data) {
			return c.onPAKEAsHost(ctx, hc, f.Data)
		}
		if c.role == e2e.Host {
			return c.acceptAnswer(ctx, hc, f.Data)
		}
	case proto.TypeCandidate:
		if c.signal == nil {
			return nil // no epoch to open it with: nothing of ours
		}
		pt, err := c.signal.Open("candidate", c.role.Other(), f.Data)
		if err != nil {
			return nil // not from our peer; ignore
		}
		var cp controlPayload
		if json.Unmarshal(pt, &cp) == nil && cp.Restart && c.role == e2e.Host {
			// A relay-only guest: its candidates are all relayed, so the
			// next connection need not wait for a direct pair.
			c.relayNext = cp.Relay
			return c.offer(ctx, hc)
		}
	case proto.TypePeerBack:
		// With a live connection, the other side only lost its hub
		// connection for a while; if it lost ours too (a restarted
		// process), its restart request follows.
		if c.role == e2e.Host && !c.peerLive() {
			return c.offer(ctx, hc)
		}
	case proto.TypePeerLeft:
		if c.peerLive() {
			// Its hub connection dropped; ours to it is what counts.
			c.log.Debug("the other side left the hub; still connected to it directly")
			break
		}
		c.emit(Event{Kind: EventWaiting, Text: "the other side disconnected; waiting for it to come back"})
	case proto.TypeRoomClosed:
		if f.Code == proto.ClosedGuessLimit {
			c.emit(Event{Kind: EventPeerLeft, Text: "the other side closed the room after too many failed password attempts"})
			return ErrGuessLimit
		}
		c.emit(Event{Kind: EventPeerLeft, Text: "the other side left; the room is closed"})
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
//
// A host that may go direct makes connections that wait 2 s before they
// accept a relayed pair (rtc.Waits), so that a direct one that works wins;
// as the controlling side, its waits are the ones that count. Against a
// relay-only guest that wait buys nothing, and the host cannot know the
// guest's policy before the answer: its offer says relay_wait, and a
// relay-only guest asks for a relay restart instead of answering
// (docs/PROTOCOL.md, restart request). The connection offered in reply
// (relayNext) has relay-only waits, and that offer no relay_wait.
func (c *Client) offer(ctx context.Context, hc *hubconn.Conn) error {
	if c.signal == nil && c.exch != nil {
		// An exchange waits for the guest's reply, which may be on its way
		// or in the mailbox: post the same share again rather than a new
		// one, which would cost the guest a failed confirmation.
		return hc.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: c.exchMsg})
	}
	if c.signal == nil {
		// No epoch yet (or no longer): the offer waits for a PAKE.
		return c.startExchange(ctx, hc)
	}
	p, relayWait := c.prepared, c.preparedRelayWait
	c.prepared = nil
	if p == nil || p != c.cur || time.Since(c.preparedAt) > preparedMaxAge {
		var err error
		if p, relayWait, err = c.prepareOffer(ctx); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(offerPayload{
		SDP: p.pc.LocalDescription().SDP, Nonce: p.nonceHost, RelayWait: relayWait, Version: proto.ProtocolVersion,
	})
	return hc.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: c.signal.Seal("offer", e2e.Host, b)})
}

// preparedMaxAge bounds how long a connection gathered ahead of the
// guest's reply is offered: its TURN allocation and credentials age (the
// hub's credentials live 10 min), and a guest that comes later gets a
// connection gathered for it.
const preparedMaxAge = time.Minute

// prepareOffer makes the host's next connection, current from now on:
// data channels, local offer, ICE gathered. It reports whether the
// connection waits for a direct pair before it takes a relayed one.
func (c *Client) prepareOffer(ctx context.Context) (*peer, bool, error) {
	api, relayWait := c.api, !c.cfg.Relay
	if c.relayNext && !c.cfg.Relay {
		if c.relayAPI == nil {
			c.relayAPI = rtc.NewAPI(apiOptions(c.cfg, true))
		}
		api, relayWait = c.relayAPI, false
	}
	c.relayNext = false
	p, err := newPeer(api, rtcConfig(c.ice, c.cfg.Relay))
	if err != nil {
		return nil, false, err
	}
	p.nonceHost = e2e.NewNonce()
	if err := p.createChannels(); err != nil {
		p.close()
		return nil, false, err
	}
	c.setPeer(p)
	sdp, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(sdp)
	}
	if err != nil {
		return nil, false, fmt.Errorf("create offer: %w", err)
	}
	if err := p.gather(ctx); err != nil {
		return nil, false, err
	}
	return p, relayWait, nil
}

// acceptAnswer opens the guest's answer to the current offer, hands the
// connection and its keys to the session goroutine, and lets it connect.
func (c *Client) acceptAnswer(ctx context.Context, hc *hubconn.Conn, blob string) error {
	p := c.cur
	if c.signal == nil {
		return nil // an answer to an epoch this host has left
	}
	pt, err := c.signal.Open("answer", e2e.Guest, blob)
	switch {
	case errors.Is(err, e2e.ErrOldPeer):
		c.emit(Event{Kind: EventWarning, Text: noticeOldPeer})
		return nil
	case errors.Is(err, e2e.ErrOtherEpoch):
		return nil // an answer to an epoch this host has left
	case errors.Is(err, e2e.ErrMismatch):
		return c.failedConfirmation(ctx, hc, "the other side could not use this side's keys")
	case err != nil:
		c.emit(Event{Kind: EventWarning, Text: "ignored a malformed answer"})
		return nil
	}
	var a answerPayload
	if err := json.Unmarshal(pt, &a); err != nil {
		return nil
	}
	if a.Mismatch {
		// The guest could not open the offer: tampered with on the way.
		return c.failedConfirmation(ctx, hc, "the other side could not open this side's offer")
	}
	if p == nil || string(a.OfferNonce) != string(p.nonceHost) {
		return nil // an answer to an older offer
	}
	if a.Version < minPeerVersion {
		// A version-1 guest would take the bulk channel's frames for
		// forgeries. Not a mismatch: the room stays, and the offer made
		// on its peer-back (once it is updated) connects.
		c.emit(Event{Kind: EventWarning, Text: noticeOldPeer})
		return nil
	}
	fpHost, err := e2e.Fingerprint(p.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	fpGuest, err := e2e.Fingerprint(a.SDP)
	if err != nil {
		// The keys are bound to both DTLS fingerprints: an answer without
		// one cannot be bound, so this connection attempt ends and the
		// host offers again.
		c.emit(Event{Kind: EventWarning, Text: "refused an answer without a DTLS fingerprint"})
		p.fail(errors.New("the answer carries no DTLS fingerprint"))
		return nil
	}
	keys, err := c.signal.NewSession(e2e.Host, p.nonceHost, a.Nonce, fpHost, fpGuest)
	if err != nil {
		return nil
	}
	if err := c.sess.attach(ctx, newConn(p, keys, e2e.Host)); err != nil {
		return err
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP}); err != nil {
		p.fail(fmt.Errorf("apply answer: %w", err))
	}
	return nil
}

// answer opens the host's sealed offer, under the pending exchange's
// epoch or the current one, and answers it with a fresh connection.
func (c *Client) answer(ctx context.Context, hc *hubconn.Conn, blob string) error {
	sid, err := e2e.BlobSID(blob)
	switch {
	case errors.Is(err, e2e.ErrOldPeer):
		c.emit(Event{Kind: EventWarning, Text: noticeOldPeer})
		return nil
	case err != nil:
		c.emit(Event{Kind: EventWarning, Text: "ignored a malformed offer"})
		return nil
	}
	sig := c.signal
	if c.pending != nil && bytes.Equal(sid, c.pending.SID()) {
		sig = c.pending
	}
	if sig == nil || !bytes.Equal(sid, sig.SID()) {
		// Sealed under an epoch this guest does not hold (it restarted):
		// ask for a fresh exchange.
		return hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: e2e.NeedMessage(sid)})
	}
	pt, err := sig.Open("offer", e2e.Host, blob)
	if errors.Is(err, e2e.ErrMismatch) {
		// Tell the host too: an answer it cannot open either (or, if the
		// offer was tampered with on the way, one that says so).
		b, _ := json.Marshal(answerPayload{Mismatch: true})
		_ = hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: sig.Seal("answer", e2e.Guest, b)})
		return c.failedConfirmation(ctx, hc, "the other side's offer does not open with this side's keys")
	}
	if sig == c.pending {
		// The host's offer opened: the exchange is confirmed both ways.
		c.signal = c.pending
		c.clearPending()
	}
	var o offerPayload
	if json.Unmarshal(pt, &o) != nil {
		c.emit(Event{Kind: EventWarning, Text: "ignored a malformed offer"})
		return nil
	}
	if o.Version < minPeerVersion {
		// Not answered: a version-1 host has one data channel. The room
		// stays; an updated host offers again when it comes back.
		c.emit(Event{Kind: EventWarning, Text: noticeOldPeer})
		return nil
	}
	fpHost, err := e2e.Fingerprint(o.SDP)
	if err != nil {
		c.emit(Event{Kind: EventWarning, Text: "refused an offer without a DTLS fingerprint"})
		return nil
	}
	if o.RelayWait && c.cfg.Relay && !c.relayAsked && !c.cfg.noRelayRestart {
		// The host's connection would wait 2 s for a direct pair that
		// cannot exist: ask for one that takes the relay at once. Once:
		// the next offer is answered whatever it says.
		c.log.Debug("relay-only: asking the host for an offer without the relay wait")
		c.requestRestart(ctx, hc)
		return nil
	}
	c.relayAsked = false
	p, err := newPeer(c.api, rtcConfig(c.ice, c.cfg.Relay))
	if err != nil {
		return err
	}
	p.nonceHost = o.Nonce
	nonceGuest := e2e.NewNonce()
	p.pc.OnDataChannel(p.accept)
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
	fpGuest, err := e2e.Fingerprint(local)
	if err != nil {
		return err
	}
	keys, err := c.signal.NewSession(e2e.Guest, o.Nonce, nonceGuest, fpHost, fpGuest)
	if err != nil {
		return nil
	}
	// The data channel cannot open before the host has this answer, so
	// the session has the keys before the first frame.
	if err := c.sess.attach(ctx, newConn(p, keys, e2e.Guest)); err != nil {
		return err
	}
	b, _ := json.Marshal(answerPayload{SDP: local, Nonce: nonceGuest, OfferNonce: o.Nonce, Version: proto.ProtocolVersion})
	return hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: c.signal.Seal("answer", e2e.Guest, b)})
}

// requestRestart asks the host, through the hub, for a fresh offer. A
// relay-only guest says so, so that the host's next connection does not
// wait for a direct pair, and answers the offer that follows as it comes
// (relayAsked).
func (c *Client) requestRestart(ctx context.Context, hc *hubconn.Conn) {
	if c.signal == nil {
		if c.pending == nil {
			// Nothing to seal a request with: ask for a fresh exchange,
			// which leads to an offer (docs/PROTOCOL.md, restart request).
			_ = hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: e2e.NeedMessage(nil)})
		}
		// With an exchange pending, its offer is on the way (or the host
		// posts its share again): a need would make it start another.
		return
	}
	relay := c.cfg.Relay && !c.cfg.noRelayRestart
	b, _ := json.Marshal(controlPayload{Restart: true, Relay: relay})
	c.relayAsked = relay
	_ = hc.Send(ctx, proto.Frame{Type: proto.TypeCandidate, Data: c.signal.Seal("candidate", c.role, b)})
}

// saveRoom records the room, role and latest resume token for a rerun.
func (c *Client) saveRoom() {
	role := "guest"
	if c.role == e2e.Host {
		role = "host"
	}
	c.state.setRoom(c.room, role, c.token)
}
