//go:build !linux

package proc

import (
	"errors"
	"os/exec"
)

// CPUs: CPU affinity is Linux only.
func CPUs() ([]int, error) { return nil, errors.ErrUnsupported }

// Pin: CPU affinity is Linux only.
func Pin([]int) error { return errors.ErrUnsupported }

// StartOnCPUs: CPU affinity is Linux only; cmd is not started.
func StartOnCPUs(*exec.Cmd, []int) error { return errors.ErrUnsupported }

// DieWithParent: only Linux has a parent-death signal; elsewhere the
// benchmark stops its child on its way out.
func DieWithParent(*exec.Cmd) {}
