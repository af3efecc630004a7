package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// TestBrowserReloadAsksPassword: a reloaded page reconnects with the epoch
// it kept, without asking; when the other side then needs a fresh exchange
// (the host opens the room in a new tab, which keeps no epoch: it asks its
// person for the password and starts one), the reloaded page, which holds
// the epoch but no password, asks for the password, answers the exchange,
// and the two connect.
func TestBrowserReloadAsksPassword(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	const pw = "pw of the room"
	link := a.host(st.url, pw, false)
	b.join(link, pw, false)
	a.connected()
	b.connected()

	b.run(chromedp.Reload())
	b.connected()
	var asked bool
	b.eval(`!document.getElementById("password").hidden`, &asked)
	if asked {
		t.Fatal("the reloaded guest asked for the password with its epoch kept")
	}
	a.say("before the new tab")
	b.waitMessage("before the new tab")

	a2 := a.tab("host-tab")
	a2.run(chromedp.Navigate(link), chromedp.WaitVisible("#resume-btn", chromedp.ByID), chromedp.Click("#resume-btn", chromedp.ByID))
	a2.password(pw, false)
	a.waitJS(stateJS + ` === "ended" && ` + alertJS + `.includes("another tab")`)
	b.waitJS(`!document.getElementById("password").hidden && document.getElementById("password-note").textContent.includes("fresh key exchange")`)
	b.shot("asked")
	b.password(pw, false)
	a2.connected()
	b.connected()
	b.say("after the fresh exchange")
	a2.waitMessage("after the fresh exchange")
	a2.say("to the reloaded guest")
	b.waitMessage("to the reloaded guest")
}

// rawPeer is one member of a room spoken for in raw hub frames
// (proto/hubconn) with client/e2e's PAKE: a party that does exactly what
// the test says, as someone guessing the password, or an older client,
// would.
type rawPeer struct {
	t    *testing.T
	ctx  context.Context
	c    *hubconn.Conn
	room string
}

func dialRaw(t *testing.T, hubURL string, first proto.Frame) (*rawPeer, proto.Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	u, err := proto.WebSocketURL(hubURL)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := hubconn.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &rawPeer{t: t, ctx: ctx, c: c}
	first.Version = 3
	p.send(first)
	f := p.await(proto.TypeCreated, proto.TypeJoined)
	p.room = f.Room
	return p, f
}

func (p *rawPeer) send(f proto.Frame) {
	p.t.Helper()
	if err := p.c.Send(p.ctx, f); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) await(types ...string) proto.Frame {
	p.t.Helper()
	f, err := p.c.Await(p.ctx, types...)
	if err != nil {
		p.t.Fatal(err)
	}
	return f
}

// pake waits for the next PAKE message of kind in a frame of type typ.
func (p *rawPeer) pake(typ string, kind byte) e2e.PAKEMessage {
	p.t.Helper()
	_, m := p.pakeData(typ, kind)
	return m
}

// pakeData is pake with the message as it travelled.
func (p *rawPeer) pakeData(typ string, kind byte) (string, e2e.PAKEMessage) {
	p.t.Helper()
	for {
		f := p.await(typ)
		if !e2e.IsPAKE(f.Data) {
			continue
		}
		m, err := e2e.DecodePAKE(f.Data)
		if err != nil {
			p.t.Fatalf("the browser sent a malformed PAKE message %q: %v", f.Data, err)
		}
		if m.Kind == kind {
			return f.Data, m
		}
	}
}

// legacyBlob is what a version 1 or 2 client seals: "v1." and base64url.
func legacyBlob() string {
	b := make([]byte, 80)
	rand.Read(b)
	return "v1." + base64.RawURLEncoding.EncodeToString(b)
}

