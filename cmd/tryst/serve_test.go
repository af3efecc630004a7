package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/hub"
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
	if c.listen != ":8080" || c.metricsListen != "127.0.0.1:9464" || c.turnListen != ":3478" || c.turnTTL != 10*time.Minute {
		t.Errorf("defaults: listen %q metrics %q turn %q ttl %v", c.listen, c.metricsListen, c.turnListen, c.turnTTL)
	}
	b, err := c.build(env(nil), io.Discard)
	if err != nil {
		t.Fatalf("defaults do not build: %v", err)
	}
	if !b.generated || len(b.turnSecrets) != 1 {
		t.Error("no secret was generated when none was given")
	}
	// The flags the issue, the tests and the docs rely on exist.
	names := strings.Join(settingNames(serveFlags(&serveConfig{})), " ")
	for _, want := range []string{"listen", "metrics-listen", "turn-listen", "turn-secret-file", "public-ip", "realm",
		"turn-ttl", "allow-loopback-peers", "origin", "log-format", "log-level", "config", "token-secret-file"} {
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
		{"listen (flag beats env and file)", c.listen, "127.0.0.1:1003"},
		{"realm (env beats file)", c.realm, "from-env"},
		{"turn-ttl (file beats default)", c.turnTTL.String(), "3m0s"},
		{"room-ttl (env)", c.roomTTL.String(), "1m30s"},
		{"origin (file list)", c.origins.String(), "a.example,b.example"},
		{"metrics-listen (default)", c.metricsListen, "127.0.0.1:9464"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// TRYST_CONFIG names the file too.
	c, err = parseServe(nil, env(map[string]string{"TRYST_CONFIG": file}), io.Discard)
	if err != nil || c.realm != "from-file" {
		t.Errorf("TRYST_CONFIG: realm %q, err %v", c.realm, err)
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
		{"frobnicate"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, io.Discard, io.Discard)
		code := exitCode(err, &stderr)
		if code != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, code, err)
		}
		if lines := strings.Count(stderr.String(), "\n"); lines != 1 {
			t.Errorf("%v: %d lines of error output: %q", args, lines, stderr.String())
		}
	}
}

