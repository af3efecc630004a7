package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
)

// The guess limit (docs/PROTOCOL.md, "PAKE"): whoever plays the other side
// gets one password guess per exchange, each failed one is counted and
// reported to the hub, and e2e.GuessLimit of them close the room.

// waitWarning waits for a warning containing want and fails if the member
// connected or its session ended first.
func waitWarning(t *testing.T, m *clienttest.Member, want string) client.Event {
	t.Helper()
	for {
		skipped, ev := m.WaitUntil(client.EventWarning)
		for _, e := range skipped {
			if e.Kind == client.EventConnected {
				t.Fatalf("connected before the warning %q", want)
			}
		}
		if strings.Contains(ev.Text, want) {
			return ev
		}
	}
}

// TestGuessLimitHost: a guest with the room code and no password (the test,
// over the hub protocol) guesses through fresh exchanges. The Go host
// checks each reply before it sends anything keyed, counts each wrong one,
// and closes the room at the fifth; the guesser is told why.
func TestGuessLimitHost(t *testing.T) {
	st := startStack(t, nil)
	h := startMember(t, client.Config{Hub: st.hubURL, Password: "correct horse"})
	code := h.WaitFor(client.EventRoom).Text

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g := &rawMember{t: t, ctx: ctx, hc: dialRaw(t, ctx, st.hubURL)}
	g.send(proto.Frame{Type: proto.TypeJoin, Room: code, Version: proto.ProtocolVersion})
	g.await(proto.TypeJoined)
	for i := 1; i <= e2e.GuessLimit; i++ {
		g.guestPAKE(fmt.Sprintf("guess %d", i), code)
		// Nothing keyed comes back: the host says the confirmation failed.
		m, err := e2e.DecodePAKE(g.await(proto.TypeOffer).Data)
		if err != nil || m.Kind != e2e.PAKEFailed {
			t.Fatalf("guess %d: the host answered %+v (%v), want failed", i, m, err)
		}
		if ev := waitWarning(t, h, "password mismatch"); !strings.Contains(ev.Text, fmt.Sprintf("(%d of %d attempts)", i, e2e.GuessLimit)) {
			t.Errorf("guess %d: host says %q", i, ev.Text)
		}
		if i < e2e.GuessLimit {
			// Ask for another exchange, as a guest whose user typed again.
			g.send(proto.Frame{Type: proto.TypeAnswer, Data: e2e.NeedMessage(nil)})
		}
	}
	closed := g.await(proto.TypeRoomClosed)
	if closed.Code != proto.ClosedGuessLimit {
		t.Errorf("room-closed %+v, want code %s", closed, proto.ClosedGuessLimit)
	}
	if err := h.WaitResult(); !errors.Is(err, client.ErrGuessLimit) {
		t.Errorf("host: %v, want ErrGuessLimit", err)
	}
}

// TestGuessLimitGuest: whoever plays the host (the hub itself can) learns
// from each reply whether its one guess was right, and may simply never
// send an offer the guest can open. The Go guest counts every exchange it
// replied to that was not confirmed when the next share came, and closes
// the room at the fifth.
func TestGuessLimitGuest(t *testing.T) {
	st, h, code := rawHostOnStack(t, time.Minute)

	g := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: "correct horse"})
	for i := 1; i <= e2e.GuessLimit+1; i++ {
		exch, share, err := e2e.StartHost(fmt.Sprintf("guess %d", i), code)
		if err != nil {
			t.Fatal(err)
		}
		h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
		if i == e2e.GuessLimit+1 {
			break
		}
		reply, err := e2e.DecodePAKE(h.await(proto.TypeAnswer).Data)
		if err != nil || reply.Kind != e2e.PAKEReply {
			t.Fatalf("exchange %d: the guest answered %+v (%v)", i, reply, err)
		}
		// The attacker learns its guess was wrong, and says nothing.
		if _, err := exch.Finish(reply); !errors.Is(err, e2e.ErrMismatch) {
			t.Fatalf("exchange %d: %v", i, err)
		}
		if i > 1 {
			waitWarning(t, g, fmt.Sprintf("(%d of %d attempts)", i-1, e2e.GuessLimit))
		}
	}
	if err := g.WaitResult(); !errors.Is(err, client.ErrGuessLimit) {
		t.Errorf("guest: %v, want ErrGuessLimit", err)
	}
	closed := h.await(proto.TypeRoomClosed)
	if closed.Code != proto.ClosedGuessLimit {
		t.Errorf("room-closed %+v, want code %s", closed, proto.ClosedGuessLimit)
	}
}

// TestGuestFailedEnds: a host that finds the guest's confirmation wrong
// says so; the Go guest reports it and ends with ErrPasswordMismatch.
func TestGuestFailedEnds(t *testing.T) {
	st, h, code := rawHostOnStack(t, time.Minute)
	exch, share, err := e2e.StartHost("the host's", code)
	if err != nil {
		t.Fatal(err)
	}
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share})

	g := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: "the guest's"})
	if _, err := e2e.DecodePAKE(h.await(proto.TypeAnswer).Data); err != nil {
		t.Fatal(err)
	}
	h.send(proto.Frame{Type: proto.TypeOffer, Data: e2e.FailedMessage(exch.SID)})
	if err := g.WaitResult(); !errors.Is(err, client.ErrPasswordMismatch) {
		t.Errorf("guest: %v", err)
	}
}