// TestBrowserHostMeetsGuessingGuest: the browser hosts; the guest is a raw
// party. Its "v1." answer (an older client) is told as such, and counts
// nothing; then it guesses: each wrong reply is answered with failed and
// counted, and it asks for the next exchange with need (any); at the fifth
// the browser closes the room (leave, reason guess_limit), the guest is
// told so by room-closed's code, and the page says why.
func TestBrowserHostMeetsGuessingGuest(t *testing.T) {
	st := startStack(t)
	a := newBrowser(t, "host")
	link := a.host(st.url, "the host's password", false)
	g, _ := dialRaw(t, st.url, proto.Frame{Type: proto.TypeJoin, Room: roomOf(link)})
	share := g.pake(proto.TypeOffer, e2e.PAKEShare)

	g.send(proto.Frame{Type: proto.TypeAnswer, Data: legacyBlob()})
	a.waitJS(alertJS + `.includes("older protocol version; it must be updated") && ` + stateJS + ` === "waiting"`)
	var kept string
	a.eval(`localStorage.getItem("tryst.failures." + `+jsString(g.room)+`) || ""`, &kept)
	if kept != "" {
		t.Errorf("an older peer's answer counted as a failed attempt: %s", kept)
	}

	for i := 1; i <= e2e.GuessLimit; i++ {
		_, reply, err := e2e.Respond(fmt.Sprintf("guess %d", i), g.room, share)
		if err != nil {
			t.Fatal(err)
		}
		g.send(proto.Frame{Type: proto.TypeAnswer, Data: reply})
		if failed := g.pake(proto.TypeOffer, e2e.PAKEFailed); string(failed.SID) != string(share.SID) {
			t.Fatalf("guess %d: failed for another exchange", i)
		}
		if i == e2e.GuessLimit {
			break
		}
		a.waitJS(mismatchJS(i))
		g.send(proto.Frame{Type: proto.TypeAnswer, Data: e2e.NeedMessage(nil)})
		next := g.pake(proto.TypeOffer, e2e.PAKEShare)
		if string(next.SID) == string(share.SID) {
			t.Fatal("need (any) after a failed attempt brought the same exchange again")
		}
		share = next
	}
	closed := g.await(proto.TypeRoomClosed)
	if closed.Code != proto.ClosedGuessLimit {
		t.Errorf("room-closed %+v, want code guess_limit", closed)
	}
	a.waitJS(stateJS + ` === "ended" && ` + alertJS + `.includes("The room was closed after 5 failed password attempts")`)
	a.shot("guess-limit")
}

// TestBrowserGuestMeetsGuessingHost: the browser is the guest; the host is a
// raw party. Its "v1." offer is told as an older client's, counting
// nothing; its share under another password gets the guest's reply, and
// its failed is counted by the guest; then it closes the room as at the
// guess limit, and the guest's page says why (room-closed's code).
func TestBrowserGuestMeetsGuessingHost(t *testing.T) {
	st := startStack(t)
	h, _ := dialRaw(t, st.url, proto.Frame{Type: proto.TypeCreate})
	h.send(proto.Frame{Type: proto.TypeOffer, Data: legacyBlob()})
	b := newBrowser(t, "guest")
	b.join(st.url+"/#"+h.room, "the guest's password", false)
	b.waitJS(alertJS + `.includes("older protocol version; it must be updated")`)
	h.await(proto.TypePeerJoined)

	ex, share, err := e2e.StartHost("another password", h.room)
	if err != nil {
		t.Fatal(err)
	}
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
	reply := h.pake(proto.TypeAnswer, e2e.PAKEReply)
	if _, err := ex.Finish(reply); !errors.Is(err, e2e.ErrMismatch) {
		t.Fatalf("the guest's reply under another password: %v, want a mismatch", err)
	}
	h.send(proto.Frame{Type: proto.TypeOffer, Data: e2e.FailedMessage(ex.SID)})
	b.waitJS(mismatchJS(1))

	h.send(proto.Frame{Type: proto.TypeLeave, Reason: proto.ClosedGuessLimit})
	b.waitJS(stateJS + ` === "ended" && ` + alertJS + `.includes("closed the room after too many failed password attempts")`)
	b.shot("closed-there")
	b.run(chromedp.Reload())
	b.waitJS(`document.readyState === "complete" && ` + stateJS + ` === "ended" && ` + alertJS +
		`.includes("closed the room after too many failed password attempts")`)
}

// TestBrowserHubRefusesVersion: a hub that does not serve version 3 (an
// older one) answers unsupported_version; the page shows its message and
// does not try another version, whether creating or joining.
func TestBrowserHubRefusesVersion(t *testing.T) {
	var mu sync.Mutex
	var seen []proto.Frame
	const refusal = "this hub speaks protocol version 2, your client version 3: use a client that matches the hub"
	mux := http.NewServeMux()
	mux.Handle("/", Handler())
	mux.HandleFunc(proto.WebSocketPath, answeringHub(func(f proto.Frame) proto.Frame {
		mu.Lock()
		seen = append(seen, f)
		mu.Unlock()
		return proto.Frame{Type: proto.TypeError, Code: proto.CodeUnsupportedVersion, Message: refusal}
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	a := newBrowser(t, "host")
	a.run(chromedp.Navigate(srv.URL), chromedp.WaitVisible("#new-room", chromedp.ByID), chromedp.Click("#new-room", chromedp.ByID))
	a.waitJS(alertJS + `.includes(` + jsString(refusal) + `)`)
	b := newBrowser(t, "guest")
	b.join(srv.URL+"/#K7Q-MX2-P9R-TVW-4HN-C8D", "pw", false)
	b.waitJS(stateJS + ` === "ended" && ` + alertJS + `.includes(` + jsString(refusal) + `)`)
	b.shot("refused")

	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, f := range seen {
		got = append(got, fmt.Sprintf("%s v%d", f.Type, f.Version))
	}
	if strings.Join(got, ", ") != "create v3, join v3" {
		t.Errorf("the hub was asked %q, want one create and one join, each with version 3", got)
	}
}
