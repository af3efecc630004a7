package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
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
