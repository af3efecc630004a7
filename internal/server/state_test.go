package server

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// roomOn creates and joins a room on s and returns the guest's resume
// token; the two connections are closed again.
func roomOn(t *testing.T, s *Server) (room, guestToken string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(s.Addrs().Hub, "http://", "ws://", 1) + proto.WebSocketPath
	host := attach(ctx, t, url, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion}, proto.TypeCreated)
	defer host.Close()
	guest := attach(ctx, t, url, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: host.room}, proto.TypeJoined)
	defer guest.Close()
	return host.room, guest.token
}

type attached struct {
	*hubconn.Conn
	room, token string
}

// attach opens a connection to url, sends first and expects a frame of
// type want.
func attach(ctx context.Context, t *testing.T, url string, first proto.Frame, want string) attached {
	t.Helper()
	c, _, err := hubconn.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	f, err := c.Next(ctx)
	if err != nil || f.Type != want {
		c.Close()
		t.Fatalf("%s: got %+v (%v), want %s", first.Type, f, err, want)
	}
	return attached{Conn: c, room: f.Room, token: f.Token}
}

// resumeOn resumes token on s and returns the frame the hub answered.
func resumeOn(t *testing.T, s *Server, token string) proto.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(s.Addrs().Hub, "http://", "ws://", 1) + proto.WebSocketPath
	c, _, err := hubconn.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(ctx, proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: token}); err != nil {
		t.Fatal(err)
	}
	f, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestStateDirHubKey: the first start generates the hub key in the state
// directory (made 0700, the key 0600), the next start loads it, and a room
// of the first process is resumed on the second.
func TestStateDirHubKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "tryst")
	cfg := testConfig()
	cfg.StateDir = dir
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s := start(t, cfg)
	room, token := roomOn(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, hubKeyName)
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := hub.ParseHubKeys(data); err != nil || len(keys) != 1 {
		t.Fatalf("%s: %d keys, %v", key, len(keys), err)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, key: 0o600} {
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %#o", path, fi.Mode().Perm(), err, want)
			}
		}
	}
	if !strings.Contains(logs.String(), "generated the hub key") || strings.Contains(logs.String(), string(bytes.TrimSpace(data))) {
		t.Errorf("log: %s", logs.String())
	}

	logs.Reset()
	s2 := start(t, cfg)
	if f := resumeOn(t, s2, token); f.Type != proto.TypeResumed || f.Room != room {
		t.Errorf("resume on the restarted server: %+v", f)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(after, data) {
		t.Error("the second start replaced the hub key")
	}
	if !strings.Contains(logs.String(), "hub key loaded") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestStateDirUnusable: a state directory that cannot be made is a
// warning, never a failure to start; the hub runs with a random key.
func TestStateDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(file, "tryst"), ""} {
		cfg := testConfig()
		cfg.StateDir = dir // under a regular file: not even root can make it
		logs := &syncBuffer{}
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		s := start(t, cfg)
		_, token := roomOn(t, s)
		if f := resumeOn(t, s, token); f.Type != proto.TypeResumed {
			t.Errorf("state dir %q: resume %+v", dir, f)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "rooms will not survive a restart") {
			t.Errorf("state dir %q: no warning: %s", dir, logs.String())
		}
	}
}

// TestHubKeyFile: --hub-key-file wins over the state directory, is shared
// by the servers that follow one another, and is reloaded with a new
// first key on SIGHUP; a short key is a setting error.
func TestHubKeyFile(t *testing.T) {
	tmp := t.TempDir()
	f := filepath.Join(tmp, "hub-keys")
	const oldKey, newKey = "old-hub-key-0123456789abcdef", "new-hub-key-0123456789abcdef"
	if err := os.WriteFile(f, []byte(oldKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.HubKeyFile = f
	cfg.StateDir = filepath.Join(tmp, "state")
	a := start(t, cfg)
	room, token := roomOn(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := start(t, cfg)
	if _, err := os.Stat(cfg.StateDir); err == nil {
		t.Error("a state directory was made although --hub-key-file is set")
	}
	// The old key stays below the new one: tokens signed with it verify.
	if err := os.WriteFile(f, []byte(newKey+"\n"+oldKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Reload()
	r := resumeOn(t, b, token)
	if r.Type != proto.TypeResumed || r.Room != room {
		t.Fatalf("resume on another server with the same key: %+v", r)
	}
	// The re-issued token is signed with the new key alone.
	if err := os.WriteFile(f, []byte(newKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := start(t, cfg)
	if f := resumeOn(t, c, r.Token); f.Type != proto.TypeResumed {
		t.Errorf("resume with the re-issued token after the old key went: %+v", f)
	}

	if err := os.WriteFile(f, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg)
	if se, ok := err.(*SettingError); !ok || se.Setting != "--hub-key-file" {
		t.Errorf("a short hub key: %v, want a --hub-key-file setting error", err)
	}
}

// syncBuffer is a log a server writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}
