package transfer

import (
	"fmt"
	"runtime"

	"github.com/tryst-chat/tryst/internal/bench/proc"
)

// cpuLayout places the relay process and the peers on disjoint CPUs (the
// relay on the last one) for the relayed scenarios and their direct
// baselines, as if the relay were another host. Sharing their CPUs, the
// relayed path is CPU-bound by construction: the relay's system calls come
// out of the peers' CPU time, which no deployment does (docs/BENCHMARKS.md
// has the figures). The other scenarios do not use the relay and run on
// every CPU.
type cpuLayout struct {
	all, peers, relay []int // relay empty: not isolated
	procs             int   // GOMAXPROCS outside the pinned scenarios
}

// newCPULayout returns the layout for this process's CPUs; not isolated,
// with the reason, where they cannot be split.
func newCPULayout(isolate bool) (cpuLayout, error) {
	l := cpuLayout{procs: runtime.GOMAXPROCS(0)}
	if !isolate {
		return l, nil
	}
	cpus, err := proc.CPUs()
	if err != nil {
		return l, err
	}
	if len(cpus) < 2 {
		return l, fmt.Errorf("it needs 2 CPUs, this process may use %d", len(cpus))
	}
	// Setting the mask it already has tells whether this process may set
	// one at all (a seccomp profile may forbid sched_setaffinity).
	if err := proc.Pin(cpus); err != nil {
		return l, err
	}
	l.all, l.peers, l.relay = cpus, cpus[:len(cpus)-1], cpus[len(cpus)-1:]
	return l, nil
}

func (l cpuLayout) isolated() bool { return len(l.relay) > 0 }

// forScenario confines the peers to their CPUs for a pinned scenario and
// gives them every CPU back for the others. GOMAXPROCS follows, as it
// would had the process started with that affinity.
func (l cpuLayout) forScenario(pinned bool) error {
	if !l.isolated() {
		return nil
	}
	if !pinned {
		return l.release()
	}
	if err := proc.Pin(l.peers); err != nil {
		return err
	}
	runtime.GOMAXPROCS(len(l.peers))
	return nil
}

// release undoes forScenario.
func (l cpuLayout) release() error {
	if !l.isolated() {
		return nil
	}
	runtime.GOMAXPROCS(l.procs)
	return proc.Pin(l.all)
}
