package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBrowserToBrowser(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "correct horse", false, false)
	if !strings.Contains(link, "#") || strings.Contains(link, "?") {
		t.Fatalf("share link %q should carry the code in the fragment", link)
	}
	b.join(link, "correct horse", false)
	if p := a.connected(); !strings.HasPrefix(p, "Direct") {
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
	link := a.host(st.url, "right", false, false)
	b.join(link, "wrong", false)
	for _, br := range []*browser{a, b} {
		br.waitJS(`!document.getElementById("alert").hidden && document.getElementById("alert").textContent.includes("Password mismatch")`)
		br.shot("mismatch")
	}
}

func TestBrowserReloadReconnects(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	// A password with characters base64url never uses, so finding it in
	// storage cannot be a coincidence.
	const pw = "p@ss w0rd!"
	link := a.host(st.url, pw, false, true)
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
	var stored string
	a.eval(`sessionStorage.getItem("tryst.key") || ""`, &stored)
	if stored == "" || strings.Contains(stored, pw) {
		t.Errorf("sessionStorage key %q", stored)
	}
	b.say("after reload")
	a.waitMessage("after reload")
	a.say("host is back")
	b.waitMessage("host is back")
	a.shot("after-reload")

	// "Leave and forget": the other side is told, and nothing is kept.
	a.run(chromedp.Click("#leave", chromedp.ByID))
	b.waitJS(`document.getElementById("status").textContent.includes("left the room")`)
	a.run(chromedp.WaitVisible("#new-room", chromedp.ByID))
	var kept string
	a.eval(`(localStorage.getItem("tryst.session") || "") + (sessionStorage.getItem("tryst.key") || "")`, &kept)
	if kept != "" {
		t.Errorf("left the room but kept %q", kept)
	}
}

func TestBrowserRelayedFile(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "pw", true, false)
	b.join(link, "pw", true)
	if p := a.connected(); p != "Relayed through TURN" {
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
