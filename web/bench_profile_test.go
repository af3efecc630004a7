package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
)

// TRYST_BENCH_PROFILE=dir makes BenchmarkBrowserClient record a JavaScript
// CPU profile of each page's main thread during each client transfer: it
// writes dir/<scenario>-<page>-<run>.cpuprofile (open it in Chromium's
// DevTools, Performance panel) and logs the functions that took the most
// main-thread time. Workers are not in it.
func benchProfileDir() string { return os.Getenv("TRYST_BENCH_PROFILE") }

// startProfile starts the JavaScript profiler on c's page.
func (c *benchChrome) startProfile() error {
	return c.do(10*time.Second, profiler.Enable(), profiler.SetSamplingInterval(200), profiler.Start())
}

// stopProfile stops it, writes the profile to path and logs the top
// functions by self time, and the share of the run the main thread was
// busy in JavaScript and the engine's own work (GC, compilation).
func (c *benchChrome) stopProfile(tb testing.TB, path string) {
	tb.Helper()
	var prof *profiler.Profile
	if err := c.do(time.Minute, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		prof, err = profiler.Stop().Do(ctx)
		return err
	})); err != nil {
		tb.Logf("%s: profile: %v", c.name, err)
		return
	}
	if b, err := json.Marshal(prof); err == nil {
		_ = os.WriteFile(path, b, 0o644)
	}
	tb.Logf("%s: JavaScript profile %s\n%s", c.name, filepath.Base(path), summarizeProfile(prof, 15))
}

// summarizeProfile lists the n functions with the most self time, and the
// idle share.
func summarizeProfile(prof *profiler.Profile, n int) string {
	total := float64(prof.EndTime-prof.StartTime) / 1e3 // ms
	if total <= 0 || len(prof.Samples) == 0 {
		return "  (no samples)"
	}
	perSample := total / float64(len(prof.Samples))
	self := map[string]float64{}
	for _, node := range prof.Nodes {
		cf := node.CallFrame
		name := cf.FunctionName
		if name == "" {
			name = "(anonymous)"
		}
		key := fmt.Sprintf("%s %s:%d", name, filepath.Base(cf.URL), cf.LineNumber+1)
		if cf.URL == "" {
			key = name
		}
		self[key] += float64(node.HitCount) * perSample
	}
	keys := make([]string, 0, len(self))
	for k := range self {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		switch {
		case self[a] > self[b]:
			return -1
		case self[a] < self[b]:
			return 1
		}
		return strings.Compare(a, b)
	})
	var sb strings.Builder
	fmt.Fprintf(&sb, "  %.1f s profiled; busy (not idle) %.0f%%\n", total/1e3, 100*(1-self["(idle)"]/total))
	for _, k := range keys[:min(n, len(keys))] {
		fmt.Fprintf(&sb, "  %6.0f ms %5.1f%%  %s\n", self[k], 100*self[k]/total, k)
	}
	return sb.String()
}
