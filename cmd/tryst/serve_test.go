package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/server"
	"github.com/tryst-chat/tryst/internal/settings"
	"github.com/tryst-chat/tryst/internal/testenv"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestServeDefaults(t *testing.T) {
	c, err := parseServe(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.MetricsListen != "127.0.0.1:9464" || c.TURNListen != ":3478" || c.TURNTTL != 10*time.Minute {
		t.Errorf("defaults: listen %q metrics %q turn %q ttl %v", c.Listen, c.MetricsListen, c.TURNListen, c.TURNTTL)
	}
	cfg, err := c.config(env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not build: %v", err)
	}
	// No secret given: the server generates one (internal/server's
	// TestGeneratedSecret), so none may come from elsewhere.
	if cfg.TURNSecret != "" || cfg.TURNSecretFile != "" {
		t.Errorf("a TURN secret from nowhere: %q %q", cfg.TURNSecret, cfg.TURNSecretFile)
	}
	// The flags the issue, the tests and the docs rely on exist.
	names := strings.Join(settings.Names(serveFlags(newServeOptions())), " ")
	for _, want := range []string{"listen", "metrics-listen", "turn-listen", "turn-secret-file", "public-ip", "realm",
		"turn-ttl", "allow-loopback-peers", "origin", "log-format", "log-level", "config", "token-secret-file",
		"turn-max-credential-ttl", "turn-allocations-per-ip", "turn-dataplane"} {
		if !strings.Contains(" "+names+" ", " "+want+" ") {
			t.Errorf("flag --%s missing", want)
		}
	}
}

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tryst.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1001\nrealm: from-file\nturn-ttl: 3m\norigin:\n  - a.example\n  - b.example\nroom-ttl: 2m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseServe([]string{"--config", file, "--listen", "127.0.0.1:1003"}, env(map[string]string{
		"TRYST_LISTEN":   "127.0.0.1:1002",
		"TRYST_REALM":    "from-env",
		"TRYST_ROOM_TTL": "90s",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"listen (flag beats env and file)", c.Listen, "127.0.0.1:1003"},
		{"realm (env beats file)", c.Realm, "from-env"},
		{"turn-ttl (file beats default)", c.TURNTTL.String(), "3m0s"},
		{"room-ttl (env)", c.RoomTTL.String(), "1m30s"},
		{"origin (file list)", strings.Join(c.Origins, ","), "a.example,b.example"},
		{"metrics-listen (default)", c.MetricsListen, "127.0.0.1:9464"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// TRYST_CONFIG names the file too.
	c, err = parseServe(nil, env(map[string]string{"TRYST_CONFIG": file}), io.Discard)
	if err != nil || c.Realm != "from-file" {
		t.Errorf("TRYST_CONFIG: realm %q, err %v", c.Realm, err)
	}
}

func TestBadSettingsExitTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("no-such-setting: 1\n"), 0o600)
	for _, args := range [][]string{
		{"serve", "--turn-ttl", "5"},
		{"serve", "--turn-ttl", "1s"},
		{"serve", "--listen", "nonsense"},
		{"serve", "--log-format", "xml"},
		{"serve", "--public-ip", "example.com"},
		{"serve", "--turn-allow-peer", "10.0.0.0/99"},
		{"serve", "--turn-relay-ports", "9-3"},
		{"serve", "--turn-secret", "hunter2"}, // secrets never on argv
		{"serve", "hunter2"},
		{"serve", "--config", badYAML},
		{"serve", "--turn-secret-file", filepath.Join(dir, "missing")},
		{"serve", "--tls-cert", "x.pem"},
		{"serve", "--turn-dataplane", "fast"},
		{"serve", "--turn-max-credential-ttl", "1m"},
		{"serve", "--turn-allocations-per-ip", "many"},
		{"frobnicate"},
	} {
		var stderr bytes.Buffer
		err := runIO(context.Background(), args, stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard, getenv: os.LookupEnv})
		code := exitCode(err, &stderr)
		if code != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, code, err)
		}
		if lines := strings.Count(stderr.String(), "\n"); lines != 1 {
			t.Errorf("%v: %d lines of error output: %q", args, lines, stderr.String())
		}
	}
}

