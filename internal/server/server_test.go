package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// testConfig is DefaultConfig on loopback ports the kernel picks, with a
// known TURN secret and one relay socket.
func testConfig() Config {
	c := DefaultConfig()
	c.Listen, c.MetricsListen, c.TURNListen, c.TURNTLSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.TURNSecret = "server-test-secret-0123"
	c.TURNSockets = 1
	c.DrainDelay = 0 // TestDrain sets its own
	return c
}

// start runs a Server from cfg until the test ends.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, s.Run)
	return s
}

func get(t *testing.T, url string) string {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return string(b)
}

// TestServe: the hub, metrics and relay answer on the addresses Addrs
// reports.
func TestServe(t *testing.T) {
	s := start(t, testConfig())
	a := s.Addrs()
	if !strings.HasPrefix(a.Hub, "http://127.0.0.1:") || !strings.HasPrefix(a.Metrics, "http://127.0.0.1:") ||
		!strings.HasSuffix(a.Metrics, "/metrics") || a.TURNTLS != "" {
		t.Errorf("addresses %+v", a)
	}
	if got := get(t, a.Hub+"/healthz"); got != "ok\n" {
		t.Errorf("healthz %q", got)
	}
	if m := get(t, a.Metrics); !strings.Contains(m, `tryst_build_info{goversion="go`) || !strings.Contains(m, "tryst_turn_allocations_limit 10000") {
		t.Errorf("metrics lack build info or the allocation cap:\n%s", m)
	}
	for _, addr := range []string{a.TURNUDP, a.TURNTCP} {
		if _, _, err := net.SplitHostPort(addr); err != nil || strings.HasSuffix(addr, ":0") {
			t.Errorf("TURN address %q", addr)
		}
	}
}

// TestShutdownIdempotent: Shutdown and Close may be called again and in any
// order, each waits for the server's goroutines, and nothing is left
// running; Run after them refuses at once.
func TestShutdownIdempotent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	get(t, s.Addrs().Hub+"/healthz")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-ran; err != nil {
		t.Errorf("Run after Shutdown elsewhere: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
	if err := s.Run(ctx); !errors.Is(err, errClosed) {
		t.Errorf("Run after Shutdown: %v", err)
	}
	// The ports are free again.
	for _, addr := range []string{testenv.HostPort(t, s.Addrs().Hub), testenv.HostPort(t, s.Addrs().Metrics), s.Addrs().TURNTCP} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still taken: %v", addr, err)
			continue
		}
		ln.Close()
	}

	// Never run: Close alone releases everything, twice.
	s, err = New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestPortInUse: a taken port is a clear error, with everything opened so
// far closed again (no panic, no leaked listener: TestMain's goleak).
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Listen = ln.Addr().String()
	s, err := New(cfg)
	if err == nil {
		s.Close()
	}
	var se *SettingError
	if err == nil || !strings.Contains(err.Error(), "address already in use") || errors.As(err, &se) {
		t.Fatalf("start on a used port: %v", err)
	}
}

// TestTURNSecretSources: the file wins over TURNSecret; with neither, a
// random secret is generated for the run (and Run says so).
func TestTURNSecretSources(t *testing.T) {
	cfg := testConfig()
	cfg.TURNSecret = ""
	p, err := cfg.prepare()
	if err != nil {
		t.Fatal(err)
	}
	if !p.generated || len(p.turn.Secrets) != 1 || len(p.turn.Secrets[0]) < 16 {
		t.Errorf("no secret was generated when none was given: %d secrets", len(p.turn.Secrets))
	}

	cfg.TURNSecret = "s3cret-from-env-0123"
	if p, err = cfg.prepare(); err != nil {
		t.Fatal(err)
	}
	if p.generated || string(p.turn.Secrets[0]) != "s3cret-from-env-0123" {
		t.Errorf("TURNSecret not used: %q", p.turn.Secrets)
	}

	f := filepath.Join(t.TempDir(), "secrets")
	os.WriteFile(f, []byte("# rotated 2026-11\nnew-secret-0123456789\nold-secret-0123456789\n"), 0o600)
	cfg.TURNSecretFile, cfg.TURNSecret = f, "ignored"
	if p, err = cfg.prepare(); err != nil {
		t.Fatal(err)
	}
	if p.generated || len(p.turn.Secrets) != 2 || string(p.turn.Secrets[0]) != "new-secret-0123456789" {
		t.Errorf("file secrets = %q", p.turn.Secrets)
	}
}

