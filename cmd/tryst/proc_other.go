//go:build !linux

package main

// Child-process control for bench transfer: CPU affinity and a
// parent-death signal. Linux only; elsewhere these do nothing or fail with
// ErrUnsupported, and the benchmark runs unpinned.

import (
	"errors"
	"os/exec"
)

func processCPUs() ([]int, error) { return nil, errors.ErrUnsupported }

func pinProcess([]int) error { return errors.ErrUnsupported }

func startOnCPUs(*exec.Cmd, []int) error { return errors.ErrUnsupported }

// dieWithParent: only Linux has a parent-death signal; elsewhere the
// benchmark stops its child on its way out.
func dieWithParent(*exec.Cmd) {}
