package web

import (
	"crypto/sha256"
	"encoding/hex"
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

	br.say("hi from the browser")
	if ev := g.WaitFor(client.EventChat); ev.Text != "hi from the browser" {
		t.Errorf("Go client got %q", ev.Text)
	}
	g.Client.Send("hi from tryst chat")
	br.waitMessage("hi from tryst chat")

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

func TestBrowserGoWrongPassword(t *testing.T) {
	st := startStack(t)
	br := newBrowser(t, "browser")
	link := br.host(st.url, "one", false)
	code := link[strings.Index(link, "#")+1:]
	g := startGoPeer(t, client.Config{Hub: st.url, Room: code, Password: "two"})
	if err := g.WaitResult(); err != client.ErrPasswordMismatch {
		t.Errorf("Go client: %v", err)
	}
	br.waitJS(stateJS + ` === "mismatch" && ` + alertJS + `.includes("Password mismatch")`)
}
