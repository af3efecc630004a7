package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/hub"
)

func randomFile(t *testing.T, size int) (string, [32]byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, sha256.Sum256(b)
}

func checkReceived(t *testing.T, path string, want [32]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(b) != want {
		t.Fatalf("%s: SHA-256 differs from the file sent", path)
	}
}

func relayedBytes(st *stack) float64 { return st.RelayedBytes() }

func transfer(t *testing.T, relay bool) {
	const size = 20 << 20
	st := startStack(t, nil)
	src, sum := randomFile(t, size)
	out := t.TempDir()
	h, g := pairUp(t, st, client.Config{Relay: relay}, client.Config{Relay: relay, OutDir: out})
	path := h.WaitFor(client.EventConnected).Path
	if relay != (path == "relay") {
		t.Fatalf("path %q with relay=%v", path, relay)
	}
	before := relayedBytes(st)
	if err := h.Client.SendFile(src); err != nil {
		t.Fatal(err)
	}
	sent := h.WaitFor(client.EventFileSent)
	if !sent.File.OK {
		t.Fatalf("sender verdict: %+v", sent.File)
	}
	got := g.WaitFor(client.EventFileReceived)
	if !got.File.OK || filepath.Dir(got.File.Path) != out {
		t.Fatalf("receiver: %+v", got.File)
	}
	checkReceived(t, got.File.Path, sum)
	if _, err := os.Stat(got.File.Path + ".part"); !os.IsNotExist(err) {
		t.Error(".part file left behind")
	}
	grew := relayedBytes(st) - before
	if relay && grew < size {
		t.Errorf("TURN relayed %.0f bytes for a %d-byte file", grew, size)
	}
	// ICE keeps checking its relay candidate pairs, a few hundred bytes;
	// the file itself must not go through TURN.
	if !relay && grew > size/100 {
		t.Errorf("direct transfer went through TURN (%.0f bytes)", grew)
	}
}

func TestTransferDirect(t *testing.T) { transfer(t, false) }

func TestTransferRelayed(t *testing.T) { transfer(t, true) }

func TestTransferResumesAfterCut(t *testing.T) {
	const size = 24 << 20
	st := startStack(t, nil)
	src, sum := randomFile(t, size)
	out := t.TempDir()
	h, g := pairUp(t, st, client.Config{}, client.Config{OutDir: out})
	h.WaitFor(client.EventConnected)
	if err := h.Client.SendFile(src); err != nil {
		t.Fatal(err)
	}
	// Cut the connection once a few megabytes have arrived.
	for {
		ev := g.WaitFor(client.EventProgress)
		if ev.File.Done >= 4<<20 {
			break
		}
	}
	g.Client.DropPeer()
	res := h.WaitFor(client.EventFileResumed)
	if res.File.Done < 4<<20 || res.File.Done >= size {
		t.Errorf("resumed at %d, want at least the 4 MiB already acknowledged", res.File.Done)
	}
	sent := h.WaitFor(client.EventFileSent)
	if !sent.File.OK {
		t.Fatalf("sender verdict: %+v", sent.File)
	}
	got := g.WaitFor(client.EventFileReceived)
	checkReceived(t, got.File.Path, sum)
}

func TestChatSurvivesReconnectWithoutLossOrDuplicates(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, client.Config{}, client.Config{})
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)
	const n = 50
	for i := range n {
		h.Client.Send(strings.Repeat("x", i+1))
		if i == n/2 {
			h.Client.DropPeer()
		}
	}
	for i := range n {
		ev := g.WaitFor(client.EventChat)
		if ev.Text != strings.Repeat("x", i+1) {
			t.Fatalf("message %d: got %d bytes", i, len(ev.Text))
		}
	}
	// Nothing more: no duplicate after the reconnect.
	h.Client.Send("end")
	if ev := g.WaitFor(client.EventChat); ev.Text != "end" {
		t.Fatalf("got %q after the batch, want end", ev.Text)
	}
}

