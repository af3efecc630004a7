package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
)

// TestBrowserGuessCountAcrossTabs: the count of failed attempts belongs to
// the room, not the tab. The guest fails once, then opens the room in a
// new tab of the same browser (a closed tab reopened, for the count): the
// next failure there is 2 of 5, not 1, and the fifth closes the room. A
// third tab then does not resume the room (its resume token is gone): it
// says why without reaching the hub.
func TestBrowserGuessCountAcrossTabs(t *testing.T) {
	st := startStack(t)
	h, _ := dialRaw(t, st.url, proto.Frame{Type: proto.TypeCreate})
	link := st.url + "/#" + h.room
	const pw = "the guest's password"
	b := newBrowser(t, "guest")
	b.join(link, pw, false)
	h.await(proto.TypePeerJoined)
	guess := func(n int, on *browser) {
		t.Helper()
		ex, share, err := e2e.StartHost(fmt.Sprintf("guess %d", n), h.room)
		if err != nil {
			t.Fatal(err)
		}
		h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
		if _, err := ex.Finish(h.pake(proto.TypeAnswer, e2e.PAKEReply)); !errors.Is(err, e2e.ErrMismatch) {
			t.Fatalf("guess %d: the guest's reply %v, want a mismatch", n, err)
		}
		h.send(proto.Frame{Type: proto.TypeOffer, Data: e2e.FailedMessage(ex.SID)})
		if n < e2e.GuessLimit {
			on.waitJS(mismatchJS(n))
		}
	}
	guess(1, b)

	b2 := b.tab("guest-tab")
	b2.run(chromedp.Navigate(link), chromedp.WaitVisible("#resume-btn", chromedp.ByID), chromedp.Click("#resume-btn", chromedp.ByID))
	b2.password(pw, false)
	h.pake(proto.TypeAnswer, e2e.PAKENeed)
	guess(2, b2)
	for n := 3; n <= e2e.GuessLimit; n++ {
		b2.retry(pw)
		h.pake(proto.TypeAnswer, e2e.PAKENeed)
		guess(n, b2)
	}
	if closed := h.await(proto.TypeRoomClosed); closed.Code != proto.ClosedGuessLimit {
		t.Errorf("room-closed %+v, want code guess_limit", closed)
	}
	const closedHere = stateJS + ` === "ended" && ` + alertJS + `.includes("The room was closed after 5 failed password attempts")`
	b2.waitJS(closedHere)

	b3 := b.tab("guest-tab-3")
	b3.run(chromedp.Navigate(link))
	b3.waitJS(`document.readyState === "complete" && ` + closedHere)
	var hub string
	b3.eval(hubJS, &hub)
	var token bool
	b3.eval(`(async () => !!((await (await import("/storage.js")).loadRoom()) || {}).token)()`, &token)
	if hub != "down" || token {
		t.Errorf("a new tab of a room closed at the guess limit: hub %q, resume token kept %v; want neither", hub, token)
	}
	b3.shot("closed-new-tab")
}

