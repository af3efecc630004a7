package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/client"
)

// goPeer is a Go client (what `tryst chat` runs) talking to a browser.
type goPeer struct {
	t      *testing.T
	c      *client.Client
	events chan client.Event
	done   chan error
}

func startGoPeer(t *testing.T, cfg client.Config) *goPeer {
	t.Helper()
	g := &goPeer{t: t, events: make(chan client.Event, 4096), done: make(chan error, 1)}
	cfg.LoopbackOnly = true
	cfg.OnEvent = func(ev client.Event) {
		select {
		case g.events <- ev:
		default:
		}
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.c = c
	ctx, cancel := context.WithCancel(context.Background())
	go func() { g.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-g.done
	})
	return g
}

func (g *goPeer) waitFor(kind client.EventKind) client.Event {
	g.t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case ev := <-g.events:
			if ev.Kind == kind {
				return ev
			}
		case err := <-g.done:
			g.done <- err
			g.t.Fatalf("Go client stopped: %v", err)
		case <-timeout:
			g.t.Fatalf("timed out waiting for Go client event %d", kind)
		}
	}
}

func TestBrowserWithGoClient(t *testing.T) {
	st := startStack(t)
	br := newBrowser(t, "browser")
	link := br.host(st.url, "shared secret", false, false)
	code := link[strings.Index(link, "#")+1:]
	out := t.TempDir()
	g := startGoPeer(t, client.Config{Hub: st.url, Room: code, Password: "shared secret", OutDir: out})
	if ev := g.waitFor(client.EventConnected); !strings.HasPrefix(ev.Path, "direct") {
		t.Errorf("Go client path %q", ev.Path)
	}
	br.connected()

	br.say("hi from the browser")
	if ev := g.waitFor(client.EventChat); ev.Text != "hi from the browser" {
		t.Errorf("Go client got %q", ev.Text)
	}
	g.c.Send("hi from tryst chat")
	br.waitMessage("hi from tryst chat")

	// A file each way, checked by SHA-256.
	toBrowser, sumB := randomFile(t, "to-browser.bin", 1<<20+123)
	if err := g.c.SendFile(toBrowser); err != nil {
		t.Fatal(err)
	}
	if got := br.receivedSHA("to-browser.bin"); got != sumB {
		t.Errorf("browser received SHA-256 %s, want %s", got, sumB)
	}
	if ev := g.waitFor(client.EventFileSent); !ev.File.OK {
		t.Errorf("Go sender verdict: %+v", ev.File)
	}
	toGo, sumG := randomFile(t, "to-go.bin", 2<<20+7)
	br.sendFile(toGo)
	ev := g.waitFor(client.EventFileReceived)
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
	link := br.host(st.url, "one", false, false)
	code := link[strings.Index(link, "#")+1:]
	g := startGoPeer(t, client.Config{Hub: st.url, Room: code, Password: "two"})
	select {
	case err := <-g.done:
		g.done <- err
		if err != client.ErrPasswordMismatch {
			t.Errorf("Go client: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Go client did not stop")
	}
	br.waitJS(`document.getElementById("alert").textContent.includes("Password mismatch")`)
}