func TestSecretFromEnvironmentAndFile(t *testing.T) {
	c, _ := parseServe(nil, env(nil), io.Discard)
	b, err := c.build(env(map[string]string{"TRYST_TURN_SECRET": "s3cret-from-env"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if b.generated || string(b.turnSecrets[0]) != "s3cret-from-env" {
		t.Errorf("env secret not used: %q", b.turnSecrets)
	}
	f := filepath.Join(t.TempDir(), "secrets")
	os.WriteFile(f, []byte("# rotated 2026-11\nnew-secret\nold-secret\n"), 0o600)
	c, _ = parseServe([]string{"--turn-secret-file", f}, env(nil), io.Discard)
	b, err = c.build(env(map[string]string{"TRYST_TURN_SECRET": "ignored"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.turnSecrets) != 2 || string(b.turnSecrets[0]) != "new-secret" {
		t.Errorf("file secrets = %q", b.turnSecrets)
	}
}

// buildBinary compiles tryst with a stamped version.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tryst")
	cmd := exec.Command("go", "build", "-race", "-ldflags", "-X main.version=v0.0.0-test", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// TestServeProcess runs the real binary: it answers /healthz, /metrics and
// the hub protocol, keeps the secret out of argv and logs, and shuts down
// gracefully on SIGTERM.
func TestServeProcess(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "tryst v0.0.0-test ") {
		t.Fatalf("version: %q %v", out, err)
	}

	const secret = "a-secret-that-must-not-leak"
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--turn-listen", "127.0.0.1:0", "--log-format", "json", "--drain-timeout", "5s")
	cmd.Env = append(os.Environ(), "TRYST_TURN_SECRET="+secret)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var logs bytes.Buffer
	sc := bufio.NewScanner(stderr)
	var ready struct {
		Hub, Metrics, TurnUDP string
	}
	for sc.Scan() {
		logs.Write(sc.Bytes())
		logs.WriteByte('\n')
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "tryst serving" {
			ready.Hub, _ = line["hub"].(string)
			ready.Metrics, _ = line["metrics"].(string)
			ready.TurnUDP, _ = line["turn_udp"].(string)
			break
		}
	}
	if ready.Hub == "" {
		t.Fatalf("server did not start:\n%s", logs.String())
	}
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		for sc.Scan() {
			logs.Write(sc.Bytes())
			logs.WriteByte('\n')
		}
	}()

	get := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		return string(b)
	}
	if got := get(ready.Hub + "/healthz"); got != "ok\n" {
		t.Errorf("healthz %q", got)
	}
	var ice hub.ICEConfig
	json.Unmarshal([]byte(get(ready.Hub+"/v1/ice")), &ice)
	_, turnPort, _ := strings.Cut(ready.TurnUDP, "127.0.0.1:")
	if len(ice.Servers) != 2 || !strings.Contains(strings.Join(ice.Servers[1].URLs, " "), "turn:127.0.0.1:"+turnPort+"?transport=udp") || ice.Servers[1].Username == "" {
		t.Errorf("ICE servers %+v do not point at the TURN port %s", ice, turnPort)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ready.Hub, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"create"}`))
	_, b, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(b), `"type":"created"`) {
		t.Fatalf("create: %s %v", b, err)
	}

	m := get(ready.Metrics)
	for _, want := range []string{`tryst_build_info{goversion="go`, `version="v0.0.0-test"} 1`, "tryst_hub_connections 1",
		"tryst_hub_rooms 1", "tryst_turn_allocations 0", "process_resident_memory_bytes", "go_goroutines",
		`tryst_hub_messages_total{type="create"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// SIGTERM: the client is told to reconnect, the process exits 0.
	cmd.Process.Signal(syscall.SIGTERM)
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("client saw %v on shutdown, want 1001", err)
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Errorf("exit after SIGTERM: %v", err)
	}
	<-logsDone
	if strings.Contains(logs.String(), secret) {
		t.Error("the TURN secret appears in the logs")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", logs.String())
	}
}

// TestREADMEListsEveryFlag keeps the README's flags table in step with the code.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range settingNames(serveFlags(&serveConfig{})) {
		if !strings.Contains(string(readme), "`--"+name+"`") {
			t.Errorf("README.md does not document --%s", name)
		}
	}
}

// TestSecretReload rotates the TURN secret the way an operator does: new
// secret on the first line, then SIGHUP (here: the handler it runs).
func TestSecretReload(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secrets")
	os.WriteFile(f, []byte("old-secret-0123456789\n"), 0o600)
	s := startServe(t, nil, "--turn-secret-file", f)
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
	s.reloadSecrets()
	if !signedBy("new-secret-0123456789") {
		t.Error("after reload, credentials are not signed with the new first secret")
	}
	// A broken file keeps the current secrets.
	os.WriteFile(f, []byte("\n# nothing\n"), 0o600)
	s.reloadSecrets()
	if !signedBy("new-secret-0123456789") {
		t.Error("a bad secrets file replaced the secrets")
	}
}

// TestPortInUse: a taken port is a clear error, with everything opened so
// far closed again (no panic, no leaked listener).
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := parseServe([]string{"--listen", ln.Addr().String(), "--metrics-listen", "127.0.0.1:0",
		"--turn-listen", "127.0.0.1:0", "--log-level", "error"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.build(env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startServer(c, b); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a used port: %v", err)
	}
}

// startServe runs `tryst serve` in-process with every listener on
// 127.0.0.1:0, then args (a later flag wins), and environ as the
// environment; it stops when the test ends.
func startServe(t *testing.T, environ map[string]string, args ...string) *server {
	t.Helper()
	all := append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--turn-listen", "127.0.0.1:0", "--turn-tls-listen", "127.0.0.1:0", "--log-level", "error"}, args...)
	c, err := parseServe(all, env(environ), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.build(env(environ), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(c, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.shutdown(5 * time.Second) })
	return s
}
