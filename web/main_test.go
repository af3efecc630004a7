package web

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

// isolated reports whether the tests run in a network namespace of their
// own with only the loopback interface. Browser tests need that: Chromium
// gathers ICE candidates on every interface, and tests may only use
// loopback addresses.
var isolated = os.Getenv("TRYST_NETNS") == "1"

func TestMain(m *testing.M) {
	if !isolated && os.Geteuid() == 0 {
		if _, err := exec.LookPath("unshare"); err == nil {
			// Re-run this test binary in a new network namespace with only
			// loopback up.
			cmd := exec.Command("unshare", append([]string{"--net", "--", "sh", "-c",
				`ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null; exec "$0" "$@"`, os.Args[0]}, os.Args[1:]...)...)
			cmd.Env = append(os.Environ(), "TRYST_NETNS=1")
			cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, os.Stdin
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			if err == nil {
				os.Exit(0)
			}
			fmt.Fprintf(os.Stderr, "web tests: cannot create a network namespace (%v); browser tests will not run\n", err)
		}
	}
	goleak.VerifyTestMain(m,
		// chromedp's CDP reader and pion's ICE agent may finish just after a
		// test returns; they are library goroutines tied to closed contexts.
		goleak.IgnoreAnyFunction("github.com/chromedp/chromedp.(*Browser).run"),
	)
}
