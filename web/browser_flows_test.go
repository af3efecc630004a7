package web

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBrowserToBrowser(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "correct horse", false)
	if !strings.Contains(link, "#") || strings.Contains(link, "?") {
		t.Fatalf("share link %q should carry the code in the fragment", link)
	}
	b.join(link, "correct horse", false)
	if p := a.connected(); p != "direct" {
		t.Errorf("host path %q, want direct", p)
	}
	b.connected()
	a.say("hello from the host")
	b.waitMessage("hello from the host")
	b.say("hello back")
	a.waitMessage("hello back")
	a.shot("chat")

	path, sum := randomFile(t, "photo.bin", 3<<20)
	b.sendFile(path)
	if got := a.receivedSHA("photo.bin"); got != sum {
		t.Errorf("received SHA-256 %s, want %s", got, sum)
	}
	b.waitSent("photo.bin")
	a.shot("file")
	b.shot("file")
}

// mismatchJS: the page says the passwords differ (or someone is guessing),
// with the count of failed attempts n of 5, and offers another password.
func mismatchJS(n int) string {
	return stateJS + ` === "mismatch" && ` + alertJS + `.startsWith("Password mismatch") && ` + alertJS +
		`.includes("someone is trying to guess it") && ` + alertJS + fmt.Sprintf(`.includes("Failed attempts: %d of 5;")`, n) +
		` && document.getElementById("alert-action").textContent === "Try another password" && !document.getElementById("alert-action").hidden`
}

// retry clicks "Try another password" and types pw.
func (b *browser) retry(pw string) {
	b.t.Helper()
	b.run(chromedp.Click("#alert-action", chromedp.ByID), chromedp.WaitVisible("#password-input", chromedp.ByID))
	b.password(pw, false)
}

// TestBrowserWrongPassword: the guest types another password than the
// host's; both pages say so, each counting one failed attempt of 5, and
// nothing connects. The host then tries the guest's password: its fresh
// exchange connects without a word from the guest, whose page kept the
// password it typed.
func TestBrowserWrongPassword(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "right", false)
	b.join(link, "wrong", false)
	for _, br := range []*browser{a, b} {
		br.waitJS(mismatchJS(1))
		br.shot("mismatch")
	}
	a.retry("wrong")
	a.connected()
	b.connected()
	a.say("on the guest's password")
	b.waitMessage("on the guest's password")
	for _, br := range []*browser{a, b} {
		var n int
		br.eval(`JSON.parse(localStorage.getItem("tryst.failures." + `+jsString(roomOf(link))+`)).n`, &n)
		if n != 1 {
			t.Errorf("%s counts %d failed attempts, want 1", br.name, n)
		}
	}
}

// TestBrowserGuessLimit: five failed attempts close the room, whoever
// retries: the guest with new passwords (need), the host with one of its
// own (a fresh exchange, which the guest's page answers with the password
// it holds). Both pages count each attempt once, then say that the room
// was closed after too many failed password attempts, and a reload says it
// again.
func TestBrowserGuessLimit(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "right", false)
	b.join(link, "wrong 1", false)
	both := func(n int) {
		for _, br := range []*browser{a, b} {
			br.waitJS(mismatchJS(n))
		}
	}
	both(1)
	b.retry("wrong 2")
	both(2)
	a.retry("also wrong")
	both(3)
	b.retry("wrong 3")
	both(4)
	b.retry("wrong 4")
	const closed = stateJS + ` === "ended" && ` + alertJS + `.includes("failed password attempts") && ` +
		`document.getElementById("alert-action").textContent === "Start a new room" && document.getElementById("message").disabled`
	for _, br := range []*browser{a, b} {
		br.waitJS(closed)
		br.shot("guess-limit")
	}
	a.run(chromedp.Reload())
	a.waitJS(`document.readyState === "complete" && ` + closed)
	var hub string
	a.eval(hubJS, &hub)
	if hub != "down" {
		t.Errorf("the reloaded page of a closed room reached the hub (%q)", hub)
	}
}

// TestBrowserReloadReconnects: a reloaded page reconnects with the epoch it
// kept, without the password and without a new exchange on either side;
// what it keeps lets no one test a password offline; "Leave and forget"
// tells the other side and keeps nothing.
func TestBrowserReloadReconnects(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	a.instrument()
	b.instrument()
	// A password with characters base64url never uses, so finding it in
	// storage cannot be a coincidence.
	const pw = "p@ss w0rd!"
	link := a.host(st.url, pw, false)
	b.join(link, pw, false)
	a.connected()
	b.connected()
	a.say("before reload")
	b.waitMessage("before reload")

	// Reload the host: the epoch comes back from sessionStorage (unwrapped
	// with the non-extractable IndexedDB key), no password is typed, no
	// exchange runs, and the chat continues.
	a.run(chromedp.Reload(), chromedp.WaitReady("body", chromedp.ByQuery))
	a.connected()
	var typedPassword bool
	a.eval(`!document.getElementById("password").hidden`, &typedPassword)
	if typedPassword {
		t.Error("reload asked for the password again")
	}
	var exchanges [2]string
	a.eval(`document.documentElement.dataset.pake || "0"`, &exchanges[0])
	b.eval(`document.documentElement.dataset.pake || "0"`, &exchanges[1])
	if exchanges != [2]string{"0", "1"} {
		t.Errorf("PAKE exchanges: %s on the reloaded host, %s on the guest; want none since the reload, one in all", exchanges[0], exchanges[1])
	}
	noOfflineTest(t, a, pw, roomOf(link))
	b.say("after reload")
	a.waitMessage("after reload")
	a.say("host is back")
	b.waitMessage("host is back")
	a.shot("after-reload")

	// "Leave and forget": the other side is told, and nothing is kept.
	a.run(chromedp.Click("#leave", chromedp.ByID))
	b.waitJS(stateJS + ` === "ended" && ` + alertJS + `.includes("left the room") && document.getElementById("alert-action").textContent === "Start a new room"`)
	a.waitJS(`document.readyState === "complete" && document.getElementById("start")?.hidden === false`)
	if kept := a.storedText(); strings.Contains(kept, "sessionStorage") || strings.Contains(kept, " rooms ") ||
		strings.Contains(kept, " history ") || strings.Contains(kept, " chat ") {
		t.Errorf("left the room but kept %q", kept)
	}
	// The other side's next step: a new room, the old one forgotten.
	b.run(chromedp.Click("#alert-action", chromedp.ByID))
	b.waitJS(`document.readyState === "complete" && document.getElementById("start")?.hidden === false && document.getElementById("leave").hidden`)
	if kept := b.storedText(); strings.Contains(kept, " rooms ") || strings.Contains(kept, " history ") {
		t.Errorf("started a new room but kept %q", kept)
	}
}

func TestBrowserRelayedFile(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "pw", true)
	b.join(link, "pw", true)
	if p := a.connected(); p != "relayed" {
		t.Errorf("path %q, want relayed", p)
	}
	b.connected()
	before := st.relayed()
	const size = 2 << 20
	path, sum := randomFile(t, "relayed.bin", size)
	a.sendFile(path)
	if got := b.receivedSHA("relayed.bin"); got != sum {
		t.Errorf("SHA-256 %s, want %s", got, sum)
	}
	if grew := st.relayed() - before; grew < size {
		t.Errorf("TURN relayed %.0f bytes for a %d-byte file", grew, size)
	}
	b.shot("relayed")
}
