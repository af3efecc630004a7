//go:build !linux

package integration

import "os/exec"

// dieWithTest: only Linux has a parent-death signal; elsewhere the test's
// cleanup kills what it started.
func dieWithTest(*exec.Cmd) {}
