package main

// The engine's own tests are internal/doctor's; these hold the command to
// its flags, its output and its exit status.

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/doctor"
)

// doctorRun runs `tryst doctor args...` in-process and returns its output
// and the status it exits with, with what it tells stderr on exit.
func doctorRun(t *testing.T, args ...string) (out string, status int, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var o, e syncBuffer
	err := runIO(ctx, append([]string{"doctor"}, args...),
		stdio{in: strings.NewReader(""), out: &o, err: &e, getenv: env(nil)})
	var exit bytes.Buffer
	status = exitCode(err, &exit)
	t.Logf("tryst doctor %s: exit %d\n%s%s%s", strings.Join(args, " "), status, o.String(), e.String(), exit.String())
	return o.String(), status, e.String() + exit.String()
}

func TestDoctorFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"--hub", "ftp://x"}, {"--hub", "http://x", "--timeout", "0s"}, {"--hub", "http://x", "extra"},
		{"--hub", "http://x", "--ca-file", filepath.Join(t.TempDir(), "missing")}} {
		if _, status, _ := doctorRun(t, args...); status != 2 {
			t.Errorf("%q: exit %d, want 2 (a usage error)", args, status)
		}
	}
	_, status, stderr := doctorRun(t, "--hub", "http://x", "--token-file", "/nonexistent/token")
	if want := "tryst: doctor: --token-file: open /nonexistent/token: no such file or directory\n"; status != 2 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 2, %q", status, stderr, want)
	}
	_, status, stderr = doctorRun(t, "-h")
	if status != 0 || !strings.HasPrefix(stderr, "Usage: tryst doctor --hub URL [flags]") || !strings.Contains(stderr, "-expect-public") {
		t.Errorf("-h: exit %d\n%s", status, stderr)
	}
}

func TestDoctorPrintResult(t *testing.T) {
	var b bytes.Buffer
	for _, r := range []doctor.Result{
		{Name: "stun", Status: doctor.Pass, Detail: "fine", Hint: "never printed"},
		{Name: "turn-udp", Status: doctor.Fail, Detail: "refused", Hint: "open 3478/udp"},
		{Name: "ice", Status: doctor.Fail, Detail: "odd"},
		{Name: "turn-tls", Status: doctor.Skip, Detail: "no turns: URL"},
	} {
		printDoctorResult(&b, r)
	}
	want := "PASS stun: fine\nFAIL turn-udp: refused\n  hint: open 3478/udp\nFAIL ice: odd\nSKIP turn-tls: no turns: URL\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestDoctorOutput: a healthy local deployment, line by line, exit 0.
func TestDoctorOutput(t *testing.T) {
	s := startServe(t, map[string]string{"TRYST_TURN_SECRET": "doctor-test-secret"}, "--turn-sockets", "1", "--allow-loopback-peers")
	hub := s.Addrs().Hub
	out, status, stderr := doctorRun(t, "--hub", hub)
	if status != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", status, stderr)
	}
	want := []string{
		`checking ` + regexp.QuoteMeta(hub),
		`PASS websocket: ws://.* accepts origin http://.*; room created and left`,
		`PASS ice: stun 127\.0\.0\.1:\d+; turn over udp, tcp as \d+:\w+; ttl 600s`,
		`PASS clock: hub and local clocks agree within .*`,
		`PASS stun: udp 127\.0\.0\.1:\d+ answered in .*: this machine is 127\.0\.0\.1:\d+`,
		`PASS turn-udp: udp 127\.0\.0\.1:\d+: relayed address 127\.0\.0\.1:\d+ \(.*\)`,
		`PASS turn-tcp: tcp 127\.0\.0\.1:\d+: relayed address 127\.0\.0\.1:\d+ \(.*\)`,
		`SKIP turn-tls: the hub offers no turns: URL \(tryst serve offers TURNS with --tls-cert\)`,
		`PASS relay-address: relayed address 127\.0\.0\.1:\d+ \(the hub is on a private or loopback address, so a private relay is expected\)`,
		`PASS round-trip: relay 127\.0\.0\.1:\d+ <-> 127\.0\.0\.1:\d+: round trip .*`,
		``,
		`8 passed, 0 failed, 1 skipped`,
		``,
	}
	lines := strings.Split(out, "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, re := range want {
		if !regexp.MustCompile(`^` + re + `$`).MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %q", i+1, lines[i], re)
		}
	}
}

// TestDoctorFailureOutput: nothing listens at the hub's address; the whole
// output, hints included, and exit status 1.
func TestDoctorFailureOutput(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	out, status, stderr := doctorRun(t, "--hub", addr)
	refused := "  hint: nothing listens there: is tryst serve running, is --listen right, is the port open in the firewall?\n"
	want := "checking http://" + addr + "\n" +
		"FAIL websocket: connect to ws://" + addr + "/v1/ws: connection refused\n" + refused +
		"FAIL ice: GET http://" + addr + "/v1/ice: connection refused\n" + refused
	for _, name := range []string{"clock", "stun", "turn-udp", "turn-tcp", "turn-tls", "relay-address", "round-trip"} {
		want += "SKIP " + name + ": needs the ICE servers from /v1/ice\n"
	}
	want += "\n0 passed, 2 failed, 7 skipped\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if status != 1 || stderr != "tryst: doctor: 2 check(s) failed\n" {
		t.Errorf("exit %d, stderr %q", status, stderr)
	}
}
