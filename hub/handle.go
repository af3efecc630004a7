package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
)

// handle acts on one decoded client frame. It runs on the reader goroutine.
func (c *conn) handle(ctx context.Context, f proto.Frame) {
	switch f.Type {
	case proto.TypeCreate, proto.TypeJoin, proto.TypeResume:
		if c.room != "" {
			c.badRequest("this connection is already in a room")
			return
		}
		if !c.versionServed(f.Version) {
			return
		}
	case proto.TypeOffer, proto.TypeAnswer, proto.TypeCandidate, proto.TypeLeave, proto.TypeReport:
		if c.room == "" {
			c.badRequest(f.Type + " needs a room: send create, join or resume first")
			return
		}
	}
	switch f.Type {
	case proto.TypeCreate:
		c.create(ctx, f)
	case proto.TypeJoin:
		c.join(ctx, f)
	case proto.TypeResume:
		c.resume(ctx, f)
	case proto.TypeOffer, proto.TypeAnswer, proto.TypeCandidate:
		c.post(ctx, f)
	case proto.TypeReport:
		c.report(ctx, f)
	case proto.TypeLeave:
		// Any reason but the one the hub knows is a plain leave: an older
		// or newer client's reason must not stop it from leaving.
		why := LeftRoom
		if f.Reason == proto.ClosedGuessLimit {
			why = LeftGuessLimit
		}
		if err := c.h.store.Leave(ctx, c.room, c.role, why); err != nil {
			c.internal(err)
			return
		}
		c.room = ""
		c.closeWith(websocket.StatusNormalClosure, "left the room", true)
	default:
		c.h.m.Reject("unknown_type")
		c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeUnknownType, Message: "unknown message type " + quoteShort(f.Type)})
	}
}

// versionServed reports whether the hub serves a client announcing
// protocol version v in create, join or resume, and answers
// unsupported_version otherwise. The connection stays open: a client may
// try again with another version. The message is what a person reads:
// every client, those that predate the version field included, prints an
// error frame's message.
func (c *conn) versionServed(v int) bool {
	if v == 0 {
		v = 1 // clients that predate the field
	}
	if v >= proto.MinProtocolVersion && v <= proto.ProtocolVersion {
		return true
	}
	advice := "update your client: reload the page, or install a newer tryst"
	if v > proto.ProtocolVersion {
		advice = "your client is newer than this hub; ask the hub's operator to update it"
	}
	c.h.m.Reject("unsupported_version")
	c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeUnsupportedVersion, Message: fmt.Sprintf(
		"this hub speaks protocol version %d, your client version %d: %s", proto.ProtocolVersion, v, advice)})
	return false
}

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return `"` + s + `"`
}

func (c *conn) badRequest(msg string) {
	c.h.m.Reject("bad_request")
	c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeBadRequest, Message: msg})
}

// internal answers a request that failed on the room store (Redis
// unreachable, with --store) or inside the hub: the client may try again.
func (c *conn) internal(err error) {
	c.h.log.Error("room store failed", "err", err)
	c.h.m.StoreErrors.Inc()
	c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeInternal, RetryAfter: 5,
		Message: "the hub cannot reach its room store right now; try again in a few seconds"})
}

