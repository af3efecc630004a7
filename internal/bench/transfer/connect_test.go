package transfer

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/internal/teststack"
)

// TestRunConnects makes two connections of each connect scenario through
// an in-process hub and relay: direct selects the host pair although the
// relay works too, relay-only selects the relay. With --pion-waits a
// relay-only connection takes pion's relay wait again. That relay-only
// ICE no longer waits is timed in internal/rtc, without the password's key
// derivation, which under the race detector takes most of a second here.
func TestRunConnects(t *testing.T) {
	st := teststack.Start(t, teststack.Options{})
	env := &stack{hubURL: st.URL}
	cfg := DefaultConfig()
	cfg.Connects = 2
	cfg.Scenarios = []string{scConnectRelay, scConnect, scRaw, scConnectRelayGuest}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := runConnects(ctx, env, cfg, t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Scenario != scConnect || res[1].Scenario != scConnectRelay || res[2].Scenario != scConnectRelayGuest {
		t.Fatalf("results %+v, want connect, connect-relay, connect-relay-guest", res)
	}
	relayWait := rtc.Waits(false).Relay
	for _, r := range res {
		if len(r.Ms) != 2 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: %+v", r.Scenario, r)
		}
	}
	if res[0].Path != "direct (host)" || res[0].VsDirect != 0 {
		t.Errorf("connect: %+v", res[0])
	}
	if res[1].Path != "relay" || res[1].VsDirect != res[1].P50/res[0].P50 {
		t.Errorf("connect-relay: %+v", res[1])
	}
	if res[2].Path != "relay" || res[2].VsDirect != res[2].P50/res[0].P50 {
		t.Errorf("connect-relay-guest: %+v", res[2])
	}
	if st.RelayedBytes() == 0 {
		t.Error("the relay relayed nothing")
	}
	t.Logf("connect p50 %.0f ms, connect-relay p50 %.0f ms, connect-relay-guest p50 %.0f ms", res[0].P50, res[1].P50, res[2].P50)

	cfg.Connects, cfg.Scenarios, cfg.PionWaits = 1, []string{scConnectRelay}, true
	res, err = runConnects(ctx, env, cfg, t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].P50 < float64(relayWait.Milliseconds()) || res[0].VsDirect != 0 {
		t.Errorf("with pion's waits: %+v, want at least the relay wait %v", res, relayWait)
	}
}

func TestConnectTable(t *testing.T) {
	res := Result{PionWaits: true, Connects: []ConnectResult{
		{Scenario: scConnect, Path: "direct (host)", Ms: []float64{100, 120}, P50: 100, P99: 120},
		{Scenario: scConnectRelay, Path: "relay", Ms: []float64{2100, 2200}, P50: 2100, P99: 2200, VsDirect: 21},
	}}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	want := `tryst bench transfer: time to connect, 2 connections each, alternating; pion's acceptance waits on every connection (--pion-waits: as before issue 13)
from the guest's join until both Clients are connected (key confirmed over the data channel)

scenario            path             p50 ms   p99 ms vs direct  target
connect             direct (host)     100.0    120.0         -  
connect-relay       relay            2100.0   2200.0    21.00x  p50 <= 1.2x direct: NOT MET
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	res.Connects[1].VsDirect = 1.1
	res.Results = []ScenarioResult{{Scenario: scRaw, Bytes: 1 << 20, Seconds: []float64{0.01}, MBps: 100}}
	out.Reset()
	_ = res.WriteTable(&out)
	if s := out.String(); !strings.Contains(s, "1.10x  p50 <= 1.2x direct: met") || !strings.Contains(s, "\n\ntryst bench transfer: 0-byte chunks") {
		t.Errorf("table with both parts:\n%s", s)
	}
}
