package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
)

// startGoPeer runs a Go client (what `tryst chat` runs) to talk to a
// browser. Browser tests are slower than Go-only ones: the waits get longer.
func startGoPeer(t *testing.T, cfg client.Config) *clienttest.Member {
	t.Helper()
	g := clienttest.Start(t, cfg)
	g.Timeout = 90 * time.Second
	return g
}

func TestBrowserWithGoClient(t *testing.T) {
	st := startStack(t)
	br := newBrowser(t, "browser")
	link := br.host(st.url, "shared secret", false)
	code := link[strings.Index(link, "#")+1:]
	out := t.TempDir()
	g := startGoPeer(t, client.Config{Hub: st.url, Room: code, Password: "shared secret", OutDir: out})
	if ev := g.WaitFor(client.EventConnected); !strings.HasPrefix(ev.Path, "direct") {
		t.Errorf("Go client path %q", ev.Path)
	}
	br.connected()

	chatBothWays(t, br, g, "hi from the browser", "hi from tryst chat")

	// A file each way, checked by SHA-256.
	toBrowser, sumB := randomFile(t, "to-browser.bin", 1<<20+123)
	if err := g.Client.SendFile(toBrowser); err != nil {
		t.Fatal(err)
	}
	if got := br.receivedSHA("to-browser.bin"); got != sumB {
		t.Errorf("browser received SHA-256 %s, want %s", got, sumB)
	}
	if ev := g.WaitFor(client.EventFileSent); !ev.File.OK {
		t.Errorf("Go sender verdict: %+v", ev.File)
	}
	toGo, sumG := randomFile(t, "to-go.bin", 2<<20+7)
	br.sendFile(toGo)
	ev := g.WaitFor(client.EventFileReceived)
	if !ev.File.OK {
		t.Fatalf("Go receiver: %+v", ev.File)
	}
	data, err := os.ReadFile(ev.File.Path)
	if err != nil {
		t.Fatal(err)
	}
	if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != sumG {
		t.Error("file from the browser differs")
	}
	br.waitSent("to-go.bin")
	br.shot("with-go-client")
}

// TestBrowserGuestWithGoHost: the Go client hosts (it starts the PAKE), the
// browser joins with the code: chat both ways.
func TestBrowserGuestWithGoHost(t *testing.T) {
	st := startStack(t)
	g := startGoPeer(t, client.Config{Hub: st.url, Password: "shared secret", OutDir: t.TempDir()})
	code := g.WaitFor(client.EventRoom).Text
	br := newBrowser(t, "browser")
	br.join(st.url+"/#"+code, "shared secret", false)
	g.WaitFor(client.EventConnected)
	br.connected()
	chatBothWays(t, br, g, "hi from the browser guest", "hi from the Go host")
}

// chatBothWays sends fromBrowser to the Go peer and fromGo back.
func chatBothWays(t *testing.T, br *browser, g *clienttest.Member, fromBrowser, fromGo string) {
	t.Helper()
	br.say(fromBrowser)
	if ev := g.WaitFor(client.EventChat); ev.Text != fromBrowser {
		t.Errorf("Go peer got %q, want %q", ev.Text, fromBrowser)
	}
	g.Client.Send(fromGo)
	br.waitMessage(fromGo)
}

// TestBrowserGoWrongPassword: a Go guest with another password than the
// browser host's: the Go guest ends with a password mismatch, the browser
// counts one failed attempt of 5.
func TestBrowserGoWrongPassword(t *testing.T) {
	st := startStack(t)
	br := newBrowser(t, "browser")
	link := br.host(st.url, "one", false)
	code := link[strings.Index(link, "#")+1:]
	g := startGoPeer(t, client.Config{Hub: st.url, Room: code, Password: "two"})
	if err := g.WaitResult(); !errors.Is(err, client.ErrPasswordMismatch) {
		t.Errorf("Go client: %v", err)
	}
	br.waitJS(mismatchJS(1))
}

// TestBrowserGoHostWrongPassword: a browser guest with another password
// than the Go host's: both count it; the Go host keeps the room and waits
// for the next exchange, which the browser's "Try another password" asks
// for (need), and with the host's password the two connect.
func TestBrowserGoHostWrongPassword(t *testing.T) {
	st := startStack(t)
	g := startGoPeer(t, client.Config{Hub: st.url, Password: "the host's", OutDir: t.TempDir()})
	code := g.WaitFor(client.EventRoom).Text
	br := newBrowser(t, "browser")
	br.join(st.url+"/#"+code, "a typo", false)
	br.waitJS(mismatchJS(1))
	br.retry("the host's")
	g.WaitFor(client.EventConnected)
	br.connected()
	g.Client.Send("second try")
	br.waitMessage("second try")
}