// TestComponentConfigs: the relay's credential, per-IP and data-plane
// settings and the hub's credential budget reach turnserver.Config and
// hub.Config, at their defaults and changed.
func TestComponentConfigs(t *testing.T) {
	p, err := testConfig().prepare()
	if err != nil {
		t.Fatal(err)
	}
	if tc := p.turn; tc.MaxCredentialTTL != 24*time.Hour || tc.AllocationsPerIP != 64 || tc.DisableDataPlane {
		t.Errorf("defaults: max credential ttl %v, per IP %d, data plane off %v", tc.MaxCredentialTTL, tc.AllocationsPerIP, tc.DisableDataPlane)
	}
	if hc := p.hub; hc.CredentialBurst != 30 || hc.CredentialRate != rate.Every(2*time.Second) {
		t.Errorf("defaults: hub credential budget %d, %v/s", hc.CredentialBurst, hc.CredentialRate)
	}
	cfg := testConfig()
	cfg.TURNMaxCredentialTTL, cfg.TURNAllocationsPerIP, cfg.TURNDisableDataPlane = 2*time.Hour, -1, true
	cfg.CredentialsPerIP, cfg.CredentialRefill = -1, 10*time.Second
	if p, err = cfg.prepare(); err != nil {
		t.Fatal(err)
	}
	if tc := p.turn; tc.MaxCredentialTTL != 2*time.Hour || tc.AllocationsPerIP != -1 || !tc.DisableDataPlane {
		t.Errorf("changed: max credential ttl %v, per IP %d, data plane off %v", tc.MaxCredentialTTL, tc.AllocationsPerIP, tc.DisableDataPlane)
	}
	if hc := p.hub; hc.CredentialBurst != -1 || hc.CredentialRate != rate.Every(10*time.Second) {
		t.Errorf("changed: hub credential budget %d, %v/s", hc.CredentialBurst, hc.CredentialRate)
	}
}

// TestSettingErrorsBeforeListening: every setting error is a *SettingError
// from New, returned before it opens anything: every address is a port the
// test holds, so a listener opened first would fail with "address already
// in use" instead. (cmd/tryst's TestSettingErrorsFailBuild checks the
// messages, flag by flag.)
func TestSettingErrorsBeforeListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	if pc, err := net.ListenPacket("udp", taken); err == nil {
		defer pc.Close()
	}
	for _, mod := range []func(*Config){
		func(c *Config) { c.TURNTTL = time.Second },
		func(c *Config) { c.TURNSecret = "hunter2" },
		func(c *Config) { c.TLSCert = "x.pem" },
		func(c *Config) { c.TURNSockets = 1000 },
		func(c *Config) { c.DrainTimeout = 0 },
		func(c *Config) { c.TURNRelayPortMin = 0 }, // caught by turnserver's Validate
	} {
		cfg := testConfig()
		cfg.Listen, cfg.MetricsListen, cfg.TURNListen, cfg.TURNTLSListen = taken, taken, taken, taken
		mod(&cfg)
		s, err := New(cfg)
		if s != nil {
			s.Close()
		}
		var se *SettingError
		if !errors.As(err, &se) || se.Setting == "" {
			t.Errorf("New: %v, want a *SettingError", err)
		}
		if verr := cfg.Validate(); verr == nil || verr.Error() != err.Error() {
			t.Errorf("Validate: %v, New: %v", verr, err)
		}
	}
}

// TestSecretFileModeWarning: a secrets file readable by group or others is
// served, with a warning naming the file and its mode but not the secret.
func TestSecretFileModeWarning(t *testing.T) {
	dir := t.TempDir()
	const secret = "group-readable-secret-0123456789"
	for _, flagName := range []string{"turn-secret-file", "token-secret-file"} {
		for _, mode := range []os.FileMode{0o600, 0o400, 0o640, 0o604} {
			f := filepath.Join(dir, fmt.Sprintf("%s-%o", flagName, mode))
			if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			// Explicitly: WriteFile's mode passes through the umask.
			if err := os.Chmod(f, mode); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			if flagName == "turn-secret-file" {
				cfg.TURNSecretFile = f
			} else {
				cfg.TokenSecretFile = f
			}
			var logs bytes.Buffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if _, err := cfg.prepare(); err != nil {
				t.Fatalf("--%s with mode %o: %v", flagName, mode, err)
			}
			warned := strings.Contains(logs.String(), "level=WARN")
			if want := mode&0o077 != 0; warned != want {
				t.Errorf("--%s mode %#o: warned %v, want %v: %s", flagName, mode, warned, want, logs.String())
				continue
			}
			if warned {
				for _, m := range []string{f, fmt.Sprintf("%#o", mode), "--" + flagName} {
					if !strings.Contains(logs.String(), m) {
						t.Errorf("warning %q does not mention %q", logs.String(), m)
					}
				}
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the log shows the secret: %s", logs.String())
			}
		}
	}
}

