package turnload_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/internal/bench/turnload"
	"github.com/tryst-chat/tryst/turnserver"
)

func TestBenchTURNAgainstTryst(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	secret := []byte("bench-secret-0123456789")
	srv, err := turnserver.New(turnserver.Config{
		ListenAddr:         "127.0.0.1:0",
		Secrets:            [][]byte{secret},
		AllowLoopbackPeers: true,
		Sockets:            2,
		UserQuota:          -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := turnload.DefaultConfig()
	cfg.Server, cfg.Secret = srv.UDPAddr().String(), secret
	cfg.Allocations, cfg.Duration, cfg.Warmup, cfg.Size, cfg.Rate = 3, time.Second, 200*time.Millisecond, 100, 100
	cfg.ServerPID = os.Getpid()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := turnload.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	m := regexp.MustCompile(`loss:\s+([0-9.]+)% \((\d+) sent`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no loss line:\n%s", out.String())
	}
	if sent, _ := strconv.Atoi(m[2]); sent < 100 {
		t.Errorf("only %d packets sent", sent)
	}
	if m[1] != "0.000" {
		t.Errorf("loss %s%% on loopback at low rate", m[1])
	}
	for _, want := range []string{"allocations/s:", "round trips/s:", "relayed Mbit/s:", "RTT p50/p99:", "packets/CPU-s:"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := turnload.DefaultConfig()
	good.Server, good.Secret = "127.0.0.1:3478", []byte("s3cret")
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for name, change := range map[string]func(*turnload.Config){
		"no server":     func(c *turnload.Config) { c.Server = "" },
		"no secret":     func(c *turnload.Config) { c.Secret = nil },
		"small packets": func(c *turnload.Config) { c.Size = 8 },
		"no duration":   func(c *turnload.Config) { c.Duration = 0 },
		"no window":     func(c *turnload.Config) { c.Window = 0 },
	} {
		c := good
		change(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "bench turn: ") {
			t.Errorf("%s: %q does not say which command", name, err)
		}
		if _, err := turnload.Run(context.Background(), c); err == nil {
			t.Errorf("%s: Run accepted it", name)
		}
	}
}

// TestWriteTable pins the report's layout, which docs/BENCHMARKS.md quotes.
func TestWriteTable(t *testing.T) {
	r := turnload.Result{Allocations: 10, AllocTime: 25 * time.Millisecond, Duration: 10 * time.Second,
		Sent: 5000, Received: 4990, RTTp50: 312 * time.Microsecond, RTTp99: 1234567 * time.Nanosecond,
		ServerCPU: 2 * time.Second, PacketsPerCPUSec: 4990, Server: "127.0.0.1:3478", Size: 200, Window: 16, CPUMeasured: true}
	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	want := `server 127.0.0.1:3478, 10 allocations, 200-byte payloads, rate max (window 16) pps/allocation, 10.0s
allocations/s:     400.0 (10 in 25ms)
round trips/s:     499
relayed Mbit/s:    1.60
loss:              0.200% (5000 sent, 4990 echoed)
RTT p50/p99:       312µs / 1.235ms
server CPU:        2.00s (20% of one core)
packets/CPU-s:     4990 (relayed packets per server CPU-second)
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	r.CPUMeasured, r.Rate = false, 50
	out.Reset()
	_ = r.WriteTable(&out)
	if strings.Contains(out.String(), "server CPU") || !strings.Contains(out.String(), "rate 50 pps/allocation") {
		t.Errorf("without a pid, at a fixed rate:\n%s", out.String())
	}
}