func (c *conn) create(ctx context.Context, f proto.Frame) {
	if err := c.h.authorized(f.Auth); err != nil {
		c.h.m.Reject("unauthorized")
		c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeUnauthorized, Message: err.Error()})
		return
	}
	// Rooms per address: the rate of creation here, the rooms left with
	// nobody connected in the store.
	if now := c.h.cfg.Now(); c.h.rooms != nil && !c.h.rooms.allow(c.ip, now) {
		c.refuseCreate(metrics.RejectRoomRate, proto.CodeRateLimited, c.h.rooms.wait(c.ip, now),
			"too many rooms opened from your address; try again in %d s")
		return
	}
	// The budget is drawn before the room exists: a refused create leaves
	// nothing behind, and rooms per address are limited with credentials.
	if ok, wait := c.h.grant(c.ip); !ok {
		c.h.m.Reject(metrics.RejectCredentials)
		secs := retrySeconds(wait)
		c.reply(proto.Frame{
			Type: proto.TypeError, Code: proto.CodeRateLimited, RetryAfter: secs,
			Message: fmt.Sprintf("too many rooms and relay credentials from your address; try again in %d s", secs),
		})
		return
	}
	now := c.h.cfg.Now()
	var m Member
	var err error
	// 88-bit codes practically never collide; the loop only guards the
	// contract of Store.Create.
	for range 4 {
		m = newMember(newRoomCode(), Host, now)
		c.hold(m)
		if err = c.h.store.Create(ctx, m, c.attach()); !errors.Is(err, ErrCodeTaken) {
			break
		}
	}
	if le, ok := errors.AsType[*LimitError](err); ok {
		c.open()
		if le.Reason == LimitIdleRooms {
			c.refuseCreate(le.Reason, proto.CodeRateLimited, le.RetryAfter,
				"too many rooms from your address are waiting with nobody connected; try again in %d s")
		} else {
			c.refuseCreate(le.Reason, proto.CodeHubFull, le.RetryAfter, "the hub is full; try again in %d s")
		}
		return
	}
	if err != nil {
		c.open()
		c.internal(err)
		return
	}
	c.room, c.role = m.Room, Host
	c.h.m.RoomsTotal.Inc()
	c.open(proto.Frame{
		Type: proto.TypeCreated, Version: proto.ProtocolVersion, Room: m.Room, Role: Host.String(),
		Token: c.h.keys.mint(m, false, now), ICE: c.h.iceFor(c.host), RoomTTL: int(c.h.store.TTL().Seconds()),
	})
}

// refuseCreate answers a create refused by a budget with code, a
// retry_after and msg (whose %d is the wait in seconds), counted under
// reason. The connection stays open.
func (c *conn) refuseCreate(reason, code string, wait time.Duration, msg string) {
	c.h.m.Reject(reason)
	secs := retrySeconds(wait)
	c.reply(proto.Frame{Type: proto.TypeError, Code: code, RetryAfter: secs, Message: fmt.Sprintf(msg, secs)})
}

// throttled reports (and answers) a client that has used up its failed
// attempts: guessing room codes or tokens must stay slow.
func (c *conn) throttled() bool {
	if c.h.failures.ok(c.ip, c.h.cfg.Now()) {
		return false
	}
	c.h.m.Reject("brute_force")
	c.fail(websocket.StatusPolicyViolation, proto.CodeThrottled, "too many failed attempts from your address; wait a minute")
	return true
}

func (c *conn) failed(reason, code, msg string) {
	c.h.failures.allow(c.ip, c.h.cfg.Now())
	c.h.m.Reject(reason)
	c.reply(proto.Frame{Type: proto.TypeError, Code: code, Message: msg})
}

func (c *conn) join(ctx context.Context, f proto.Frame) {
	if f.Room == "" {
		// A missing field is a malformed request, not a guess: it draws
		// nothing from the address's failed attempts.
		c.badRequest("join needs a room code")
		return
	}
	if c.throttled() {
		return
	}
	code, err := proto.NormalizeRoomCode(f.Room)
	if err != nil {
		c.failed("no_such_room", proto.CodeNoSuchRoom, "no such room")
		return
	}
	now := c.h.cfg.Now()
	if !c.h.guesses.ok(code, now) {
		// The room's members reported too many failed key confirmations:
		// whoever comes in next may be the one guessing. Only a room with
		// members can have reports, and only somebody who has its code
		// can be told so. It draws nothing from the address: the reports
		// charged the guesser's already.
		c.h.m.Reject(metrics.RejectRoomGuesses)
		c.fail(websocket.StatusPolicyViolation, proto.CodeThrottled,
			"too many failed password attempts in this room; wait a few minutes")
		return
	}
	m := newMember(code, Guest, now)
	c.hold(m)
	pending, err := c.h.store.Join(ctx, m, c.attach())
	switch {
	case errors.Is(err, ErrNoSuchRoom):
		c.open()
		c.failed("no_such_room", proto.CodeNoSuchRoom, "no such room")
		return
	case errors.Is(err, ErrRoomFull):
		c.open()
		c.failed("room_full", proto.CodeRoomFull, "room is full: it already has a host and a guest")
		return
	case err != nil:
		c.open()
		c.internal(err)
		return
	}
	c.room, c.role = code, Guest
	frames := []proto.Frame{{
		Type: proto.TypeJoined, Version: proto.ProtocolVersion, Room: code, Role: Guest.String(),
		Token: c.h.keys.mint(m, true, now), ICE: c.iceForMember(), RoomTTL: int(c.h.store.TTL().Seconds()),
	}}
	c.open(append(frames, eventFrames(pending)...)...)
}

