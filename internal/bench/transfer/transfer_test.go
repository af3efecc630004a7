package transfer

// The whole run, a real `tryst serve` as the relay included, is
// TestBenchTransfer in the integration package, against the built binary.

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/proc"
)

func TestBenchTransferTable(t *testing.T) {
	res := Result{RTT: (50 * time.Millisecond).String(), Chunk: 16 << 10, Repeats: 1, Results: []ScenarioResult{
		{Scenario: scRaw, Bytes: 1 << 20, Seconds: []float64{0.01}, MBps: 100},
		{Scenario: scTryst, Bytes: 1 << 20, Seconds: []float64{0.011}, MBps: 95, VsRaw: 0.95},
		{Scenario: scTrystRelay, Bytes: 1 << 20, Seconds: []float64{0.02}, MBps: 50, VsDirect: 0.53},
		{Scenario: scTrystRTT, Bytes: 1 << 20, Seconds: []float64{0.04}, MBps: 25, HashSeconds: []float64{0.001}},
	}}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{">= 90% of raw: met", ">= 70% of direct: NOT MET", ">= 20 MB/s: met", "95%", "53%",
		"tryst-rtt: SendFile hashed the file in 0.00 s"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestWriteTable pins the table's layout, which docs/BENCHMARKS.md quotes.
func TestWriteTable(t *testing.T) {
	res := Result{RTT: "50ms", Chunk: 16384, Repeats: 2, PeerCPUs: []int{0}, RelayCPUs: []int{1}, Results: []ScenarioResult{
		{Scenario: scRaw, Bytes: 256 << 20, Seconds: []float64{1, 2}, MBps: 178.9},
		{Scenario: scTrystPinned, Bytes: 256 << 20, Seconds: []float64{2, 2}, HashSeconds: []float64{0.5, 0.7}, MBps: 134.2, VsRaw: 0.75},
		{Scenario: scTrystRelay, Bytes: 256 << 20, Seconds: []float64{}, VsDirect: 0.8},
	}}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	want := `tryst bench transfer: 16384-byte chunks, 2 rounds, emulated RTT 50ms; MB = 10^6 bytes
relay: ` + "`tryst serve`" + ` process on CPU [1]; peers on CPU [0] for -relay and -pinned, every CPU otherwise;
relayed compared with -pinned (direct, same CPUs)
MB/s is the median run; ratios are medians of per-round ratios

scenario          size    MB/s      min..max  vs raw vs direct  target
raw            256 MiB   178.9  134.2..268.4       -         -  
tryst-pinned   256 MiB   134.2  134.2..134.2     75%         -  
tryst-relay    256 MiB     0.0             -       -       80%  >= 70% of direct: met

tryst-pinned: SendFile hashed the file in 0.60 s before each transfer (median, 447 MB/s; not included above)
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	res.PeerCPUs, res.RelayCPUs = nil, nil
	out.Reset()
	_ = res.WriteTable(&out)
	if !strings.Contains(out.String(), "relay: `tryst serve` process sharing every CPU with the peers") {
		t.Errorf("unisolated layout:\n%s", out.String())
	}
}

func TestPairedRatio(t *testing.T) {
	raw := &ScenarioResult{Bytes: 100, Seconds: []float64{1, 2, 4}}
	tryst := &ScenarioResult{Bytes: 100, Seconds: []float64{2, 2, 2}}
	// Per round 0.5, 1 and 2: the median is 1.
	if got := pairedRatio(tryst, raw); got != 1 {
		t.Errorf("paired ratio %v, want 1", got)
	}
	tryst.Seconds = []float64{1.25, 2.5, 5}
	if got := pairedRatio(tryst, raw); got != 0.8 {
		t.Errorf("paired ratio %v, want 0.8", got)
	}
	if pairedRatio(tryst, nil) != 0 || pairedRatio(tryst, &ScenarioResult{Seconds: []float64{1}}) != 0 {
		t.Error("ratio without a matching baseline")
	}
}

func TestRunScenarios(t *testing.T) {
	for _, tc := range []struct {
		selected []string
		isolated bool
		want     []string
	}{
		{Scenarios, true, []string{scRaw, scTryst, scRawPinned, scTrystPinned, scRawRelay, scTrystRelay, scRawRTT, scTrystRTT}},
		{Scenarios, false, []string{scRaw, scTryst, scRawRelay, scTrystRelay, scRawRTT, scTrystRTT}},
		{[]string{scConnect, scConnectRelay}, true, nil},
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

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Executable = "tryst"
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for name, change := range map[string]func(*Config){
		"no size":          func(c *Config) { c.SizeMiB = 0 },
		"huge rtt size":    func(c *Config) { c.RTTSizeMiB = 1 << 20 },
		"no repeats":       func(c *Config) { c.Repeats = 0 },
		"no connects":      func(c *Config) { c.Connects = 0 },
		"many connects":    func(c *Config) { c.Connects = 1001 },
		"small chunk":      func(c *Config) { c.Chunk = 100 },
		"no rtt":           func(c *Config) { c.RTT = 0 },
		"no timeout":       func(c *Config) { c.Timeout = 0 },
		"unknown scenario": func(c *Config) { c.Scenarios = []string{scRaw, "bogus"} },
		"pinned selected":  func(c *Config) { c.Scenarios = []string{scRawPinned} },
		"no scenario":      func(c *Config) { c.Scenarios = nil },
		"no executable":    func(c *Config) { c.Executable = "" },
	} {
		c := good
		change(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "bench transfer: ") {
			t.Errorf("%s: %q does not say which command", name, err)
		}
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%s: Run accepted it", name)
		}
	}
}

// TestCPULayout: the peers move to their CPUs for a pinned scenario, get
// every CPU back for the others, and the process has them all once the
// layout is released, as after a run.
func TestCPULayout(t *testing.T) {
	cpus, err := proc.CPUs()
	l, lerr := newCPULayout(true)
	if err != nil || len(cpus) < 2 {
		// Not isolated: nothing moves.
		if lerr == nil || l.isolated() || l.forScenario(true) != nil || l.release() != nil {
			t.Errorf("CPUs %v (%v): layout %+v, %v", cpus, err, l, lerr)
		}
		return
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	defer l.release()
	if len(l.relay) != 1 || len(l.peers) != len(cpus)-1 || slices.Contains(l.peers, l.relay[0]) {
		t.Errorf("CPU layout: peers %v, relay %v on CPUs %v", l.peers, l.relay, cpus)
	}
	if err := l.forScenario(true); err != nil {
		t.Fatal(err)
	}
	if now, err := proc.CPUs(); err != nil || !slices.Equal(now, l.peers) {
		t.Errorf("pinned: on CPUs %v %v, want %v", now, err, l.peers)
	}
	if err := l.forScenario(false); err != nil {
		t.Fatal(err)
	}
	if now, err := proc.CPUs(); err != nil || !slices.Equal(now, cpus) {
		t.Errorf("unpinned: on CPUs %v %v, want %v", now, err, cpus)
	}
	_ = l.forScenario(true)
	if err := l.release(); err != nil {
		t.Fatal(err)
	}
	// The process got every CPU back.
	if after, err := proc.CPUs(); err != nil || !slices.Equal(after, cpus) {
		t.Errorf("CPUs after release: %v %v, want %v", after, err, cpus)
	}
	if unpinned, _ := newCPULayout(false); unpinned.isolated() {
		t.Error("isolated without IsolateRelay")
	}
}

// TestRelayEnv: the relay gets the benchmark's TURN secret through its
// environment, in place of any it had.
func TestRelayEnv(t *testing.T) {
	env := relayEnv([]string{"HOME=/root", "TRYST_TURN_SECRET=old", "TRYST_PASSWORD=x"}, "new")
	want := []string{"HOME=/root", "TRYST_PASSWORD=x", "TRYST_TURN_SECRET=new"}
	if !slices.Equal(env, want) {
		t.Errorf("relayEnv = %q, want %q", env, want)
	}
}

// TestRelayThatFails: a relay that exits without reporting its addresses
// fails the start at once (the ready pipe ends), with its exit status.
func TestRelayThatFails(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Executable = "false"
	cfg.IsolateRelay = false
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Run(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "did not report its addresses") || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with a relay that exits: %v", err)
	}
}