// TestReconnectKeepsEpoch: a connection that fails is rebuilt under the
// same epoch, with no exchange and so nothing for a guesser. (A guest that
// lost its epoch, a restarted process, asks for a fresh exchange: the
// kill -9 and rerun tests of integration/client_resilience_test.go.)
func TestReconnectKeepsEpoch(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, client.Config{}, client.Config{})
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)
	h.Client.DropPeer()
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)
	h.Client.Send("still here")
	if ev := g.WaitFor(client.EventChat); ev.Text != "still here" {
		t.Errorf("guest got %q", ev.Text)
	}
	for _, m := range []*clienttest.Member{h, g} {
		for _, ev := range m.Drain() {
			if ev.Kind == client.EventWarning {
				t.Errorf("warning %q", ev.Text)
			}
		}
	}
}

// TestSameShareAgain: a host that comes back to the hub while its exchange
// waits posts the same share again; the guest sends the same reply again
// and counts nothing, and the exchange goes on.
func TestSameShareAgain(t *testing.T) {
	st, h, code := rawHostOnStack(t, time.Minute)
	exch, share, err := e2e.StartHost("pw", code)
	if err != nil {
		t.Fatal(err)
	}
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
	g := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: "pw"})
	first := h.await(proto.TypeAnswer).Data
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
	if again := h.await(proto.TypeAnswer).Data; again != first {
		t.Errorf("the reply to the same share changed:\n%s\n%s", first, again)
	}
	reply, err := e2e.DecodePAKE(first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exch.Finish(reply); err != nil {
		t.Errorf("the reply: %v", err)
	}
	for _, ev := range g.Drain() {
		if ev.Kind == client.EventWarning {
			t.Errorf("warning %q", ev.Text)
		}
	}
}

// TestHostilePAKEMessages: what a hostile hub or member may send in place
// of PAKE messages — malformed ones, kinds meant for the other direction,
// failed and need for exchanges that do not exist — is ignored by both Go
// clients: nothing is counted, and the exchange that follows works.
func TestHostilePAKEMessages(t *testing.T) {
	sid := bytes.Repeat([]byte{9}, e2e.SIDSize)
	garbage := []string{
		"c3.", "c3.!!", "c3.AQ", e2e.FailedMessage(sid), e2e.NeedMessage(sid), e2e.NeedMessage(sid)[:10],
		e2e.PAKEMessage{Kind: 7, SID: sid}.Encode(),
		e2e.PAKEMessage{Kind: e2e.PAKEReply, SID: sid, Share: make([]byte, 32), Confirm: make([]byte, 32)}.Encode(),
		"s3." + strings.Repeat("A", 80), "x", "",
	}
	t.Run("to the guest", func(t *testing.T) {
		st, h, code := rawHostOnStack(t, time.Minute)
		g := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: "pw"})
		h.await(proto.TypePeerJoined)
		for _, d := range garbage {
			if d != "" {
				h.send(proto.Frame{Type: proto.TypeOffer, Data: d})
			}
		}
		// The guest still replies to a real share, and its reply checks out.
		// (The sealed blob of no epoch it knows drew a need, which is right.)
		exch, share, err := e2e.StartHost("pw", code)
		if err != nil {
			t.Fatal(err)
		}
		h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
		for {
			m, err := e2e.DecodePAKE(h.await(proto.TypeAnswer).Data)
			if err != nil {
				t.Fatalf("the guest answered with something else than a PAKE message: %v", err)
			}
			if m.Kind == e2e.PAKENeed {
				continue
			}
			if _, err := exch.Finish(m); err != nil {
				t.Fatalf("the guest's reply: %v", err)
			}
			break
		}
		for _, ev := range g.Drain() {
			if strings.Contains(ev.Text, "password mismatch") {
				t.Errorf("counted: %q", ev.Text)
			}
		}
	})
	t.Run("to the host", func(t *testing.T) {
		st := startStack(t, nil)
		h := startMember(t, client.Config{Hub: st.hubURL, Password: "pw"})
		code := h.WaitFor(client.EventRoom).Text
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		g := &rawMember{t: t, ctx: ctx, hc: dialRaw(t, ctx, st.hubURL)}
		g.send(proto.Frame{Type: proto.TypeJoin, Room: code, Version: proto.ProtocolVersion})
		g.await(proto.TypeJoined)
		share := g.await(proto.TypeOffer).Data
		for _, d := range append(garbage, share) { // its own share sent back, too
			if d != "" {
				g.send(proto.Frame{Type: proto.TypeAnswer, Data: d})
			}
		}
		m, err := e2e.DecodePAKE(share)
		if err != nil {
			t.Fatal(err)
		}
		ep, reply, err := e2e.Respond("pw", code, m)
		if err != nil {
			t.Fatal(err)
		}
		g.send(proto.Frame{Type: proto.TypeAnswer, Data: reply})
		sig, err := e2e.NewSignaler(ep, code)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sig.Open("offer", e2e.Host, g.await(proto.TypeOffer).Data); err != nil {
			t.Fatalf("the host's offer after the garbage: %v", err)
		}
		for _, ev := range h.Drain() {
			if strings.Contains(ev.Text, "password mismatch") {
				t.Errorf("counted: %q", ev.Text)
			}
		}
	})
}

