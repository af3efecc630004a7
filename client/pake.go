package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// The PAKE through the hub (docs/PROTOCOL.md, "PAKE"): the host starts an
// exchange whenever it must offer and holds no epoch; the guest replies
// with its share and key confirmation; the host checks it before it sends
// anything sealed. An epoch then lasts across reconnects. Every failed
// confirmation is counted and reported to the hub, and GuessLimit of them
// close the room. All of it runs on the hub loop's goroutine.

// startExchange posts a fresh PAKE share as the host's offer; it waits in
// the hub's mailbox if the guest is away. A newer exchange replaces an
// older one, whose reply is then ignored.
func (c *Client) startExchange(ctx context.Context, hc *hubconn.Conn) error {
	exch, msg, err := e2e.StartHost(c.cfg.Password, c.room)
	if err != nil {
		return fmt.Errorf("start the key exchange: %w", err)
	}
	c.exch, c.exchMsg = exch, msg
	// The connection of an earlier epoch, if any, is over.
	c.setPeer(nil)
	if err := hc.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: msg}); err != nil {
		return err
	}
	// Gather the next connection while the share travels: the offer that
	// follows the guest's reply then goes out at once, as version 2's
	// offer waited ready in the mailbox, instead of after the host's ICE
	// gathering (its STUN and TURN round trips) on every join.
	p, relayWait, err := c.prepareOffer(ctx)
	if err != nil {
		return err
	}
	c.prepared, c.preparedRelayWait, c.preparedAt = p, relayWait, time.Now()
	return nil
}

// onPAKEAsHost handles a PAKE message from the guest: its reply to the
// current exchange, or a request for a fresh one.
func (c *Client) onPAKEAsHost(ctx context.Context, hc *hubconn.Conn, data string) error {
	m, err := e2e.DecodePAKE(data)
	if err != nil {
		c.emit(Event{Kind: EventWarning, Text: "ignored a malformed key exchange message"})
		return nil
	}
	switch m.Kind {
	case e2e.PAKEReply:
		if c.exch == nil || !bytes.Equal(m.SID, c.exch.SID) {
			return nil // the reply to an older exchange
		}
		exch := c.exch
		c.exch = nil
		ep, err := exch.Finish(m)
		if err != nil {
			_ = hc.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: e2e.FailedMessage(exch.SID)})
			return c.failedConfirmation(ctx, hc, "the other side's key confirmation is wrong")
		}
		sig, err := e2e.NewSignaler(ep, c.room)
		if err != nil {
			return err
		}
		c.signal = sig
		return c.offer(ctx, hc)
	case e2e.PAKENeed:
		// The guest holds no epoch this host knows of (it restarted, or
		// its user typed another password): run a fresh exchange, or post
		// the one waiting for its reply again.
		if e2e.AnyEpoch(m.SID) && c.exch != nil {
			return hc.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: c.exchMsg})
		}
		if e2e.AnyEpoch(m.SID) || (c.signal != nil && bytes.Equal(m.SID, c.signal.SID())) {
			c.signal = nil
			return c.startExchange(ctx, hc)
		}
	}
	return nil
}

// onPAKEAsGuest handles a PAKE message from the host: a share that starts
// an exchange, or the news that this guest's confirmation was wrong.
func (c *Client) onPAKEAsGuest(ctx context.Context, hc *hubconn.Conn, data string) error {
	m, err := e2e.DecodePAKE(data)
	if err != nil {
		c.emit(Event{Kind: EventWarning, Text: "ignored a malformed key exchange message"})
		return nil
	}
	switch m.Kind {
	case e2e.PAKEShare:
		if c.pending != nil && data == c.pendingShare {
			// The same exchange again (the host came back to the hub before
			// our reply reached it): the same reply, nothing counted.
			return hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: c.pendingReply})
		}
		if c.signal != nil && bytes.Equal(m.SID, c.signal.SID()) {
			// The share of the epoch we hold, replayed: the host never
			// reuses a sid, so this is nobody's new exchange.
			return nil
		}
		if c.pending != nil {
			// The exchange this guest replied to was never confirmed by an
			// offer under it, and now the host starts another. Whoever
			// plays the host learnt from our confirmation whether its one
			// guess was right: count it.
			c.clearPending()
			if err := c.countFailure(ctx, hc, "the other side started a new key exchange without confirming the last one"); err != nil {
				return err
			}
		}
		// The host has left any earlier epoch, and the connection under it
		// (a host that starts an exchange has none left).
		c.signal = nil
		c.setPeer(nil)
		ep, reply, err := e2e.Respond(c.cfg.Password, c.room, m)
		if err != nil {
			return c.failedConfirmation(ctx, hc, "the other side's key exchange share is invalid")
		}
		sig, err := e2e.NewSignaler(ep, c.room)
		if err != nil {
			return err
		}
		c.setPending(sig, data, reply, ep)
		return hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: reply})
	case e2e.PAKEFailed:
		if c.pending == nil || !bytes.Equal(m.SID, c.pending.SID()) {
			return nil
		}
		c.clearPending()
		return c.failedConfirmation(ctx, hc, "the other side found this side's key confirmation wrong")
	}
	return nil
}

