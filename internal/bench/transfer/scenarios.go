package transfer

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/stats"
)

// The scenarios, in the order they run and are reported.
const (
	scRaw        = "raw"
	scTryst      = "tryst"
	scRawRelay   = "raw-relay"
	scTrystRelay = "tryst-relay"
	scRawRTT     = "raw-rtt"
	scTrystRTT   = "tryst-rtt"

	// With the relay isolated on its own CPU, a relayed scenario is
	// compared with the same direct transfer with the peers on the same
	// CPUs (the "-pinned" baselines, added for the selected relayed
	// scenarios), so that the ratio measures the path and not the number
	// of CPUs. They are not selectable on their own.
	scRawPinned   = "raw-pinned"
	scTrystPinned = "tryst-pinned"
)

// Scenarios are the selectable scenarios, in the order they run and are
// reported: the time two Clients take to connect, direct, relay-only, and
// with a relay-only guest only (connect.go); then throughput, of a bare pion data channel (raw) and of
// Tryst's encrypted file transfer, direct, through the relay, and over an
// emulated network with Config.RTT of delay.
var Scenarios = []string{scConnect, scConnectRelay, scConnectRelayGuest, scRaw, scTryst, scRawRelay, scTrystRelay, scRawRTT, scTrystRTT}

// runScenarios returns the throughput scenarios of the selection with the
// pinned baselines they need, in report order.
func runScenarios(selected []string, isolated bool) []string {
	var out []string
	for _, sc := range []string{scRaw, scTryst, scRawPinned, scTrystPinned, scRawRelay, scTrystRelay, scRawRTT, scTrystRTT} {
		base, pinned := strings.CutSuffix(sc, "-pinned")
		if slices.Contains(selected, sc) || pinned && isolated && slices.Contains(selected, base+"-relay") {
			out = append(out, sc)
		}
	}
	return out
}

// relayedBaseline names the direct scenario a relayed one is compared with.
func relayedBaseline(relayed string, isolated bool) string {
	base := strings.TrimSuffix(relayed, "-relay")
	if isolated {
		return base + "-pinned"
	}
	return base
}

// runRounds sets every selected scenario up first (connections stay
// open and idle between runs), then runs cfg.Repeats rounds, each running
// every scenario once in turn, alternately forwards and backwards: raw and
// Tryst, direct and relayed, see the same background load and equally warm
// connections.
func runRounds(ctx context.Context, env *stack, cfg Config, dir string, log io.Writer) ([]ScenarioResult, error) {
	type scenario struct {
		name    string
		size    int64
		pinned  bool // peers kept off the relay's CPU
		measure func(ctx context.Context) (transfer, hash time.Duration, err error)
	}
	var (
		scs   []scenario
		nets  *vnetPair
		files = map[int64]string{}
	)
	defer func() {
		if nets != nil {
			nets.close()
		}
	}()
	var cleanup []func()
	defer func() {
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}()
	for _, sc := range runScenarios(cfg.Scenarios, env.cpus.isolated()) {
		fmt.Fprintf(log, "bench transfer: connecting %s\n", sc)
		relay := strings.HasSuffix(sc, "-relay")
		size := int64(cfg.SizeMiB) << 20
		var n *vnetPair
		if strings.HasSuffix(sc, "-rtt") {
			size = int64(cfg.RTTSizeMiB) << 20
			if nets == nil {
				var err error
				if nets, err = newVnetPair(cfg.RTT); err != nil {
					return nil, err
				}
			}
			n = nets
		}
		// Peers pinned away from the relay's CPU for the relayed scenarios
		// and their baselines; every CPU for the others.
		pinned := relay || strings.HasSuffix(sc, "-pinned")
		if strings.HasPrefix(sc, scRaw) {
			rp, err := startRawPair(ctx, env, n, relay, cfg)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc, err)
			}
			cleanup = append(cleanup, rp.close)
			scs = append(scs, scenario{sc, size, pinned, func(ctx context.Context) (time.Duration, time.Duration, error) {
				d, err := rp.transfer(ctx, size)
				return d, 0, err
			}})
			continue
		}
		tp, err := startTrystPair(ctx, env, n, relay, cfg, dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc, err)
		}
		cleanup = append(cleanup, tp.close)
		src, ok := files[size]
		if !ok {
			src = filepath.Join(dir, fmt.Sprintf("payload-%d.bin", size))
			if err := writeRandomFile(src, size); err != nil {
				return nil, err
			}
			files[size] = src
		}
		scs = append(scs, scenario{sc, size, pinned, func(ctx context.Context) (time.Duration, time.Duration, error) {
			return tp.transfer(ctx, src)
		}})
	}
	results := make([]ScenarioResult, len(scs))
	if len(scs) == 0 {
		return results, nil // connect scenarios only
	}
	for i, sc := range scs {
		results[i] = ScenarioResult{Scenario: sc.name, Bytes: sc.size}
	}
	order := make([]int, len(scs))
	for i := range order {
		order[i] = i
	}
	for round := range cfg.Repeats {
		fmt.Fprintf(log, "bench transfer: round %d of %d\n", round+1, cfg.Repeats)
		// Every other round runs backwards, so neither side of a pair
		// always runs first (on a warmer or cooler machine).
		slices.Reverse(order)
		for _, i := range order {
			sc := scs[i]
			if err := env.cpus.forScenario(sc.pinned); err != nil {
				return nil, err
			}
			rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			d, hash, err := sc.measure(rctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc.name, err)
			}
			results[i].Seconds = append(results[i].Seconds, d.Seconds())
			if hash > 0 {
				results[i].HashSeconds = append(results[i].HashSeconds, hash.Seconds())
			}
		}
	}
	for i := range results {
		if med := stats.Median(results[i].Seconds); med > 0 {
			results[i].MBps = float64(results[i].Bytes) / med / 1e6
		}
	}
	return results, nil
}

func writeRandomFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		b := buf[:min(int64(len(buf)), left)]
		_, _ = rand.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
