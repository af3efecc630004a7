//go:build linux

package proc_test

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tryst-chat/tryst/internal/bench/proc"
)

// threadCPUs returns the CPUs of every thread of this process.
func threadCPUs(t *testing.T) map[int][]int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	m := map[int][]int{}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // exited meanwhile
		}
		for i := range len(set) * 64 {
			if set.IsSet(i) {
				m[tid] = append(m[tid], i)
			}
		}
	}
	return m
}

func TestPinProcess(t *testing.T) {
	all, err := proc.CPUs()
	if err != nil || len(all) == 0 {
		t.Fatalf("processCPUs: %v %v", all, err)
	}
	last := all[len(all)-1:]
	if err := proc.Pin(last); err != nil {
		t.Fatal(err)
	}
	for tid, cpus := range threadCPUs(t) {
		if !slices.Equal(cpus, last) {
			t.Errorf("thread %d on CPUs %v after pinning to %v", tid, cpus, last)
		}
	}
	if err := proc.Pin(all); err != nil {
		t.Fatal(err)
	}
	for tid, cpus := range threadCPUs(t) {
		if !slices.Equal(cpus, all) {
			t.Errorf("thread %d on CPUs %v after restoring %v", tid, cpus, all)
		}
	}
}

func TestStartOnCPUs(t *testing.T) {
	all, err := proc.CPUs()
	if err != nil {
		t.Fatal(err)
	}
	last := all[len(all)-1:]
	cmd := exec.Command("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.StartOnCPUs(cmd, last); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Error(err)
		}
	}()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var allowed string
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			allowed = strings.TrimSpace(v)
		}
	}
	if allowed != strconv.Itoa(last[0]) {
		t.Errorf("child on CPUs %q, want %d", allowed, last[0])
	}
	// This process kept its CPUs.
	for tid, cpus := range threadCPUs(t) {
		if !slices.Equal(cpus, all) {
			t.Errorf("thread %d on CPUs %v, want %v", tid, cpus, all)
		}
	}
}

// TestDieWithParent: a child started with DieWithParent ends when its
// parent is killed outright, as bench transfer's relay must.
func TestDieWithParent(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), orphanHelperEnv+"=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		_ = helper.Process.Kill()
		_ = helper.Wait()
		t.Fatalf("helper: %v", err)
	}
	// A pidfd becomes readable when the process exits; it works for a
	// process that is not our child.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		_ = helper.Process.Kill()
		_ = helper.Wait()
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 0); n != 0 {
		t.Fatal("the child exited before its parent")
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	if n, err := unix.Poll(fds, 10_000); n != 1 || err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("the child (pid %d) outlived its killed parent: poll %d %v", pid, n, err)
	}
}
