package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
)

// startBenchTarget runs a hub and its metrics endpoint on loopback.
func startBenchTarget(t *testing.T) (hubURL, metricsURL string) {
	t.Helper()
	reg, err := metrics.NewRegistry("test")
	if err != nil {
		t.Fatal(err)
	}
	hm, err := metrics.NewHub(reg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Metrics: hm, MaxConnsPerIP: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := newLoopbackServer(t, h)
	msrv := newLoopbackServer(t, metrics.Handler(reg))
	t.Cleanup(func() {
		srv.Close()
		msrv.Close()
		_ = h.Close()
	})
	return srv.URL, msrv.URL + "/metrics"
}

func newLoopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	return srv
}

func TestBenchHub(t *testing.T) {
	// Registered first, so it runs after the servers' cleanup.
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	hubURL, metricsURL := startBenchTarget(t)
	args := []string{"--hub", hubURL, "--metrics", metricsURL, "--json",
		"--conns", "50", "--settle", "0s",
		"--pairings", "20", "--workers", "4",
		// Half the hub's default per-connection message rate (20/s): at the
		// rate itself, timer jitter lets the hub's limiter refuse a frame now
		// and then under load, and Received falls short of Sent.
		"--rooms", "10", "--relay-rate", "10", "--relay-warmup", "100ms", "--relay-duration", "500ms",
		"--server-pid", strconv.Itoa(os.Getpid())}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := runBenchHub(ctx, args, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("runBenchHub: %v\n%s", err, errOut.String())
	}
	t.Log("\n" + out.String())
	var r benchHubResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if p := r.Pair; p == nil || p.Completed != 20 || p.Failed != 0 || p.PerSecond <= 0 || p.P99ms < p.P50ms || p.HubCPU <= 0 {
		t.Errorf("pairings: %+v", p)
	}
	if l := r.Relay; l == nil || l.Rooms != 10 || l.Sent == 0 || l.Received != l.Sent || l.P50ms <= 0 || l.P99ms < l.P50ms {
		t.Errorf("relay: %+v", l)
	}
	if m := r.Mem; m == nil || m.Held != 50 || m.Failed != 0 || m.HubConns != 50 || m.RSSBefore <= 0 || m.RSSAfter <= 0 {
		t.Errorf("memory: %+v", m)
	}
	if len(r.Targets) != 3 {
		t.Errorf("targets: %+v", r.Targets)
	}
}

func TestBenchHubTable(t *testing.T) {
	// Registered first, so it runs after the servers' cleanup.
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	hubURL, _ := startBenchTarget(t)
	// Dialling from 127.0.0.1 explicitly exercises --sources.
	args := []string{"--hub", strings.Replace(hubURL, "http://", "ws://", 1), "--phases", "pair",
		"--pairings", "5", "--workers", "2", "--sources", "127.0.0.1-127.0.0.1"}
	var out bytes.Buffer
	if err := runBenchHub(context.Background(), args, stdio{out: &out, err: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pairings", "pairing time p50/p99", "targets (2-core machine):", "1 source addresses"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchHubFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--hub", "ftp://x"},
		{"--hub", "ws://127.0.0.1:1"}, // mem phase without --metrics
		{"--hub", "ws://127.0.0.1:1", "--phases", "pair,bogus"},
		{"--hub", "ws://127.0.0.1:1", "--phases", "pair", "--sources", "127.0.0.9-127.0.0.2"},
		{"--hub", "ws://127.0.0.1:1", "--phases", "relay", "--relay-size", "3"},
		{"--bogus"},
	} {
		if err := runBenchHub(context.Background(), args, stdio{out: &bytes.Buffer{}, err: &bytes.Buffer{}}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if got, _ := proto.WebSocketURL("http://127.0.0.1:8080/"); got != "ws://127.0.0.1:8080/v1/ws" {
		t.Errorf("WebSocketURL = %q", got)
	}
	if s, err := parseSources("127.0.0.2-127.0.0.41"); err != nil || len(s) != 40 {
		t.Errorf("parseSources: %d, %v", len(s), err)
	}
}
