package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/hubload"
	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestServeGCFloor: a real `tryst serve` under pairing load collects at
// its heap floor (64 MiB by default), not every 4 MiB as GOGC=100 alone
// would with its few megabytes live; --gc-floor-mib 0 leaves Go's default.
// Each case pairs until the hub has collected a few times: with the floor
// the goal after the first collection is the floor (GOGC raised), without
// it the goal stays near 4 MiB and GOGC at 100.
func TestServeGCFloor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		minGoal  float64
		maxGoal  float64
		raisedGC bool
	}{
		{"default", nil, 56 << 20, 72 << 20, true},
		{"off", []string{"--gc-floor-mib", "0"}, 0, 16 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServe(t, nil, append([]string{"--max-conns-per-ip", "-1", "--rooms-per-ip", "-1",
				"--idle-rooms-per-ip", "-1", "--credentials-per-ip", "-1", "--log-level", "warn"}, tc.args...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			wsURL := "ws://" + testenv.HostPort(t, s.Addrs.Hub) + "/v1/ws"
			var m map[string]float64
			pairings := 0
			for {
				for range 20 {
					if _, err := deployPair(ctx, nil, wsURL, false); err != nil {
						t.Fatalf("pairing %d: %v", pairings, err)
					}
					pairings++
				}
				var err error
				if m, err = hubload.ParseMetrics(strings.NewReader(httpGet(ctx, t, s.Addrs.Metrics))); err != nil {
					t.Fatal(err)
				}
				// The tuner runs just after a collection: once a second
				// one has come, the first's tuning is in place. Without a
				// floor, three collections show the goal staying low.
				if m["go_gc_duration_seconds_count"] >= 3 || (tc.raisedGC && m["go_gc_gogc_percent"] > 100) {
					break
				}
			}
			t.Logf("%d pairings: %v collections, GOGC %v, heap goal %.1f MiB", pairings,
				m["go_gc_duration_seconds_count"], m["go_gc_gogc_percent"], m["go_memstats_next_gc_bytes"]/(1<<20))
			if raised := m["go_gc_gogc_percent"] > 100; raised != tc.raisedGC {
				t.Errorf("GOGC %v; want raised: %v", m["go_gc_gogc_percent"], tc.raisedGC)
			}
			if goal := m["go_memstats_next_gc_bytes"]; goal < tc.minGoal || goal > tc.maxGoal {
				t.Errorf("heap goal %.1f MiB; want %.0f–%.0f MiB", goal/(1<<20), tc.minGoal/(1<<20), tc.maxGoal/(1<<20))
			}
		})
	}
}
