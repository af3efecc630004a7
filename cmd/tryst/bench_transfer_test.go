package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestBenchTransfer runs every scenario with tiny sizes: the numbers mean
// nothing here, the point is that each path connects, transfers, verifies
// and shuts down without leaking.
func TestBenchTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	args := []string{"--size", "2", "--rtt-size", "1", "--rtt", "10ms", "--repeats", "1", "--json"}
	if err := runBenchTransfer(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("runBenchTransfer: %v\n%s", err, errOut.String())
	}
	var got struct {
		Results []transferResult `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(got.Results) != len(allTransferScenarios) {
		t.Fatalf("%d results, want %d:\n%s", len(got.Results), len(allTransferScenarios), out.String())
	}
	for i, r := range got.Results {
		if r.Scenario != allTransferScenarios[i] || len(r.Seconds) != 1 || r.MBps <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
		if want := int64(2 << 20); r.Scenario != scRawRTT && r.Scenario != scTrystRTT && r.Bytes != want {
			t.Errorf("%s: %d bytes, want %d", r.Scenario, r.Bytes, want)
		}
		if r.Scenario == scTryst && r.VsRaw <= 0 {
			t.Errorf("tryst: no ratio against raw")
		}
	}
	t.Log("\n" + out.String())
}

func TestBenchTransferTable(t *testing.T) {
	rs := []transferResult{
		{Scenario: scRaw, Bytes: 1 << 20, MBps: 100},
		{Scenario: scTryst, Bytes: 1 << 20, MBps: 95, VsRaw: 0.95},
		{Scenario: scTrystRelay, Bytes: 1 << 20, MBps: 50},
		{Scenario: scTrystRTT, Bytes: 1 << 20, MBps: 25},
	}
	var out bytes.Buffer
	printBenchTransfer(&out, benchTransferConfig{chunk: 16 << 10, repeats: 3, rtt: 50 * time.Millisecond}, rs)
	for _, want := range []string{">= 90% of raw: met", ">= 70% of tryst direct (53%): NOT MET", ">= 20 MB/s: met", "95%"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
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
		if err := runBenchTransfer(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
