package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestBenchFlags: each bench target refuses a bad command line before it
// measures anything, with a usage error where the setting is at fault.
func TestBenchFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("bench-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run   command
		args  []string
		usage bool // exit status 2
	}{
		{runBenchHub, []string{}, true},
		{runBenchHub, []string{"--hub", "ftp://x"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1"}, true}, // mem phase without --metrics
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair,bogus"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair", "--sources", "127.0.0.9-127.0.0.2"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "relay", "--relay-size", "3"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair", "extra"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "abuse"}, true}, // without --metrics
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "abuse", "--metrics", "http://127.0.0.1:2/metrics", "--honest-source", "x"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "abuse", "--metrics", "http://127.0.0.1:2/metrics", "--abuse-offer", "70000"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair", "--ca-file", "/nonexistent"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair", "--ca-file", secret}, true}, // no PEM in it
		{runBenchHub, []string{"--bogus"}, false},
		// bench turn's bad settings are exit status 1, as they always were.
		{runBenchTURN, []string{}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478"}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478", "--secret-file", secret, "--size", "8"}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478", "--secret-file", secret, "--duration", "0s"}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478", "--secret-file", "/nonexistent"}, false},
		{runBenchTURN, []string{"--bogus"}, false},
		{runBenchTransfer, []string{"--size", "0"}, true},
		{runBenchTransfer, []string{"--repeats", "0"}, true},
		{runBenchTransfer, []string{"--chunk", "100"}, true},
		{runBenchTransfer, []string{"--rtt", "0s"}, true},
		{runBenchTransfer, []string{"--scenarios", "raw,bogus"}, true},
		{runBenchTransfer, []string{"extra"}, true},
		{runBenchTransfer, []string{"--bogus"}, false},
	} {
		err := tc.run(context.Background(), tc.args, stdio{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
		if err == nil {
			t.Errorf("%q accepted", tc.args)
			continue
		}
		var ue usageError
		if errors.As(err, &ue) != tc.usage {
			t.Errorf("%q: %v: usage error %v, want %v", tc.args, err, !tc.usage, tc.usage)
		}
	}
}

// TestRelayEnv: the relay ignores the user's serve settings and the TURN
// secret of the environment (the benchmark adds its own).
func TestRelayEnv(t *testing.T) {
	env := relayEnv([]string{"HOME=/root", "TRYST_LISTEN=:80", "TRYST_TURN_SECRET=old", "TRYST_PASSWORD=x", "TRYST_TURN_RELAY_PORTS=1-2"})
	want := []string{"HOME=/root", "TRYST_PASSWORD=x"}
	if !slices.Equal(env, want) {
		t.Errorf("relayEnv = %q, want %q", env, want)
	}
}

// TestRelayArgs: the relay's command line, rendered from relayOptions,
// parses back to them and is a configuration serve accepts.
func TestRelayArgs(t *testing.T) {
	args := relayArgs()
	for _, want := range []string{"--listen=127.0.0.1:0", "--turn-listen=127.0.0.1:0", "--public-ip=127.0.0.1",
		"--allow-loopback-peers=true", "--credentials-per-ip=-1", "--log-format=json", "--ready-file=/dev/fd/3"} {
		if !slices.Contains(args, want) {
			t.Errorf("%s missing from %q", want, args)
		}
	}
	got, err := parseServe(args, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := relayOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("parsed back:\n got  %+v\n want %+v", *got, *want)
	}
	cfg, err := got.config(env(map[string]string{"TRYST_TURN_SECRET": "relay-test-secret-0123456789"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ReadyFile = "" // fd 3 is the child's, not this process's
	if err := cfg.Validate(); err != nil {
		t.Errorf("serve would refuse the relay's settings: %v", err)
	}
}

// TestBenchHubOverTLS: `tryst bench hub` pairs through a hub serving WSS
// with a self-signed certificate once --ca-file names it, and fails
// without it (the system's roots do not know the certificate).
func TestBenchHubOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testenv.WriteCert(t, cert, key, 1)
	s := startServe(t, nil, "--tls-cert", cert, "--tls-key", key,
		"--rooms-per-ip", "-1", "--idle-rooms-per-ip", "-1", "--credentials-per-ip", "-1")
	hub := s.Addrs().Hub
	if !strings.HasPrefix(hub, "https://") {
		t.Fatalf("hub URL %s with --tls-cert; want https://", hub)
	}
	args := []string{"--hub", hub, "--phases", "pair", "--pairings", "10", "--workers", "2", "--timeout", "10s", "--json"}
	ctx := t.Context()
	var out, errOut bytes.Buffer
	std := stdio{out: &out, err: &errOut, getenv: env(nil)}
	if err := runBenchHub(ctx, append(args, "--ca-file", cert), std); err != nil {
		t.Fatalf("bench hub with --ca-file: %v\n%s", err, errOut.String())
	}
	var res struct {
		Pairings struct{ Completed, Failed int } `json:"pairings"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bench hub output: %v\n%s", err, out.String())
	}
	if res.Pairings.Completed != 10 || res.Pairings.Failed != 0 {
		t.Fatalf("pairings over WSS: %+v; want 10 completed", res.Pairings)
	}
	out.Reset()
	err := runBenchHub(ctx, args, std)
	if err == nil {
		err = json.Unmarshal(out.Bytes(), &res)
	}
	if err == nil && res.Pairings.Failed == 0 {
		t.Fatalf("bench hub without --ca-file paired with a self-signed hub: %+v", res.Pairings)
	}
	if err == nil && !strings.Contains(out.String(), "certificate") {
		t.Errorf("the failure does not name the certificate: %s", out.String())
	}
}
