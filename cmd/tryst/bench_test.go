package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestBenchFlags: each bench target refuses a bad command line before it
// measures anything, with a usage error where the setting is at fault.
func TestBenchFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("bench-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
		// bench turn's bad settings are exit status 1, as they always were.
		{runBenchTURN, []string{}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478"}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478", "--secret-file", secret, "--size", "8"}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478", "--secret-file", secret, "--duration", "0s"}, false},
		{runBenchTURN, []string{"--server", "127.0.0.1:3478", "--secret-file", "/nonexistent"}, false},
		{runBenchTURN, []string{"--bogus"}, false},
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