// TestSecretFromEnvironmentAndFile: the TURN secret reaches the server
// from TRYST_TURN_SECRET and the file from --turn-secret-file; the server
// prefers the file (internal/server's TestTURNSecretSources).
func TestSecretFromEnvironmentAndFile(t *testing.T) {
	c, _ := parseServe(nil, env(nil), io.Discard)
	cfg, err := c.config(env(map[string]string{"TRYST_TURN_SECRET": "s3cret-from-env-0123"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TURNSecret != "s3cret-from-env-0123" || cfg.TURNSecretFile != "" {
		t.Errorf("env secret not used: %q, file %q", cfg.TURNSecret, cfg.TURNSecretFile)
	}
	f := filepath.Join(t.TempDir(), "secrets")
	os.WriteFile(f, []byte("# rotated 2026-11\nnew-secret-0123456789\nold-secret-0123456789\n"), 0o600)
	environ := env(map[string]string{"TRYST_TURN_SECRET": "ignored"})
	c, _ = parseServe([]string{"--turn-secret-file", f}, environ, io.Discard)
	if cfg, err = c.config(environ, io.Discard); err != nil {
		t.Fatal(err)
	}
	if cfg.TURNSecretFile != f {
		t.Errorf("--turn-secret-file = %q", cfg.TURNSecretFile)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the file's secrets: %v", err)
	}
}

// TestServeRelayLimitFlags: the relay's credential, per-IP and data-plane
// settings reach the server's Config from a flag, the environment and the
// config file alike (internal/server's TestComponentConfigs takes them on to
// turnserver.Config and hub.Config).
func TestServeRelayLimitFlags(t *testing.T) {
	c, err := parseServe(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.config(env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if tc.TURNMaxCredentialTTL != 24*time.Hour || tc.TURNAllocationsPerIP != 64 || tc.TURNDisableDataPlane {
		t.Errorf("defaults: max credential ttl %v, per IP %d, data plane off %v", tc.TURNMaxCredentialTTL, tc.TURNAllocationsPerIP, tc.TURNDisableDataPlane)
	}
	if tc.CredentialsPerIP != 30 || tc.CredentialRefill != 2*time.Second {
		t.Errorf("defaults: hub credential budget %d, one per %v", tc.CredentialsPerIP, tc.CredentialRefill)
	}

	file := filepath.Join(t.TempDir(), "tryst.yaml")
	if err := os.WriteFile(file, []byte("turn-dataplane: \"off\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{"TRYST_TURN_ALLOCATIONS_PER_IP": "-1", "TRYST_CREDENTIAL_REFILL": "10s"}
	c, err = parseServe([]string{"--config", file, "--turn-max-credential-ttl", "2h", "--credentials-per-ip", "-1"}, env(environ), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if tc, err = c.config(env(environ), io.Discard); err != nil {
		t.Fatal(err)
	}
	if tc.TURNMaxCredentialTTL != 2*time.Hour || tc.TURNAllocationsPerIP != -1 || !tc.TURNDisableDataPlane {
		t.Errorf("flag/env/file: max credential ttl %v, per IP %d, data plane off %v", tc.TURNMaxCredentialTTL, tc.TURNAllocationsPerIP, tc.TURNDisableDataPlane)
	}
	if tc.CredentialsPerIP != -1 || tc.CredentialRefill != 10*time.Second {
		t.Errorf("flag/env: hub credential budget %d, one per %v", tc.CredentialsPerIP, tc.CredentialRefill)
	}
	if err := tc.Validate(); err != nil {
		t.Errorf("flag/env/file: %v", err)
	}
}

// settingErrorCases are settings that parse but cannot work. Each must fail
// before server.New opens anything.
func settingErrorCases(t *testing.T) []struct {
	name    string
	args    []string
	environ map[string]string
	mention []string
} {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shortTURN := write("turn-secret", "long-enough-secret-0123\nshort\n")
	shortToken := write("token-secret", "tooshort\n")
	return []struct {
		name    string
		args    []string
		environ map[string]string
		mention []string
	}{
		{"short secret in --turn-secret-file", []string{"--turn-secret-file", shortTURN}, nil,
			[]string{"--turn-secret-file", shortTURN, "secret 2", "16 bytes"}},
		{"short TRYST_TURN_SECRET", nil, map[string]string{"TRYST_TURN_SECRET": "hunter2"},
			[]string{"TRYST_TURN_SECRET", "16 bytes"}},
		{"short secret in --token-secret-file", []string{"--token-secret-file", shortToken}, nil,
			[]string{"--token-secret-file", shortToken, "16 bytes"}},
		{"--turn-max-credential-ttl below --turn-ttl", []string{"--turn-ttl", "1h", "--turn-max-credential-ttl", "30m"}, nil,
			[]string{"--turn-max-credential-ttl", "--turn-ttl"}},
		{"--turn-dataplane neither auto nor off", []string{"--turn-dataplane", "fast"}, nil,
			[]string{"--turn-dataplane", "fast"}},
		{"--turn-allocations-per-ip 0", []string{"--turn-allocations-per-ip", "0"}, nil,
			[]string{"--turn-allocations-per-ip", "-1"}},
		{"--turn-sockets too many", []string{"--turn-sockets", "1000"}, nil, []string{"--turn-sockets"}},
		{"negative --turn-bandwidth", []string{"--turn-bandwidth", "-1"}, nil, []string{"--turn-bandwidth"}},
		{"bad --origin pattern", []string{"--origin", "[x"}, nil, []string{"--origin"}},
		{"--credentials-per-ip 0", []string{"--credentials-per-ip", "0"}, nil, []string{"--credentials-per-ip", "-1"}},
		{"--credential-refill 0", []string{"--credential-refill", "0s"}, nil, []string{"--credential-refill"}},
		{"negative --gc-floor-mib", []string{"--gc-floor-mib", "-1"}, nil, []string{"--gc-floor-mib"}},
	}
}

// TestSettingErrorsFailBuild: every setting error is a usage error (exit
// status 2) naming its source, found by Validate, and by New before it opens
// a single listener: every address is a port the test holds, so a listener
// opened first would fail with "address already in use" instead.
func TestSettingErrorsFailBuild(t *testing.T) {
	taken := takenPort(t)
	for _, tc := range settingErrorCases(t) {
		o, err := parseServe(tc.args, env(tc.environ), io.Discard)
		if err != nil {
			t.Errorf("%s: parse: %v", tc.name, err)
			continue
		}
		cfg, err := o.config(env(tc.environ), io.Discard)
		if err == nil {
			err = cfg.Validate()
		}
		var ue usageError
		var se *server.SettingError
		if !errors.As(err, &ue) && !errors.As(err, &se) {
			t.Errorf("%s: Validate returned %v, want a setting error", tc.name, err)
			continue
		}
		args := append([]string{"--listen", taken, "--metrics-listen", taken, "--turn-listen", taken, "--turn-tls-listen", taken}, tc.args...)
		s, _, err := newServe(args, env(tc.environ), io.Discard)
		if s != nil {
			s.Close()
		}
		if !errors.As(err, &ue) {
			t.Errorf("%s: newServe returned %v, want a usage error", tc.name, err)
			continue
		}
		if code := exitCode(err, io.Discard); code != 2 {
			t.Errorf("%s: exit %d, want 2", tc.name, code)
		}
		for _, m := range tc.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: %q does not mention %q", tc.name, err, m)
			}
		}
		for _, secret := range []string{"short", "tooshort", "hunter2"} {
			if strings.Contains(err.Error(), ": "+secret) {
				t.Errorf("%s: the error shows the secret: %q", tc.name, err)
			}
		}
	}
}

// takenPort returns a loopback address whose TCP and UDP port the test
// holds until it ends.
func takenPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	taken := ln.Addr().String()
	if pc, err := net.ListenPacket("udp", taken); err == nil {
		t.Cleanup(func() { pc.Close() }) // the TURN UDP socket would collide too
	}
	return taken
}

// TestShortSecretExitsTwoBeforeListening runs `tryst serve` in-process with
// a short TURN secret and every address on a port the test holds: had
// anything tried to listen, the error would be "address already in use"
// (exit 1) instead of the usage error.
func TestShortSecretExitsTwoBeforeListening(t *testing.T) {
	taken := takenPort(t)
	for _, tc := range []struct {
		name    string
		args    []string
		environ string
		mention string
	}{
		{"TRYST_TURN_SECRET", nil, "hunter2", "TRYST_TURN_SECRET"},
		{"--turn-secret-file", []string{"--turn-secret-file", filepath.Join(t.TempDir(), "s")}, "", "--turn-secret-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.environ != "" {
				t.Setenv("TRYST_TURN_SECRET", tc.environ)
			} else {
				os.WriteFile(tc.args[1], []byte("hunter2\n"), 0o600)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			start := time.Now()
			err := runIO(ctx, append([]string{"serve", "--listen", taken, "--metrics-listen", taken, "--turn-listen", taken,
				"--turn-tls-listen", taken}, tc.args...),
				stdio{in: strings.NewReader(""), out: io.Discard, err: &stderr, getenv: os.LookupEnv})
			if code := exitCode(err, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr.String())
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to refuse a setting", d)
			}
			if msg := stderr.String(); !strings.Contains(msg, tc.mention) || !strings.Contains(msg, "16 bytes") ||
				strings.Contains(msg, "in use") {
				t.Errorf("message %q: want %s and 16 bytes, and nothing about listening", msg, tc.mention)
			}
		})
	}
}

// TestREADMEListsEveryFlag keeps the README's flags table in step with the code.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range settings.Names(serveFlags(newServeOptions())) {
		if !strings.Contains(string(readme), "`--"+name+"`") {
			t.Errorf("README.md does not document --%s", name)
		}
	}
}

// TestREADMETwoCommands: the README promises two commands, and other tests
// (TestServeREADMECommandInNetns) hold `tryst serve` to the first one.
func TestREADMETwoCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## The two commands\n")
	if !ok {
		t.Fatal(`README.md has no "## The two commands" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var commands []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "    ") {
			commands = append(commands, strings.TrimSpace(line))
		}
	}
	if want := []string{"go run ./cmd/tryst serve", "make test"}; !slices.Equal(commands, want) {
		t.Errorf("the two commands in README.md are %q, want %q", commands, want)
	}
}

// startServe runs `tryst serve` in-process with every listener on
// 127.0.0.1:0, then args (a later flag wins), and environ as the
// environment; it stops when the test ends.
func startServe(t *testing.T, environ map[string]string, args ...string) *server.Server {
	t.Helper()
	all := append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--turn-listen", "127.0.0.1:0", "--turn-tls-listen", "127.0.0.1:0", "--log-level", "error", "--drain-delay", "0"}, args...)
	s, _, err := newServe(all, env(environ), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, s.Run)
	return s
}

// TestProfileContention: off by default; --profile-contention (or
// TRYST_PROFILE_CONTENTION) turns on the runtime's mutex profile.
func TestProfileContention(t *testing.T) {
	before := runtime.SetMutexProfileFraction(-1)
	t.Cleanup(func() {
		runtime.SetMutexProfileFraction(before)
		runtime.SetBlockProfileRate(0)
	})
	o, err := parseServe(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.profile()
	if o.contention || runtime.SetMutexProfileFraction(-1) != before {
		t.Fatal("contention profiles on by default")
	}
	o, err = parseServe(nil, env(map[string]string{"TRYST_PROFILE_CONTENTION": "true"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.profile()
	if got := runtime.SetMutexProfileFraction(-1); got != 5 {
		t.Fatalf("mutex profile fraction %d after TRYST_PROFILE_CONTENTION=true, want 5", got)
	}
}
