package transfer

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/tryst-chat/tryst/internal/bench/stats"
)

// WriteTable prints res as `tryst bench transfer` does: the connect
// scenarios, the CPU layout, a line per throughput scenario with the
// targets it is held to, then how long hashing took where it did.
func (res Result) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	res.table(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (res Result) table(w io.Writer) {
	res.connectTable(w)
	if len(res.Results) == 0 {
		return
	}
	if len(res.Connects) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "tryst bench transfer: %d-byte chunks, %d rounds, emulated RTT %v; MB = 10^6 bytes\n",
		res.Chunk, res.Repeats, res.RTT)
	fmt.Fprintf(w, "%s\n", layoutText(res.RelayCPUs, res.PeerCPUs))
	fmt.Fprintf(w, "MB/s is the median run; ratios are medians of per-round ratios\n\n")
	fmt.Fprintf(w, "%-12s %9s %7s %13s %7s %9s  %s\n", "scenario", "size", "MB/s", "min..max", "vs raw", "vs direct", "target")
	pct := func(x float64) string {
		if x <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*x)
	}
	for _, r := range res.Results {
		spread := "-"
		if len(r.Seconds) > 0 {
			lo, hi := slices.Max(r.Seconds), slices.Min(r.Seconds)
			spread = fmt.Sprintf("%.1f..%.1f", float64(r.Bytes)/lo/1e6, float64(r.Bytes)/hi/1e6)
		}
		fmt.Fprintf(w, "%-12s %5d MiB %7.1f %13s %7s %9s  %s\n", r.Scenario, r.Bytes>>20, r.MBps, spread,
			pct(r.VsRaw), pct(r.VsDirect), transferTarget(r))
	}
	for _, r := range res.Results {
		if len(r.HashSeconds) > 0 {
			h := stats.Median(r.HashSeconds)
			fmt.Fprintf(w, "\n%s: SendFile hashed the file in %.2f s before each transfer (median, %.0f MB/s; not included above)",
				r.Scenario, h, float64(r.Bytes)/h/1e6)
		}
	}
	fmt.Fprintln(w)
}

// connectTable prints the connect scenarios, if any ran.
func (res Result) connectTable(w io.Writer) {
	if len(res.Connects) == 0 {
		return
	}
	waits := ""
	if res.PionWaits {
		waits = "; pion's acceptance waits on every connection (--pion-waits: as before issue 13)"
	}
	fmt.Fprintf(w, "tryst bench transfer: time to connect, %d connections each, alternating%s\n", len(res.Connects[0].Ms), waits)
	fmt.Fprintf(w, "from the guest's join until both Clients are connected (key confirmed over the data channel)\n\n")
	fmt.Fprintf(w, "%-19s %-14s %8s %8s %9s  %s\n", "scenario", "path", "p50 ms", "p99 ms", "vs direct", "target")
	for _, r := range res.Connects {
		ratio, target := "-", ""
		if r.VsDirect > 0 {
			ratio = fmt.Sprintf("%.2fx", r.VsDirect)
			target = "p50 <= 1.2x direct: met"
			if r.VsDirect > 1.2 {
				target = "p50 <= 1.2x direct: NOT MET"
			}
		}
		fmt.Fprintf(w, "%-19s %-14s %8.1f %8.1f %9s  %s\n", r.Scenario, r.Path, r.P50, r.P99, ratio, target)
	}
}

// transferTarget states the target for a scenario and whether the
// measurement meets it.
func transferTarget(r ScenarioResult) string {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	switch {
	case r.Scenario == scTryst && r.VsRaw > 0:
		return ">= 90% of raw: " + verdict(r.VsRaw >= 0.9)
	case r.Scenario == scTrystRelay && r.VsDirect > 0:
		return ">= 70% of direct: " + verdict(r.VsDirect >= 0.7)
	case r.Scenario == scTrystRTT:
		return ">= 20 MB/s: " + verdict(r.MBps >= 20)
	}
	return ""
}

// layoutText describes where the relay and the peers ran, for the table.
func layoutText(relay, peers []int) string {
	if len(relay) == 0 {
		return "relay: `tryst serve` process sharing every CPU with the peers; relayed compared with direct"
	}
	return fmt.Sprintf("relay: `tryst serve` process on CPU %v; peers on CPU %v for -relay and -pinned, every CPU otherwise;\n"+
		"relayed compared with -pinned (direct, same CPUs)", relay, peers)
}
