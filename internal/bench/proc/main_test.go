package proc_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/internal/bench/proc"
)

// orphanHelperEnv makes the test binary start a long-lived child with
// DieWithParent, print its pid and wait to be killed (TestDieWithParent).
const orphanHelperEnv = "TRYST_TEST_ORPHAN_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(orphanHelperEnv) == "1" {
		cmd := exec.Command("sleep", "600")
		proc.DieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(cmd.Process.Pid)
		select {}
	}
	goleak.VerifyTestMain(m)
}
