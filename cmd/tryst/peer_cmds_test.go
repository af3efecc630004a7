package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTestServer runs `tryst serve` in-process on loopback.
func startTestServer(t *testing.T) string {
	t.Helper()
	s := startServe(t, map[string]string{"TRYST_TURN_SECRET": "cli-test-secret-0123456789"}, "--allow-loopback-peers")
	return s.Addrs().Hub
}

// syncBuffer is a Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func pwEnv(pw string) func(string) (string, bool) {
	return env(map[string]string{"TRYST_PASSWORD": pw})
}

func TestSendReceiveCommands(t *testing.T) {
	hubURL := startTestServer(t)
	dir := t.TempDir()
	var files []string
	sums := map[string][32]byte{}
	for i, size := range []int{1 << 20, 300_000, 0} {
		b := make([]byte, size)
		rand.Read(b)
		p := filepath.Join(dir, "file"+string(rune('a'+i))+".bin")
		os.WriteFile(p, b, 0o600)
		files = append(files, p)
		sums[filepath.Base(p)] = sha256.Sum256(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var sendLog syncBuffer
	code, sendErr := startSend(ctx, hubURL, "s3cret", &sendLog, files...)
	if code == "" {
		t.Fatal("send printed no code")
	}
	recvDir := t.TempDir()
	var recvOut syncBuffer
	err := runIO(ctx, []string{"receive", "--hub", hubURL, "--ice-loopback", "--out", recvDir, code},
		stdio{in: strings.NewReader(""), out: &recvOut, err: io.Discard, getenv: pwEnv("s3cret")})
	if err != nil {
		t.Fatalf("receive: %v\n%s", err, recvOut.String())
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("send: %v\n%s", err, sendLog.String())
	}
	for name, want := range sums {
		b, err := os.ReadFile(filepath.Join(recvDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(b) != want {
			t.Errorf("%s: SHA-256 mismatch", name)
		}
	}
	if !strings.Contains(recvOut.String(), "* connected: direct") {
		t.Errorf("receive did not report the path:\n%s", recvOut.String())
	}
}

func TestChatCommandsWithPipes(t *testing.T) {
	hubURL := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	hostIn, hostInW := io.Pipe()
	hostOutR, hostOutW := io.Pipe()
	hostErr := make(chan error, 1)
	go func() {
		defer hostOutW.Close()
		hostErr <- runIO(ctx, []string{"chat", "--hub", hubURL, "--ice-loopback"},
			stdio{in: hostIn, out: hostOutW, err: io.Discard, getenv: pwEnv("pw")})
	}()
	hostLines := bufio.NewScanner(hostOutR)
	waitLine := func(sc *bufio.Scanner, substr string) string {
		t.Helper()
		for sc.Scan() {
			if strings.Contains(sc.Text(), substr) {
				return sc.Text()
			}
		}
		t.Fatalf("output ended before a line containing %q", substr)
		return ""
	}
	codeLine := waitLine(hostLines, "room code: ")
	code := strings.Fields(strings.TrimPrefix(codeLine[strings.Index(codeLine, "room code: "):], "room code: "))[0]

	guestOutR, guestOutW := io.Pipe()
	guestErr := make(chan error, 1)
	go func() {
		defer guestOutW.Close()
		// The guest's input is a fixed script: one line, then end of input,
		// after which the command waits for delivery and leaves.
		guestErr <- runIO(ctx, []string{"chat", "--hub", hubURL, "--ice-loopback", "--room", strings.ToLower(code)},
			stdio{in: strings.NewReader("hello from the guest\n"), out: guestOutW, err: io.Discard, getenv: pwEnv("pw")})
	}()
	guestLines := bufio.NewScanner(guestOutR)
	go func() {
		waitLine(guestLines, "connected")
		io.Copy(io.Discard, guestOutR)
	}()
	if line := waitLine(hostLines, "peer: hello from the guest"); !strings.HasPrefix(line, "[") {
		t.Errorf("no timestamp: %q", line)
	}
	waitLine(hostLines, "left")
	if err := <-guestErr; err != nil {
		t.Errorf("guest chat: %v", err)
	}
	hostInW.Close()
	if err := <-hostErr; err != nil {
		t.Errorf("host chat: %v", err)
	}
	go io.Copy(io.Discard, hostOutR)
}

// TestWrongPasswordCommands: a receiver with the wrong password ends with
// "password mismatch" and writes nothing; the sender is told and waits
// (docs/PROTOCOL.md, "PAKE"); the same receive command run again with the
// right password resumes the receiver's place and gets the file.
func TestWrongPasswordCommands(t *testing.T) {
	hubURL := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("secret data"), 0o600)
	sendOutR, sendOutW := io.Pipe()
	code, sendErr := startSend(ctx, hubURL, "right", sendOutW, p)
	// The sender's lines, read as they come: its output must never block.
	mismatch := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(sendOutR)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "password mismatch") {
				select {
				case mismatch <- sc.Text():
				default:
				}
			}
		}
	}()
	defer sendOutW.Close()
	out, state := t.TempDir(), t.TempDir()
	receive := func(password string) error {
		return runIO(ctx, []string{"receive", "--hub", hubURL, "--ice-loopback", "--out", out, "--state-dir", state, code},
			stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard, getenv: pwEnv(password)})
	}
	var stderr bytes.Buffer
	if exitCode(receive("wrong"), &stderr) == 0 || !strings.Contains(stderr.String(), "password mismatch") {
		t.Errorf("receive with the wrong password: %q", stderr.String())
	}
	select {
	case said := <-mismatch:
		if !strings.Contains(said, "1 of 5") {
			t.Errorf("the sender says %q", said)
		}
	case <-ctx.Done():
		t.Fatal("the sender did not say that the passwords differ")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("files written despite the mismatch: %v", entries)
	}
	if err := receive("right"); err != nil {
		t.Fatalf("receive again with the right password: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "f")); err != nil || string(b) != "secret data" {
		t.Errorf("received %q (%v)", b, err)
	}
	if err := <-sendErr; err != nil {
		t.Errorf("send: %v", err)
	}
}

func TestPasswordNeverFromArgv(t *testing.T) {
	err := runIO(context.Background(), []string{"receive", "--password", "x", "CODE"},
		stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard, getenv: env(nil)})
	if exitCode(err, io.Discard) != 2 {
		t.Errorf("--password accepted: %v", err)
	}
	err = runIO(context.Background(), []string{"receive", "222-222-222-222-222-222"},
		stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard, getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "TRYST_PASSWORD") {
		t.Errorf("no password source: %v", err)
	}
}

// startSend runs `tryst send` with the password pw in the background. It
// returns the code send prints ("" if none) and send's result; log gets a
// copy of its output.
func startSend(ctx context.Context, hubURL, pw string, log io.Writer, files ...string) (string, <-chan error) {
	outR, outW := io.Pipe()
	sendErr := make(chan error, 1)
	go func() {
		defer outW.Close()
		sendErr <- runIO(ctx, append([]string{"send", "--hub", hubURL, "--ice-loopback"}, files...),
			stdio{in: strings.NewReader(""), out: io.MultiWriter(outW, log), err: io.Discard, getenv: pwEnv(pw)})
	}()
	sc := bufio.NewScanner(outR)
	var code string
	for sc.Scan() {
		if c, ok := strings.CutPrefix(sc.Text(), "code: "); ok {
			code = c
			break
		}
	}
	go io.Copy(io.Discard, outR)
	return code, sendErr
}