// failedConfirmation counts a failed key confirmation and decides what
// follows: the host keeps the room and waits for another exchange (the
// other side may be a person typing the password again); the guest, whose
// password cannot change, ends the session and keeps its membership for a
// rerun. At GuessLimit failures either closes the room.
func (c *Client) failedConfirmation(ctx context.Context, hc *hubconn.Conn, why string) error {
	c.signal, c.exch = nil, nil
	c.clearPending()
	c.setPeer(nil)
	if err := c.countFailure(ctx, hc, why); err != nil {
		return err
	}
	if c.role == e2e.Guest {
		c.failCounted = true
		c.fatal.set(ErrPasswordMismatch)
		return ErrPasswordMismatch
	}
	return nil
}

// countFailure counts one failed confirmation, tells the user and the hub,
// and at GuessLimit closes the room, returning ErrGuessLimit.
func (c *Client) countFailure(ctx context.Context, hc *hubconn.Conn, why string) error {
	if c.tally(ctx, hc, why) {
		return ErrGuessLimit
	}
	next := "waiting for the other side to try again"
	if c.role == e2e.Guest {
		next = "check the password with the other person"
	}
	c.emit(Event{Kind: EventWarning, Text: fmt.Sprintf(
		"password mismatch: %s; the passwords differ, or someone is guessing (%d of %d attempts); %s",
		why, c.failures, e2e.GuessLimit, next)})
	return nil
}

// tally counts one failed confirmation, keeps the count in the state file
// and reports it to the hub (hc nil: the hub is away). At GuessLimit it
// closes the room, ends the session with ErrGuessLimit (unless it already
// ended) and reports true.
func (c *Client) tally(ctx context.Context, hc *hubconn.Conn, why string) bool {
	c.failures++
	c.state.setFailures(c.failures)
	c.report(ctx, hc)
	if c.failures < e2e.GuessLimit {
		return false
	}
	c.emit(Event{Kind: EventWarning, Text: fmt.Sprintf(
		"password mismatch: %s (%d of %d attempts); closing the room", why, c.failures, e2e.GuessLimit)})
	c.leaveRoom(hc, proto.ClosedGuessLimit)
	c.failCounted = true
	c.fatal.set(ErrGuessLimit)
	return true
}

// report tells the hub that a key confirmation with the other member
// failed, so that it can throttle whoever keeps guessing.
func (c *Client) report(ctx context.Context, hc *hubconn.Conn) {
	if hc == nil {
		return
	}
	_ = hc.Send(ctx, proto.Frame{Type: proto.TypeReport, Reason: proto.ReportFailedConfirmation})
}

// countSessionMismatch counts a failed key confirmation on the data
// channel (the session goroutine ended the session on it) unless the
// failure that ended the session was counted already. The session ends
// either way.
func (c *Client) countSessionMismatch(ctx context.Context, hc *hubconn.Conn, err error) {
	if !errors.Is(err, ErrPasswordMismatch) || c.failCounted {
		return
	}
	c.failCounted = true
	c.tally(ctx, hc, "the other side's key confirmation is wrong")
}

// setPending sets the guest's pending exchange and keeps it in the state
// file, so that a rerun answers the same share the same way.
func (c *Client) setPending(sig *e2e.Signaler, share, reply string, ep *e2e.Epoch) {
	c.pending, c.pendingShare, c.pendingReply = sig, share, reply
	c.state.setPending(&pendingState{SID: ep.SID, Master: ep.Master, Share: share, Reply: reply})
}

// clearPending forgets the guest's pending exchange, here and in the state
// file.
func (c *Client) clearPending() {
	c.pending, c.pendingShare, c.pendingReply = nil, "", ""
	c.state.setPending(nil)
}