// TestSecretReload rotates the TURN secret the way an operator does: new
// secret on the first line, then SIGHUP (here: Reload, which it runs).
func TestSecretReload(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secrets")
	os.WriteFile(f, []byte("old-secret-0123456789\n"), 0o600)
	cfg := testConfig()
	cfg.TURNSecretFile = f
	s := start(t, cfg)
	signedBy := func(secret string) bool {
		user, pass, _ := s.turn.Credential("x")
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(user))
		return pass == base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	if !signedBy("old-secret-0123456789") {
		t.Fatal("credentials not signed with the configured secret")
	}
	os.WriteFile(f, []byte("new-secret-0123456789\nold-secret-0123456789\n"), 0o600)
	s.Reload()
	if !signedBy("new-secret-0123456789") {
		t.Error("after reload, credentials are not signed with the new first secret")
	}
	// A broken file keeps the current secrets.
	os.WriteFile(f, []byte("\n# nothing\n"), 0o600)
	s.Reload()
	if !signedBy("new-secret-0123456789") {
		t.Error("a bad secrets file replaced the secrets")
	}
}

// TestDrain: told to stop, the server first looks unready for DrainDelay
// while it still accepts connections (/readyz 503, WebSockets 503
// draining, keep-alive connections and members served), then asks the
// members to reconnect (1001), and Run returns once they are gone.
func TestDrain(t *testing.T) {
	cfg := testConfig()
	cfg.DrainDelay = time.Hour
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan time.Time)
	s.delay = func(d time.Duration) (<-chan time.Time, func() bool) {
		if d != time.Hour {
			t.Errorf("drain delay %v, want 1h", d)
		}
		close(started)
		return release, func() bool { return true }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	hub := s.Addrs().Hub
	wsURL := "ws" + strings.TrimPrefix(hub, "http") + "/v1/ws"

	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	member, _, err := websocket.Dial(wctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer member.CloseNow()
	roundTrip := func(frame string) string {
		t.Helper()
		if err := member.Write(wctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		_, b, err := member.Read(wctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := roundTrip(`{"type":"create","version":3}`); !strings.Contains(got, `"created"`) {
		t.Fatalf("create: %s", got)
	}
	keepAlive := &http.Transport{MaxIdleConnsPerHost: 1}
	defer keepAlive.CloseIdleConnections()
	status := func(tr *http.Transport, path string) (int, string) {
		t.Helper()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(hub + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := status(keepAlive, "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before the drain: %d", code)
	}

	cancel()
	select {
	case <-started:
	case err := <-ran:
		t.Fatalf("Run returned without a drain delay: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the drain delay did not start")
	}
	// The kept-alive connection and a new one are both served.
	for _, tr := range []*http.Transport{keepAlive, {}} {
		if code, body := status(tr, "/readyz"); code != http.StatusServiceUnavailable || body != "draining\n" {
			t.Errorf("readyz while draining: %d %q, want 503 draining", code, body)
		}
		if code, _ := status(tr, "/healthz"); code != http.StatusOK {
			t.Errorf("healthz while draining: %d", code)
		}
	}
	_, resp, err := websocket.Dial(wctx, wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WebSocket while draining: %v, want 503", err)
	} else if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), `"code":"draining"`) {
		t.Errorf("WebSocket refusal %s, want code draining", b)
	}
	// The member is still served.
	if got := roundTrip(`{"type":"sync"}`); !strings.Contains(got, "unknown_type") {
		t.Errorf("member while draining got %s", got)
	}

	close(release)
	if _, _, err := member.Read(wctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("member after the delay: %v, want 1001", err)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
}
