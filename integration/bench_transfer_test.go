package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/proc"
)

// TestBenchTransfer runs `tryst bench transfer` with tiny sizes and two
// connections per connect scenario: the numbers mean nothing here, the
// point is that each path connects (direct over the host pair, relay-only
// through the relay), transfers, verifies and shuts down, with the built
// binary starting its own `tryst serve` as the relay.
func TestBenchTransfer(t *testing.T) {
	bin := trystBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scenarios := []string{"raw", "tryst", "raw-relay", "tryst-relay", "raw-rtt", "tryst-rtt"}
	cmd := exec.CommandContext(ctx, bin, "bench", "transfer", "--size", "1", "--rtt-size", "1", "--rtt", "10ms",
		"--repeats", "2", "--connects", "2", "--json",
		"--scenarios", strings.Join(append([]string{"connect-relay", "connect"}, scenarios...), ","))
	dieWithTest(cmd)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("tryst bench transfer: %v\n%s", err, errOut.String())
	}
	var got struct {
		PeerCPUs  []int `json:"peer_cpus"`
		RelayCPUs []int `json:"relay_cpus"`
		Connects  []struct {
			Scenario string    `json:"scenario"`
			Path     string    `json:"path"`
			Ms       []float64 `json:"ms"`
			P50      float64   `json:"p50_ms"`
			P99      float64   `json:"p99_ms"`
			VsDirect float64   `json:"vs_direct"`
		} `json:"connects"`
		Results []struct {
			Scenario string    `json:"scenario"`
			Bytes    int64     `json:"bytes"`
			Seconds  []float64 `json:"seconds"`
			MBps     float64   `json:"mb_per_s"`
			VsRaw    float64   `json:"vs_raw"`
			VsDirect float64   `json:"vs_direct"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if c := got.Connects; len(c) != 2 || c[0].Scenario != "connect" || c[0].Path != "direct (host)" ||
		c[1].Scenario != "connect-relay" || c[1].Path != "relay" {
		t.Errorf("connect results: %+v", c)
	} else {
		for _, r := range c {
			if len(r.Ms) != 2 || r.P50 <= 0 || r.P99 < r.P50 {
				t.Errorf("%s: %+v", r.Scenario, r)
			}
		}
		if c[1].VsDirect <= 0 {
			t.Errorf("connect-relay has no ratio: %+v", c[1])
		}
	}
	want := scenarios
	// The benchmark has the CPUs of this process, which started it.
	if cpus, err := proc.CPUs(); err == nil && len(cpus) >= 2 {
		// tryst-relay is compared with tryst on the same CPUs.
		want = []string{"raw", "tryst", "raw-pinned", "tryst-pinned", "raw-relay", "tryst-relay", "raw-rtt", "tryst-rtt"}
		if len(got.RelayCPUs) != 1 || len(got.PeerCPUs) != len(cpus)-1 || slices.Contains(got.PeerCPUs, got.RelayCPUs[0]) {
			t.Errorf("CPU layout: peers %v, relay %v on CPUs %v", got.PeerCPUs, got.RelayCPUs, cpus)
		}
		// That the process gets every CPU back after the run is
		// TestCPULayout in internal/bench/transfer.
	}
	if len(got.Results) != len(want) {
		t.Fatalf("%d results, want %d:\n%s", len(got.Results), len(want), out.String())
	}
	for i, r := range got.Results {
		if r.Scenario != want[i] || len(r.Seconds) != 2 || r.MBps <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
		if want := int64(1 << 20); r.Scenario != "raw-rtt" && r.Scenario != "tryst-rtt" && r.Bytes != want {
			t.Errorf("%s: %d bytes, want %d", r.Scenario, r.Bytes, want)
		}
		if (r.Scenario == "tryst" || r.Scenario == "tryst-rtt") && r.VsRaw <= 0 || strings.HasSuffix(r.Scenario, "-relay") && r.VsDirect <= 0 {
			t.Errorf("%s: ratios missing: %+v", r.Scenario, r)
		}
	}
	t.Log("\n" + out.String())
}
