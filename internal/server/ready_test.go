package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// servingSignal is a log handler that closes serving at the "tryst
// serving" record, which Run logs once the ready file is written.
type servingSignal struct{ serving chan struct{} }

func (h servingSignal) Enabled(context.Context, slog.Level) bool { return true }

func (h servingSignal) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "tryst serving" {
		close(h.serving)
	}
	return nil
}

func (h servingSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h servingSignal) WithGroup(string) slog.Handler      { return h }

// TestReadyFile: --ready-file as a regular file appears complete, replacing
// an older one in one step, with the bound addresses, and leaves no
// temporary file behind.
func TestReadyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ready.json")
	if err := os.WriteFile(path, []byte("left by the last run"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ReadyFile = path
	serving := make(chan struct{})
	cfg.Logger = slog.New(servingSignal{serving})
	s := start(t, cfg)
	select {
	case <-serving:
	case <-time.After(30 * time.Second):
		t.Fatal("not serving after 30 s")
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Addrs
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("ready file %q: %v", data, err)
	}
	if got != s.Addrs() || got.Hub == "" || got.TURNUDP == "" {
		t.Errorf("ready file %+v, addresses %+v", got, s.Addrs())
	}
	var raw map[string]any
	json.Unmarshal(data, &raw)
	if _, ok := raw["turn_tls"]; ok {
		t.Errorf("turn_tls present without TLS: %s", data)
	}
	for _, key := range []string{"hub", "metrics", "turn_udp", "turn_tcp"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("no %q in %s", key, data)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("ready file mode: %v %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the ready file alone", len(entries))
	}
}

// TestReadyFilePipe: --ready-file /dev/fd/N writes into the pipe a parent
// process handed down as fd N, the way bench transfer reads its relay's
// addresses.
func TestReadyFilePipe(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/dev/fd/N of a pipe is tested on Linux")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cfg := testConfig()
	cfg.ReadyFile = fmt.Sprintf("/dev/fd/%d", w.Fd())
	s := start(t, cfg)
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got Addrs
	if err := json.NewDecoder(r).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got != s.Addrs() {
		t.Errorf("read %+v, addresses %+v", got, s.Addrs())
	}
}

// TestReadyFileSetting: a ready file that could never be written is a
// setting error, before anything listens.
func TestReadyFileSetting(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{dir, filepath.Join(dir, "missing", "ready.json")} {
		cfg := testConfig()
		cfg.ReadyFile = path
		var se *SettingError
		if err := cfg.Validate(); !errors.As(err, &se) || se.Setting != "--ready-file" {
			t.Errorf("--ready-file %s: %v", path, err)
		}
	}
}
