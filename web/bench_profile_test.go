package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
	"github.com/go-json-experiment/json/jsontext"
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
	keys := largestFirst(self, strings.Compare)
	var sb strings.Builder
	fmt.Fprintf(&sb, "  %.1f s profiled; busy (not idle) %.0f%%\n", total/1e3, 100*(1-self["(idle)"]/total))
	for _, k := range keys[:min(n, len(keys))] {
		fmt.Fprintf(&sb, "  %6.0f ms %5.1f%%  %s\n", self[k], 100*self[k]/total, k)
	}
	return sb.String()
}

// TRYST_BENCH_TRACE=dir makes BenchmarkBrowserClient record a Chromium
// trace of each browser (all its processes) for traceWindow in the middle
// of each client transfer, and log where each thread's time went:
// the top trace events by total duration per thread (nested events count
// in their parents too). The raw trace is written to dir as JSON (open it
// in Perfetto or chrome://tracing).
func benchTraceDir() string { return os.Getenv("TRYST_BENCH_TRACE") }

const traceWindow = 3 * time.Second

// traceCategories include V8's sampling profiler, whose ProfileChunk
// events hold JavaScript samples of every thread, workers too (the
// profiler domain sees only the page's main thread): open the trace in
// DevTools' Performance panel to see the store worker's functions.
var traceCategories = []string{
	"toplevel", "blink", "v8", "webrtc", "renderer.scheduler", "cc", "gpu", "mojom", "ipc",
	"disabled-by-default-devtools.timeline", "disabled-by-default-v8.cpu_profiler",
}

// traceEvent is what the summary reads of a trace event.
type traceEvent struct {
	Name string          `json:"name"`
	Ph   string          `json:"ph"`
	Pid  int             `json:"pid"`
	Tid  int             `json:"tid"`
	Dur  float64         `json:"dur"` // µs, for complete events
	Args json.RawMessage `json:"args"`
}

// trace records a trace of c's browser for d and logs its summary.
func (c *benchChrome) trace(tb testing.TB, d time.Duration, path string) {
	tb.Helper()
	var (
		mu     sync.Mutex
		events []jsontext.Value
		done   = make(chan struct{})
		once   sync.Once
	)
	lctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	chromedp.ListenTarget(lctx, func(ev any) {
		switch e := ev.(type) {
		case *tracing.EventDataCollected:
			mu.Lock()
			events = append(events, e.Value...)
			mu.Unlock()
		case *tracing.EventTracingComplete:
			once.Do(func() { close(done) })
		}
	})
	cfg := &tracing.TraceConfig{IncludedCategories: traceCategories, RecordMode: tracing.RecordModeRecordContinuously}
	if err := c.do(10*time.Second, tracing.Start().WithTraceConfig(cfg).WithTransferMode(tracing.TransferModeReportEvents)); err != nil {
		tb.Logf("%s: trace: %v", c.name, err)
		return
	}
	<-time.After(d)
	if err := c.do(10*time.Second, tracing.End()); err != nil {
		tb.Logf("%s: trace end: %v", c.name, err)
		return
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		tb.Logf("%s: trace did not complete", c.name)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if f, err := os.Create(path); err == nil {
		_, _ = f.WriteString(`{"traceEvents":[`)
		for i, e := range events {
			if i > 0 {
				_, _ = f.WriteString(",")
			}
			_, _ = f.Write(e)
		}
		_, _ = f.WriteString("]}")
		_ = f.Close()
	}
	tb.Logf("%s: trace %s (%v)\n%s", c.name, filepath.Base(path), d, summarizeTrace(events, d, 40))
}

// summarizeTrace lists the n (thread, event) pairs with the most time.
func summarizeTrace(raw []jsontext.Value, window time.Duration, n int) string {
	names := map[[2]int]string{}
	type key struct {
		thread [2]int
		name   string
	}
	total := map[key]float64{}
	for _, r := range raw {
		var e traceEvent
		if json.Unmarshal(r, &e) != nil {
			continue
		}
		t := [2]int{e.Pid, e.Tid}
		switch e.Ph {
		case "M":
			if e.Name == "thread_name" {
				var a struct {
					Name string `json:"name"`
				}
				if json.Unmarshal(e.Args, &a) == nil {
					names[t] = a.Name
				}
			}
		case "X":
			total[key{t, e.Name}] += e.Dur
		}
	}
	keys := largestFirst(total, func(a, b key) int { return strings.Compare(a.name, b.name) })
	var sb strings.Builder
	for _, k := range keys[:min(n, len(keys))] {
		fmt.Fprintf(&sb, "  %7.0f ms %5.1f%%  %-22s %d/%d  %s\n", total[k]/1e3, 100*total[k]/float64(window.Microseconds()),
			names[k.thread], k.thread[0], k.thread[1], k.name)
	}
	return sb.String()
}

// largestFirst returns m's keys by value, largest first, ties in tie's
// order.
func largestFirst[K comparable](m map[K]float64, tie func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int {
		switch {
		case m[a] > m[b]:
			return -1
		case m[a] < m[b]:
			return 1
		}
		return tie(a, b)
	})
	return keys
}
