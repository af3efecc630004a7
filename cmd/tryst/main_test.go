package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// asMainEnv makes the test binary run main instead of the tests: bench
// transfer starts `tryst serve` from os.Executable(), which under `go test`
// is this binary.
const asMainEnv = "TRYST_TEST_AS_MAIN"

// orphanHelperEnv makes the test binary start a long-lived child with
// dieWithParent, print its pid and wait to be killed (TestDieWithParent).
const orphanHelperEnv = "TRYST_TEST_ORPHAN_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
	}
	if os.Getenv(orphanHelperEnv) == "1" {
		cmd := exec.Command("sleep", "600")
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(cmd.Process.Pid)
		select {}
	}
	goleak.VerifyTestMain(m)
}

// TestBenchUsageNamesEveryTarget: the errors for a missing or unknown bench
// target list every target runIO accepts, transfer included.
func TestBenchUsageNamesEveryTarget(t *testing.T) {
	for _, args := range [][]string{{"bench"}, {"bench", "frobnicate"}} {
		err := runIO(context.Background(), args, stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard, getenv: env(nil)})
		var ue usageError
		if !errors.As(err, &ue) {
			t.Fatalf("%v: %v, want a usage error", args, err)
		}
		for _, target := range []string{"hub", "turn", "transfer"} {
			if !strings.Contains(err.Error(), target) {
				t.Errorf("%v: %q does not name %s", args, err, target)
			}
		}
	}
}
