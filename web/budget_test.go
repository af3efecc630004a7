package web

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/proto"
)

// TestBrowserAtCredentialBudget runs the browser client against a hub whose
// per-address credential budget is one, refilled every 3 s of a clock the
// test moves: the host's create spends it; the guest's join is answered
// with STUN only, which the page notes, and still connects directly; a
// third page's create is refused with the hub's message and its button
// stays disabled until the hub's retry_after has passed.
func TestBrowserAtCredentialBudget(t *testing.T) {
	needBrowser(t)
	st := startStack(t)
	clock := testclock.New(time.Now())
	h, err := hub.New(hub.Config{
		Web: Handler(), CredentialBurst: 1, CredentialRate: rate.Every(3 * time.Second), Now: clock.Now,
		ICE: func(string) proto.ICEConfig {
			user, pass, _ := st.st.TURN.Credential("test")
			addr := st.st.TURN.UDPAddr().String()
			return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
				{URLs: []string{"stun:" + addr}},
				{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: user, Credential: pass},
			}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})

	a, b, c := newBrowser(t, "host"), newBrowser(t, "guest"), newBrowser(t, "third")
	link := a.host(srv.URL, "correct horse", false)
	b.join(link, "correct horse", false)
	if p := b.connected(); p != "direct" {
		t.Errorf("guest path %q, want direct", p)
	}
	a.connected()
	b.waitJS(`[...document.querySelectorAll("#messages li.note")].some(li => li.textContent.includes("no relay"))`)

	c.run(chromedp.Navigate(srv.URL), chromedp.WaitVisible("#new-room", chromedp.ByID), chromedp.Click("#new-room", chromedp.ByID))
	c.waitJS(alertJS + `.includes("try again in 3 s")`)
	var disabled bool
	c.eval(`document.getElementById("new-room").disabled`, &disabled)
	if !disabled {
		t.Error("create button enabled at once after a rate_limited refusal")
	}
	clock.Advance(3 * time.Second)
	c.waitJS(`!document.getElementById("new-room").disabled`)
	c.run(chromedp.Click("#new-room", chromedp.ByID), chromedp.WaitVisible("#share-link", chromedp.ByID))
}
