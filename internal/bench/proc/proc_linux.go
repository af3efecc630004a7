//go:build linux

package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// CPUs returns the CPUs the calling thread may run on, in order.
func CPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

func cpuSetOf(cpus []int) unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return set
}

// Pin restricts every thread of this process to cpus. Affinity is per
// thread on Linux; threads the runtime starts later copy it from the thread
// that starts them. A second pass catches a thread started while the first
// one ran.
func Pin(cpus []int) error {
	set := cpuSetOf(cpus)
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pin threads: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pin thread %d to CPUs %v: %w", tid, cpus, err)
			}
		}
	}
	return nil
}

// StartOnCPUs starts cmd restricted to cpus. A child inherits the affinity
// of the thread that forks it, so the fork runs on a locked thread pinned
// for the moment; this covers every thread the child ever starts, which
// pinning its pid afterwards would not.
func StartOnCPUs(cmd *exec.Cmd, cpus []int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	set := cpuSetOf(cpus)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil && err == nil {
		err = fmt.Errorf("restore CPU affinity: %w", rerr)
	}
	return err
}

// DieWithParent makes the kernel send cmd SIGTERM when this process dies,
// however it dies (killed, or a SIGPIPE on its output), so that a child
// server is never left running on its own. Strictly the signal follows the
// thread that forks; the Go runtime keeps its threads for the life of the
// process unless a goroutine exits while locked to one, which nothing here
// does (StartOnCPUs unlocks before it returns).
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