// iceForMember is the ICE configuration for a join or resume. With the
// address's budget spent it holds STUN only (see stunOnly) rather than
// refusing: a refused resume would strand a client reconnecting through a
// flaky network, and a guest refused at the door cannot chat at all, while
// STUN alone still connects most pairs directly. Only the relay, the thing
// the budget protects, is withheld.
func (c *conn) iceForMember() *proto.ICEConfig {
	ice := c.h.iceFor(c.host)
	ok, wait := c.h.grant(c.ip)
	if ok {
		return ice
	}
	c.h.m.Reject(metrics.RejectCredentials)
	// The credential minted above is dropped unseen: ICE is the only source
	// of the STUN URLs, and minting is a local HMAC with no other effect.
	return stunOnly(ice, retrySeconds(wait))
}

func eventFrames(evs []Event) []proto.Frame {
	fs := make([]proto.Frame, len(evs))
	for i, ev := range evs {
		fs[i] = proto.Frame{Type: ev.Type, Data: ev.Data, Reason: ev.Reason, Code: ev.Code}
	}
	return fs
}

func (c *conn) resume(ctx context.Context, f proto.Frame) {
	if c.throttled() {
		return
	}
	if f.Token == "" {
		c.badRequest("resume needs a token")
		return
	}
	// The token itself is never logged, nor what it names.
	tok, err := c.h.keys.parse(f.Token)
	if err != nil {
		c.failed(metrics.RejectBadToken, proto.CodeNoSuchRoom, "no such room")
		return
	}
	now := c.h.cfg.Now()
	recreate, expired := c.h.mayRecreate(tok, now)
	c.hold(tok.Member)
	info, err := c.h.store.Resume(ctx, ResumeRequest{Member: tok.Member, Paired: tok.paired, Recreate: recreate}, c.attach())
	switch {
	case errors.Is(err, ErrNoSuchRoom):
		c.open()
		if expired {
			c.failed(metrics.RejectExpiredToken, proto.CodeNoSuchRoom, "no such room")
		} else {
			c.failed("no_such_room", proto.CodeNoSuchRoom, "no such room")
		}
		return
	case err != nil:
		c.open()
		if le, ok := errors.AsType[*LimitError](err); ok {
			c.refuseCreate(le.Reason, proto.CodeHubFull, le.RetryAfter, "the hub is full; try again in %d s")
			return
		}
		c.internal(err)
		return
	}
	if info.Recreated {
		c.h.m.RoomsRecreated.Inc()
		c.h.log.Debug("room recreated from a resume token", "role", info.Role.String())
	}
	c.room, c.role = info.Room, info.Role
	present := info.PeerPresent
	// A fresh token on every resume: it carries what the hub knows now
	// (whether a guest joined) and starts its age again
	// (Config.ResumeTokenMaxAge).
	frames := []proto.Frame{{
		Type: proto.TypeResumed, Version: proto.ProtocolVersion, Room: info.Room, Role: info.Role.String(),
		Token: c.h.keys.mint(tok.Member, info.Paired, now), Peer: &present,
		ICE: c.iceForMember(), RoomTTL: int(c.h.store.TTL().Seconds()),
	}}
	for _, ev := range info.Pending {
		if ev.PairedAfter > 0 {
			c.h.m.Pairing.Observe(ev.PairedAfter.Seconds())
		}
	}
	c.open(append(frames, eventFrames(info.Pending)...)...)
}