// TestBrowserGuestPendingAcrossReload: the browser is the guest, the host a
// raw party. A replay of the epoch's share is ignored: the next sealed
// offer is answered under the epoch. Then the guest replies to a new share
// and reloads before the offer comes; the same share posted again gets the
// identical reply, and the offer sealed under it opens (a sealed answer,
// no mismatch). Reloaded again, with that epoch, while the host is there,
// the guest asks for an offer at once with a sealed restart request.
func TestBrowserGuestPendingAcrossReload(t *testing.T) {
	st := startStack(t)
	h, _ := dialRaw(t, st.url, proto.Frame{Type: proto.TypeCreate})
	const pw = "pw of the room"
	b := newBrowser(t, "guest")
	b.join(st.url+"/#"+h.room, pw, false)
	h.await(proto.TypePeerJoined)

	// exchange posts a share and returns it, the guest's reply as it
	// travelled, and the host's exchange.
	exchange := func() (string, string, *e2e.HostExchange) {
		t.Helper()
		ex, share, err := e2e.StartHost(pw, h.room)
		if err != nil {
			t.Fatal(err)
		}
		h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
		reply, _ := h.pakeData(proto.TypeAnswer, e2e.PAKEReply)
		return share, reply, ex
	}
	signaler := func(ex *e2e.HostExchange, reply string) *e2e.Signaler {
		t.Helper()
		m, err := e2e.DecodePAKE(reply)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := ex.Finish(m)
		if err != nil {
			t.Fatalf("the guest's reply: %v", err)
		}
		sig, err := e2e.NewSignaler(ep, h.room)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	offerAnswered := func(sig *e2e.Signaler, what string) {
		t.Helper()
		nonce := base64.StdEncoding.EncodeToString(e2e.NewNonce())
		pt, _ := json.Marshal(map[string]any{"sdp": vectorOfferSDP, "nonce": nonce, "version": 3})
		h.send(proto.Frame{Type: proto.TypeOffer, Data: sig.Seal("offer", e2e.Host, pt)})
		f := h.await(proto.TypeAnswer)
		if e2e.IsPAKE(f.Data) {
			t.Fatalf("%s: the guest sent %q, want a sealed answer", what, f.Data)
		}
		raw, err := sig.Open("answer", e2e.Guest, f.Data)
		if err != nil {
			t.Fatalf("%s: the guest's answer does not open under the epoch: %v", what, err)
		}
		var a struct {
			Mismatch   bool   `json:"mismatch"`
			OfferNonce string `json:"offer_nonce"`
		}
		if err := json.Unmarshal(raw, &a); err != nil || a.Mismatch || a.OfferNonce != nonce {
			t.Fatalf("%s: the guest answered %s, want an answer to the offer", what, raw)
		}
	}

	share, reply, ex := exchange()
	sig := signaler(ex, reply)
	offerAnswered(sig, "the first offer")
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
	offerAnswered(sig, "after a replayed share")

	share, first, ex := exchange()
	b.run(chromedp.Reload())
	h.await(proto.TypePeerBack)
	h.send(proto.Frame{Type: proto.TypeOffer, Data: share})
	if again, _ := h.pakeData(proto.TypeAnswer, e2e.PAKEReply); again != first {
		t.Fatalf("the reloaded guest answered the same share with another reply:\n%s\n%s", first, again)
	}
	sig = signaler(ex, first)
	offerAnswered(sig, "after the reload")

	b.run(chromedp.Reload())
	h.await(proto.TypePeerBack)
	restart, err := sig.Open("candidate", e2e.Guest, h.await(proto.TypeCandidate).Data)
	if err != nil || string(restart) != `{"restart":true}` {
		t.Fatalf("the guest resumed with an epoch sent %q (%v), want a sealed restart request", restart, err)
	}
	var state string
	b.eval(stateJS, &state)
	if state == "mismatch" {
		t.Errorf("the guest counted a mismatch")
	}
}

// TestBrowserHostNeedAny: the browser hosts a raw guest that completes an
// exchange, gets the sealed offer, then asks with need (all zero): the
// host starts a fresh exchange at once (a share with a new sid) rather
// than offering under the epoch the guest says it cannot use.
func TestBrowserHostNeedAny(t *testing.T) {
	st := startStack(t)
	a := newBrowser(t, "host")
	const pw = "pw of the room"
	link := a.host(st.url, pw, false)
	g, _ := dialRaw(t, st.url, proto.Frame{Type: proto.TypeJoin, Room: roomOf(link)})
	share := g.pake(proto.TypeOffer, e2e.PAKEShare)
	_, reply, err := e2e.Respond(pw, g.room, share)
	if err != nil {
		t.Fatal(err)
	}
	g.send(proto.Frame{Type: proto.TypeAnswer, Data: reply})
	for e2e.IsPAKE(g.await(proto.TypeOffer).Data) {
	}
	g.send(proto.Frame{Type: proto.TypeAnswer, Data: e2e.NeedMessage(nil)})
	f := g.await(proto.TypeOffer)
	m, err := e2e.DecodePAKE(f.Data)
	if err != nil || m.Kind != e2e.PAKEShare || string(m.SID) == string(share.SID) {
		t.Fatalf("after need (any) the host offered %.40q, want a fresh share", f.Data)
	}
}

// vectorOfferSDP is the SDP of docs/PROTOCOL.md's seal-offer vector: an
// offer a browser accepts (its candidate leads nowhere).
const vectorOfferSDP = "v=0\r\no=- 6659461779830193008 1796411705 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=msid-semantic:WMS *\r\n" +
	"a=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n" +
	"a=extmap-allow-mixed\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=sctp-port:5000\r\na=max-message-size:1073741823\r\n" +
	"a=ice-ufrag:BazTdZCdVVABTvuO\r\na=ice-pwd:QFMSLfbNwORCbGLPeBvIWRwPPiUVYZpk\r\n" +
	"a=candidate:2878742611 1 udp 2130706431 203.0.113.7 48997 typ host ufrag BazTdZCdVVABTvuO generation 0\r\na=end-of-candidates\r\n"
