package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// read returns one runtime metric.
func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startTuned starts a Tuner that reports each tuning on the returned
// channel, and stops it (restoring GOGC) when the test ends.
func startTuned(t *testing.T, floor uint64) (*Tuner, <-chan int) {
	t.Helper()
	tuned := make(chan int, 64)
	tn := start(floor, func(p int) {
		select {
		case tuned <- p:
		default:
		}
	})
	if tn == nil {
		t.Fatal("no tuner")
	}
	t.Cleanup(tn.Stop)
	return tn, tuned
}

// collect runs a collection and returns the GOGC the tuner set after it.
func collect(t *testing.T, tuned <-chan int) int {
	t.Helper()
	for {
		select {
		case <-tuned: // from an earlier, automatic collection
			continue
		default:
		}
		break
	}
	runtime.GC()
	select {
	case p := <-tuned:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("the tuner did not run after a collection")
		return 0
	}
}

// TestGoalIsTheFloor: with a few megabytes live, GOGC is raised so that
// the next collection comes at the floor, not at twice the live heap.
func TestGoalIsTheFloor(t *testing.T) {
	const floor = 96 << 20
	_, tuned := startTuned(t, floor)
	p := collect(t, tuned)
	if p <= 100 {
		t.Fatalf("GOGC %d with %d bytes live and a %d-byte floor; want it raised", p, read("/gc/heap/live:bytes"), floor)
	}
	if got := read("/gc/gogc:percent"); got != uint64(p) {
		t.Fatalf("runtime's GOGC %d, tuner reports %d", got, p)
	}
	if goal := read("/gc/heap/goal:bytes"); goal < floor*9/10 || goal > floor*11/10 {
		t.Fatalf("heap goal %d MiB; want the floor, %d MiB", goal>>20, floor>>20)
	}
}

var ballast []byte

// TestBaseAboveTheFloor: once the live heap is large enough that the base
// GOGC already sets the goal above the floor, the tuner leaves the base.
func TestBaseAboveTheFloor(t *testing.T) {
	_, tuned := startTuned(t, 96<<20)
	if p := collect(t, tuned); p <= 100 {
		t.Fatalf("GOGC %d with a small live heap", p)
	}
	ballast = make([]byte, 64<<20)
	t.Cleanup(func() { ballast = nil })
	if p := collect(t, tuned); p != 100 {
		t.Fatalf("GOGC %d with %d MiB live and a 96 MiB floor; want the base, 100", p, read("/gc/heap/live:bytes")>>20)
	}
	if got := read("/gc/gogc:percent"); got != 100 {
		t.Fatalf("runtime's GOGC %d; want 100", got)
	}
	runtime.KeepAlive(ballast)
}

// TestStopRestoresTheBase: Stop puts GOGC back and no collection after it
// changes it; a second Stop and a nil Tuner's Stop do nothing.
func TestStopRestoresTheBase(t *testing.T) {
	tn, tuned := startTuned(t, 96<<20)
	if p := collect(t, tuned); p <= 100 {
		t.Fatalf("GOGC %d with a small live heap", p)
	}
	tn.Stop()
	tn.Stop()
	(*Tuner)(nil).Stop()
	for range 3 {
		runtime.GC()
		if got := read("/gc/gogc:percent"); got != 100 {
			t.Fatalf("GOGC %d after Stop; want 100", got)
		}
	}
}

// TestCustomBase: a GOGC set by the operator is the base.
func TestCustomBase(t *testing.T) {
	old := debug.SetGCPercent(300)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	tn, tuned := startTuned(t, 8<<20)
	ballast = make([]byte, 32<<20)
	t.Cleanup(func() { ballast = nil })
	if p := collect(t, tuned); p != 300 {
		t.Fatalf("GOGC %d; want the operator's 300", p)
	}
	tn.Stop()
	if got := read("/gc/gogc:percent"); got != 300 {
		t.Fatalf("GOGC %d after Stop; want the operator's 300", got)
	}
	runtime.KeepAlive(ballast)
}

// TestNothingToDo: no floor, or GOGC off, means no tuner.
func TestNothingToDo(t *testing.T) {
	if tn := Start(0); tn != nil {
		tn.Stop()
		t.Fatal("a tuner for a zero floor")
	}
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	if tn := Start(64 << 20); tn != nil {
		tn.Stop()
		t.Fatal("a tuner with GOGC off")
	}
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("GOGC %d after Start with GOGC off; want it still off", got)
	}
}

// TestMemoryLimitCapsTheFloor: with a memory limit, the floor is at most
// half of it, so the limit stays where the collector works hard.
func TestMemoryLimitCapsTheFloor(t *testing.T) {
	old := debug.SetMemoryLimit(64 << 20)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	tn, tuned := startTuned(t, 256<<20)
	if got := tn.Floor(); got != 32<<20 {
		t.Fatalf("floor %d MiB under a 64 MiB limit; want 32", got>>20)
	}
	collect(t, tuned)
	if goal := read("/gc/heap/goal:bytes"); goal > 36<<20 {
		t.Fatalf("heap goal %d MiB under a 64 MiB limit; want about 32", goal>>20)
	}
}
