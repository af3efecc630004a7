// Package gctune keeps the garbage collector from running more often than a
// heap floor calls for.
//
// With GOGC=100 the collector runs each time the heap has grown by its
// live size (plus stacks and globals). A hub pairing thousands of clients a
// second holds a few megabytes live and allocates a hundred megabytes a
// second, so it collected some 35 times a second, and the collector took a
// tenth of the hub's CPU (docs/BENCHMARKS.md, "Per-core scaling and memory
// per connection").
// A Tuner raises GOGC after each collection so that the next one comes
// when the heap reaches the floor, and lowers it back to the base GOGC
// once the live heap is large enough that the base already puts the goal
// above the floor. The heap therefore never grows past the larger of the
// floor and the goal the base GOGC would set: an idle or lightly loaded
// process may use up to the floor, a loaded one exactly what it used
// before.
//
// GOGC=off in the environment turns the tuner off (the operator chose), any
// other GOGC is the base, and a memory limit (GOMEMLIMIT) caps the floor at
// half the limit, so that the limit, not the floor, stays the point where
// the collector works hard.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Tuner adjusts GOGC after each collection. The zero value is not usable;
// Start returns one. It is process-wide: run at most one.
type Tuner struct {
	floor uint64 // bytes, after the memory limit's cap
	base  int    // GOGC to fall back to

	mu      sync.Mutex
	stopped bool
	percent int // GOGC as last set
	samples []metrics.Sample
	onTune  func(percent int) // tests: called after each tuning
}

// sentinel is allocated after each collection; its cleanup runs once the
// next collection has found it unreachable. A pointer field keeps it out
// of the tiny allocator, whose objects may never be cleaned up.
type sentinel struct{ _ *byte }

// heapMinimum is the runtime's smallest heap goal at GOGC=100
// (runtime.defaultHeapMinimum).
const heapMinimum = 4 << 20

// Start starts tuning toward floor bytes and returns the Tuner, or nil when
// there is nothing to do: floor is 0, or GOGC is off. Stop ends it.
func Start(floor uint64) *Tuner { return start(floor, nil) }

// start is Start with a hook that tests use to follow each tuning.
func start(floor uint64, onTune func(percent int)) *Tuner {
	base := debug.SetGCPercent(-1)
	debug.SetGCPercent(base)
	if floor == 0 || base < 0 {
		return nil
	}
	if limit := debug.SetMemoryLimit(-1); limit > 0 && uint64(limit)/2 < floor {
		floor = uint64(limit) / 2
	}
	t := &Tuner{
		floor:   floor,
		base:    base,
		percent: base,
		onTune:  onTune,
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/stack:bytes"},
			{Name: "/gc/scan/globals:bytes"},
		},
	}
	t.arm()
	return t
}

// arm has t tuned after the next collection.
func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *Tuner) {
		if t.tune() {
			t.arm()
		}
	}, t)
}

// tune sets GOGC for the cycle that has just begun, and reports whether
// to go on. The runtime's heap goal is live + (live + stacks + globals) ×
// GOGC/100; GOGC is chosen so that the goal is the floor, and never below
// the base.
func (t *Tuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.samples)
	live := t.samples[0].Value.Uint64()
	scan := live + t.samples[1].Value.Uint64() + t.samples[2].Value.Uint64()
	pct := t.base
	if live < t.floor && scan > 0 {
		// The runtime also keeps the goal at least heapMinimum, 4 MiB ×
		// GOGC/100, which caps the GOGC that meets the floor.
		want := min(100*(t.floor-live)/scan, 100*t.floor/heapMinimum)
		pct = max(pct, int(want))
	}
	// At most once per collection, and cheap (the heap lock): no need to
	// skip small moves.
	if pct != t.percent {
		debug.SetGCPercent(pct)
		t.percent = pct
	}
	if t.onTune != nil {
		t.onTune(t.percent)
	}
	return true
}

// Stop restores the base GOGC; no tuning follows. It is safe to call more
// than once and on a nil Tuner.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.base)
	}
}

// Floor is the floor in effect, after the memory limit's cap.
func (t *Tuner) Floor() uint64 { return t.floor }
