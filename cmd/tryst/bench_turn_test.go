package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/turnserver"
)

func TestBenchTURNAgainstTryst(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	secret := []byte("bench-secret-0123456789")
	srv, err := turnserver.New(turnserver.Config{
		ListenAddr:         "127.0.0.1:0",
		Secrets:            [][]byte{secret},
		AllowLoopbackPeers: true,
		Sockets:            2,
		UserQuota:          -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, append([]byte("# test\n"), secret...), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args := []string{"--server", srv.UDPAddr().String(), "--secret-file", file, "--allocations", "3",
		"--duration", "1s", "--warmup", "200ms", "--size", "100", "--rate", "100",
		"--server-pid", strconv.Itoa(os.Getpid())}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runBenchTURN(ctx, args, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("runBenchTURN: %v\n%s", err, errOut.String())
	}
	t.Log("\n" + out.String())
	m := regexp.MustCompile(`loss:\s+([0-9.]+)% \((\d+) sent`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no loss line:\n%s", out.String())
	}
	if sent, _ := strconv.Atoi(m[2]); sent < 100 {
		t.Errorf("only %d packets sent", sent)
	}
	if m[1] != "0.000" {
		t.Errorf("loss %s%% on loopback at low rate", m[1])
	}
	for _, want := range []string{"allocations/s:", "round trips/s:", "relayed Mbit/s:", "RTT p50/p99:", "packets/CPU-s:"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestBenchTURNFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--server", "127.0.0.1:3478"},
		{"--server", "127.0.0.1:3478", "--secret-file", "x", "--size", "8"},
		{"--server", "127.0.0.1:3478", "--secret-file", "x", "--duration", "0s"},
		{"--bogus"},
	} {
		if err := runBenchTURN(context.Background(), args, stdio{out: &bytes.Buffer{}, err: &bytes.Buffer{}}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
