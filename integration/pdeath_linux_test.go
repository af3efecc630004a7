package integration

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill cmd if the test binary dies first, so a
// crashed or timed-out test leaves no server holding ports.
func dieWithTest(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
