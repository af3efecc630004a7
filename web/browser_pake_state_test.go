package web

import (
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
