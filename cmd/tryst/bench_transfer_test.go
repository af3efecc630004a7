package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/proc"
)

// TestBenchTransfer runs the scenarios with tiny sizes: the numbers mean
// nothing here, the point is that each path connects, transfers, verifies
// and shuts down without leaking. raw-relay is left out to save its two
// seconds of ICE relay-acceptance wait; it differs from raw only in the
// ICE policy that tryst-relay exercises.
func TestBenchTransfer(t *testing.T) {
	t.Setenv(asMainEnv, "1") // the relay is this binary running serve
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	scenarios := []string{scRaw, scTryst, scTrystRelay, scRawRTT, scTrystRTT}
	args := []string{"--size", "1", "--rtt-size", "1", "--rtt", "10ms", "--repeats", "2", "--json",
		"--scenarios", strings.Join(scenarios, ",")}
	if err := runBenchTransfer(ctx, args, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("runBenchTransfer: %v\n%s", err, errOut.String())
	}
	var got struct {
		PeerCPUs  []int            `json:"peer_cpus"`
		RelayCPUs []int            `json:"relay_cpus"`
		Results   []transferResult `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	want := scenarios
	if cpus, err := proc.CPUs(); err == nil && len(cpus) >= 2 {
		// tryst-relay is compared with tryst on the same CPUs.
		want = []string{scRaw, scTryst, scTrystPinned, scTrystRelay, scRawRTT, scTrystRTT}
		if len(got.RelayCPUs) != 1 || len(got.PeerCPUs) != len(cpus)-1 || slices.Contains(got.PeerCPUs, got.RelayCPUs[0]) {
			t.Errorf("CPU layout: peers %v, relay %v on CPUs %v", got.PeerCPUs, got.RelayCPUs, cpus)
		}
		// The process got every CPU back.
		if after, err := proc.CPUs(); err != nil || !slices.Equal(after, cpus) {
			t.Errorf("CPUs after the run: %v %v, want %v", after, err, cpus)
		}
	}
	if len(got.Results) != len(want) {
		t.Fatalf("%d results, want %d:\n%s", len(got.Results), len(want), out.String())
	}
	for i, r := range got.Results {
		if r.Scenario != want[i] || len(r.Seconds) != 2 || r.MBps <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
		if want := int64(1 << 20); r.Scenario != scRawRTT && r.Scenario != scTrystRTT && r.Bytes != want {
			t.Errorf("%s: %d bytes, want %d", r.Scenario, r.Bytes, want)
		}
		if (r.Scenario == scTryst || r.Scenario == scTrystRTT) && r.VsRaw <= 0 || r.Scenario == scTrystRelay && r.VsDirect <= 0 {
			t.Errorf("%s: ratios missing: %+v", r.Scenario, r)
		}
	}
	t.Log("\n" + out.String())
}

func TestBenchTransferTable(t *testing.T) {
	rs := []transferResult{
		{Scenario: scRaw, Bytes: 1 << 20, Seconds: []float64{0.01}, MBps: 100},
		{Scenario: scTryst, Bytes: 1 << 20, Seconds: []float64{0.011}, MBps: 95, VsRaw: 0.95},
		{Scenario: scTrystRelay, Bytes: 1 << 20, Seconds: []float64{0.02}, MBps: 50, VsDirect: 0.53},
		{Scenario: scTrystRTT, Bytes: 1 << 20, Seconds: []float64{0.04}, MBps: 25, HashSeconds: []float64{0.001}},
	}
	var out bytes.Buffer
	printBenchTransfer(&out, benchTransferConfig{chunk: 16 << 10, repeats: 1, rtt: 50 * time.Millisecond}, "layout", rs)
	for _, want := range []string{">= 90% of raw: met", ">= 70% of direct: NOT MET", ">= 20 MB/s: met", "95%", "53%",
		"tryst-rtt: SendFile hashed the file in 0.00 s"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPairedRatio(t *testing.T) {
	raw := &transferResult{Bytes: 100, Seconds: []float64{1, 2, 4}}
	tryst := &transferResult{Bytes: 100, Seconds: []float64{2, 2, 2}}
	// Per round 0.5, 1 and 2: the median is 1.
	if got := pairedRatio(tryst, raw); got != 1 {
		t.Errorf("paired ratio %v, want 1", got)
	}
	tryst.Seconds = []float64{1.25, 2.5, 5}
	if got := pairedRatio(tryst, raw); got != 0.8 {
		t.Errorf("paired ratio %v, want 0.8", got)
	}
	if pairedRatio(tryst, nil) != 0 || pairedRatio(tryst, &transferResult{Seconds: []float64{1}}) != 0 {
		t.Error("ratio without a matching baseline")
	}
}

func TestBenchTransferFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--size", "0"},
		{"--repeats", "0"},
		{"--chunk", "100"},
		{"--rtt", "0s"},
		{"--scenarios", "raw,bogus"},
		{"extra"},
		{"--bogus"},
	} {
		if err := runBenchTransfer(context.Background(), args, stdio{out: &bytes.Buffer{}, err: &bytes.Buffer{}}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestRelayEnv: the relay ignores the user's serve settings and gets the
// TURN secret through its environment only.
func TestRelayEnv(t *testing.T) {
	env := relayEnv([]string{"HOME=/root", "TRYST_LISTEN=:80", "TRYST_TURN_SECRET=old", "TRYST_PASSWORD=x", "TRYST_TURN_RELAY_PORTS=1-2"}, "new")
	want := []string{"HOME=/root", "TRYST_PASSWORD=x", "TRYST_TURN_SECRET=new"}
	if !slices.Equal(env, want) {
		t.Errorf("relayEnv = %q, want %q", env, want)
	}
}

func TestRunScenarios(t *testing.T) {
	for _, tc := range []struct {
		selected []string
		isolated bool
		want     []string
	}{
		{allTransferScenarios, true, []string{scRaw, scTryst, scRawPinned, scTrystPinned, scRawRelay, scTrystRelay, scRawRTT, scTrystRTT}},
		{allTransferScenarios, false, allTransferScenarios},
		{[]string{scTrystRTT, scRawRelay}, true, []string{scRawPinned, scRawRelay, scTrystRTT}},
		{[]string{scTryst}, true, []string{scTryst}},
	} {
		if got := runScenarios(tc.selected, tc.isolated); !slices.Equal(got, tc.want) {
			t.Errorf("runScenarios(%v, %v) = %v, want %v", tc.selected, tc.isolated, got, tc.want)
		}
	}
	if got := relayedBaseline(scTrystRelay, true); got != scTrystPinned {
		t.Errorf("baseline %q", got)
	}
	if got := relayedBaseline(scTrystRelay, false); got != scTryst {
		t.Errorf("baseline %q", got)
	}
}

// TestRelayArgs: the relay's command line, rendered from relayOptions,
// parses back to them and is a configuration serve accepts.
func TestRelayArgs(t *testing.T) {
	args := flagArgs(serveFlags(relayOptions()), serveFlags(newServeOptions()))
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