// TestGuestCountsAcrossReruns: a Go guest ends at a failed confirmation and
// keeps its place (tryst receive run again takes it back); the count goes on
// across reruns from its state, so whoever plays the host still gets no
// more than e2e.GuessLimit guesses, and the fifth closes the room.
func TestGuestCountsAcrossReruns(t *testing.T) {
	st, h, code := rawHostOnStack(t, 2*time.Minute)
	state := t.TempDir()
	for i := 1; i <= e2e.GuessLimit; i++ {
		exch, share, err := e2e.StartHost(fmt.Sprintf("guess %d", i), code)
		if err != nil {
			t.Fatal(err)
		}
		g := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: "correct horse", StateDir: state})
		if i == 1 {
			h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
		} else {
			// The rerun resumes without an epoch and asks for an exchange.
			if m, err := e2e.DecodePAKE(h.await(proto.TypeAnswer).Data); err != nil || m.Kind != e2e.PAKENeed {
				t.Fatalf("rerun %d: %+v %v, want need", i, m, err)
			}
			h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
		}
		reply, err := e2e.DecodePAKE(h.await(proto.TypeAnswer).Data)
		if err != nil || reply.Kind != e2e.PAKEReply {
			t.Fatalf("run %d: %+v %v, want a reply", i, reply, err)
		}
		if _, err := exch.Finish(reply); !errors.Is(err, e2e.ErrMismatch) {
			t.Fatal(err)
		}
		h.send(proto.Frame{Type: proto.TypeOffer, Data: e2e.FailedMessage(exch.SID)})
		waitWarning(t, g, fmt.Sprintf("(%d of %d attempts)", i, e2e.GuessLimit))
		err = g.WaitResult()
		if i < e2e.GuessLimit && !errors.Is(err, client.ErrPasswordMismatch) {
			t.Fatalf("run %d: %v", i, err)
		}
		if i == e2e.GuessLimit && !errors.Is(err, client.ErrGuessLimit) {
			t.Fatalf("run %d: %v, want ErrGuessLimit", i, err)
		}
	}
	if closed := h.await(proto.TypeRoomClosed); closed.Code != proto.ClosedGuessLimit {
		t.Errorf("room-closed %+v", closed)
	}
}

// TestPendingKeptAcrossRerun: a guest process that stops after its reply
// (here: replaced by a rerun) leaves its pending exchange in its state; the
// rerun answers the same share with the same reply, so that the host's
// offer, sealed under the key of the first reply, opens.
func TestPendingKeptAcrossRerun(t *testing.T) {
	st, h, code := rawHostOnStack(t, time.Minute)
	exch, share, err := e2e.StartHost("pw", code)
	if err != nil {
		t.Fatal(err)
	}
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
	state := t.TempDir()
	g1 := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: "pw", StateDir: state})
	first := h.await(proto.TypeAnswer).Data
	g2 := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: "pw", StateDir: state})
	if err := g1.WaitResult(); !errors.Is(err, client.ErrReplaced) {
		t.Fatalf("the first guest: %v", err)
	}
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share}) // the host, back on the hub, posts it again
	again := h.await(proto.TypeAnswer).Data
	if m, err := e2e.DecodePAKE(again); err == nil && m.Kind == e2e.PAKENeed {
		t.Fatal("the rerun asked for a new exchange while one was pending")
	}
	if again != first {
		t.Fatalf("the rerun answered the same share with another reply")
	}
	reply, _ := e2e.DecodePAKE(first)
	ep, err := exch.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := e2e.NewSignaler(ep, code)
	h.sig = sig
	b, _ := json.Marshal(map[string]any{"sdp": offerSDP(t), "nonce": e2e.NewNonce(), "version": proto.ProtocolVersion})
	h.send(proto.Frame{Type: proto.TypeOffer, Data: sig.Seal("offer", e2e.Host, b)})
	// The rerun opens it (no mismatch answer, no warning about a mismatch).
	for _, ev := range g2.Drain() {
		if strings.Contains(ev.Text, "password mismatch") {
			t.Errorf("%q", ev.Text)
		}
	}
	if f := h.await(proto.TypeAnswer); e2e.IsPAKE(f.Data) {
		t.Fatalf("the rerun answered the sealed offer with %q", f.Data)
	} else if _, err := sig.Open("answer", e2e.Guest, f.Data); err != nil {
		t.Fatalf("the rerun's answer: %v", err)
	}
}
