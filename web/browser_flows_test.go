package web

import (
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

func TestBrowserWrongPassword(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "right", false)
	b.join(link, "wrong", false)
	for _, br := range []*browser{a, b} {
		br.waitJS(stateJS + ` === "mismatch" && ` + alertJS + `.includes("Password mismatch") && document.getElementById("alert-action").textContent === "Try another password"`)
		br.shot("mismatch")
	}
}

func TestBrowserReloadReconnects(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	// A password with characters base64url never uses, so finding it in
	// storage cannot be a coincidence.
	const pw = "p@ss w0rd!"
	link := a.host(st.url, pw, false)
	b.join(link, pw, false)
	a.connected()
	b.connected()
	a.say("before reload")
	b.waitMessage("before reload")

	// Reload the host: the key comes back from sessionStorage (decrypted
	// with the non-extractable IndexedDB key), no password is typed, and
	// the chat continues.
	a.run(chromedp.Reload(), chromedp.WaitReady("body", chromedp.ByQuery))
	a.connected()
	var typedPassword bool
	a.eval(`!document.getElementById("password").hidden`, &typedPassword)
	if typedPassword {
		t.Error("reload asked for the password again")
	}
	if kept := a.storedText(); strings.Contains(kept, pw) {
		t.Errorf("the page's storage holds the password: %q", kept)
	}
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
