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

// An error can carry the other side's text: exitCode prints it escaped, on
// one line.
func TestExitCodeEscapesTheError(t *testing.T) {
	var b strings.Builder
	if code := exitCode(errors.New("apply offer: \x1b[2J\r* received x (SHA-256 verified)"), &b); code != 1 {
		t.Errorf("exit %d", code)
	}
	if got, want := b.String(), `tryst: apply offer: \x1b[2J\r* received x (SHA-256 verified)`+"\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}
