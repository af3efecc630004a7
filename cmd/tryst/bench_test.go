package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestBenchFlags: each bench target refuses a bad command line before it
// measures anything, with a usage error where the setting is at fault.
func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		run   command
		args  []string
		usage bool // exit status 2
	}{
		{runBenchHub, []string{}, true},
		{runBenchHub, []string{"--hub", "ftp://x"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1"}, true}, // mem phase without --metrics
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair,bogus"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair", "--sources", "127.0.0.9-127.0.0.2"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "relay", "--relay-size", "3"}, true},
		{runBenchHub, []string{"--hub", "ws://127.0.0.1:1", "--phases", "pair", "extra"}, true},
		{runBenchHub, []string{"--bogus"}, false},
	} {
		err := tc.run(context.Background(), tc.args, stdio{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
		if err == nil {
			t.Errorf("%q accepted", tc.args)
			continue
		}
		var ue usageError
		if errors.As(err, &ue) != tc.usage {
			t.Errorf("%q: %v: usage error %v, want %v", tc.args, err, !tc.usage, tc.usage)
		}
	}
}