// mayRecreate says whether tok may recreate a room the store does not
// hold: only a token issued before this Hub started (a room of this Hub's
// that is gone expired or was left, and stays gone) and at most
// ResumeTokenMaxAge old (else expired).
func (h *Hub) mayRecreate(tok resumeToken, now time.Time) (ok, expired bool) {
	if tok.issued >= h.started {
		return false, false
	}
	if now.UnixMilli()-tok.issued > h.cfg.ResumeTokenMaxAge.Milliseconds() {
		return false, true
	}
	return true, false
}

func (c *conn) post(ctx context.Context, f proto.Frame) {
	switch {
	case f.Type == proto.TypeOffer && c.role != Host:
		c.badRequest("only the host sends offers")
		return
	case f.Type == proto.TypeAnswer && c.role != Guest:
		c.badRequest("only the guest sends answers")
		return
	case f.Data == "":
		c.badRequest(f.Type + " needs data")
		return
	}
	// The other member's queue is budgeted in bytes: charge what it will
	// receive, the frame as encoded (escapes included), not what came in.
	out, err := proto.EncodeFrame(proto.Frame{Type: f.Type, Data: f.Data})
	if err != nil {
		c.badRequest(f.Type + " data cannot be relayed: " + err.Error())
		return
	}
	if !c.rlim.AllowN(time.Now(), len(out)) {
		c.h.m.Reject("rate_limited")
		c.fail(websocket.StatusPolicyViolation, proto.CodeRateLimited, "too many bytes relayed; slow down")
		return
	}
	err = c.h.store.Post(ctx, c.room, c.role, Event{Type: f.Type, Data: f.Data, frame: out})
	if errors.Is(err, ErrNoSuchRoom) {
		c.room = ""
		c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeNoSuchRoom, Message: "the room is gone"})
		return
	}
	if le, ok := errors.AsType[*LimitError](err); ok {
		c.h.m.Reject(le.Reason)
		secs := retrySeconds(le.RetryAfter)
		c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeHubFull, RetryAfter: secs,
			Message: fmt.Sprintf("the hub is full and could not keep your %s for the other side; send it again in %d s", f.Type, secs)})
		return
	}
	if err != nil {
		c.internal(err)
	}
}

// report handles a member's report that a key confirmation with the other
// member of its room failed (docs/PROTOCOL.md, "Failed-confirmation
// reports"). The hub cannot tell whether it is true, nor which side typed
// the wrong password or is guessing; it only knows the reporter is a
// member. So what a report does stays small: it takes a token from the
// room's bucket (joins into the room are refused while it is empty), and
// the other member's hub charges that member's address one failed attempt,
// as a wrong room code would, so that a guesser reconnecting to try again
// is throttled like any brute-forcer. Nothing is answered on success.
func (c *conn) report(ctx context.Context, f proto.Frame) {
	if f.Reason != proto.ReportFailedConfirmation {
		c.badRequest("unknown report reason " + quoteShort(f.Reason))
		return
	}
	// The charge goes through the store, like a candidate, to whichever
	// node holds the other member's connection, if any (see
	// conn.Deliver). It comes first: if the store fails nothing is
	// counted, and the client may send the report again.
	err := c.h.store.Post(ctx, c.room, c.role, Event{Type: proto.TypeReport})
	if errors.Is(err, ErrNoSuchRoom) {
		c.room = ""
		c.reply(proto.Frame{Type: proto.TypeError, Code: proto.CodeNoSuchRoom, Message: "the room is gone"})
		return
	}
	if err != nil {
		c.internal(err)
		return
	}
	c.h.guesses.allow(c.room, c.h.cfg.Now())
	c.h.m.FailedConfirmations.Inc()
}
