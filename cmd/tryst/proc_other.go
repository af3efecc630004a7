//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

// CPU affinity is only implemented on Linux; elsewhere bench transfer runs
// its peers and relay unpinned.

func processCPUs() ([]int, error) { return nil, errors.ErrUnsupported }

func pinProcess([]int) error { return errors.ErrUnsupported }

func startOnCPUs(*exec.Cmd, []int) error { return errors.ErrUnsupported }

// dieWithParent: only Linux has a parent-death signal; elsewhere the
// benchmark stops its child on its way out.
func dieWithParent(*exec.Cmd) {}