func TestHostileFileNames(t *testing.T) {
	for _, name := range []string{"..", ".", "", "../evil", "/etc/passwd", `..\evil`, "a/b", "bad\x00name", "new\nline",
		strings.Repeat("a", 256), "\xff\xfe"} {
		if client.ValidateFileName(name) == nil {
			t.Errorf("accepted %q", name)
		}
	}
	for _, name := range []string{"report.pdf", "photo 1.jpg", ".bashrc", "日本語.txt", "a..b"} {
		if err := client.ValidateFileName(name); err != nil {
			t.Errorf("refused %q: %v", name, err)
		}
	}

	// Through the real protocol: a peer offering hostile names gets them
	// refused, and nothing is written outside the output directory. The
	// files are queued before the guest joins, so the names are set before
	// the sender reads them.
	st := startStack(t, nil)
	out := t.TempDir()
	// An existing file is never overwritten; a symlink is never followed.
	os.WriteFile(filepath.Join(out, "exists.txt"), []byte("keep me"), 0o600)
	os.Symlink("/etc/hostname", filepath.Join(out, "link.txt"))
	h := startMember(t, client.Config{Hub: st.hubURL, Password: "pw"})
	code := h.WaitFor(client.EventRoom).Text
	hostile := []string{"../escape.txt", "/tmp/abs.txt", "sub/dir.txt"}
	for _, name := range hostile {
		offerRaw(t, h.Client, name, []byte("x"))
	}
	for _, name := range []string{"exists.txt", "link.txt"} {
		offerRaw(t, h.Client, name, []byte("new content"))
	}
	g := startMember(t, client.Config{Hub: st.hubURL, Password: "pw", Room: code, OutDir: out})
	for _, name := range hostile {
		if ev := g.WaitFor(client.EventFileReceived); ev.File.OK || !strings.Contains(ev.File.Err, "refused file name") {
			t.Errorf("%q: %+v", name, ev.File)
		}
		if ev := h.WaitFor(client.EventFileSent); ev.File.OK {
			t.Errorf("%q: sender told OK", name)
		}
	}
	for _, name := range []string{"exists.txt", "link.txt"} {
		ev := g.WaitFor(client.EventFileReceived)
		if !ev.File.OK || filepath.Base(ev.File.Path) == name {
			t.Errorf("%s: stored as %q", name, ev.File.Path)
		}
		h.WaitFor(client.EventFileSent)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "exists.txt")); string(b) != "keep me" {
		t.Error("existing file overwritten")
	}
	if target, _ := os.Readlink(filepath.Join(out, "link.txt")); target != "/etc/hostname" {
		t.Error("symlink replaced")
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range entries {
		if e.Name() == "escape.txt" {
			t.Error("file written outside the output directory")
		}
	}
}

// offerRaw queues a file under an arbitrary name, as a hostile peer could.
func offerRaw(t *testing.T, c *client.Client, name string, data []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "raw")
	os.WriteFile(p, data, 0o600)
	if err := c.SendFile(p); err != nil {
		t.Fatal(err)
	}
	c.RenameLastQueued(name)
}

// recordingStore keeps every blob the hub handles.
type recordingStore struct {
	hub.Store
	mu    sync.Mutex
	blobs []string
}

func (s *recordingStore) Post(ctx context.Context, code string, from hub.Role, ev hub.Event) error {
	s.mu.Lock()
	s.blobs = append(s.blobs, ev.Data)
	s.mu.Unlock()
	return s.Store.Post(ctx, code, from, ev)
}

func TestHubSeesNoSDP(t *testing.T) {
	mem := hub.NewMemStore(10*60*1e9, nil)
	rec := &recordingStore{Store: mem}
	st := startStack(t, rec)
	t.Cleanup(func() { mem.Close() })
	h, g := pairUp(t, st, client.Config{}, client.Config{})
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.blobs) < 2 {
		t.Fatalf("hub saw %d blobs", len(rec.blobs))
	}
	for _, b := range rec.blobs {
		for _, clear := range []string{"v=0", "a=fingerprint", "a=candidate", "ice-ufrag", "127.0.0.1"} {
			if bytes.Contains([]byte(b), []byte(clear)) {
				t.Errorf("hub blob contains %q in clear: %.80s", clear, b)
			}
		}
	}
}

// TestSameFileTwice: sending a file the other side already has, in the same
// session, is a second transfer (stored as "NAME (1)"), whether or not a
// state directory remembers what was sent.
func TestSameFileTwice(t *testing.T) {
	for _, withState := range []bool{false, true} {
		t.Run(fmt.Sprintf("state=%v", withState), func(t *testing.T) {
			st := startStack(t, nil)
			src, sum := randomFile(t, 64<<10)
			var hc, gc client.Config
			gc.OutDir = t.TempDir()
			if withState {
				hc.StateDir, gc.StateDir = t.TempDir(), t.TempDir()
			}
			h, g := pairUp(t, st, hc, gc)
			var paths []string
			for range 2 {
				if err := h.Client.SendFile(src); err != nil {
					t.Fatal(err)
				}
				if sent := h.WaitFor(client.EventFileSent); !sent.File.OK {
					t.Fatalf("sender verdict: %+v", sent.File)
				}
				got := g.WaitFor(client.EventFileReceived)
				if !got.File.OK {
					t.Fatalf("receiver: %+v", got.File)
				}
				checkReceived(t, got.File.Path, sum)
				paths = append(paths, got.File.Path)
			}
			if paths[0] == paths[1] {
				t.Errorf("both stored as %s", paths[0])
			}
		})
	}
}
