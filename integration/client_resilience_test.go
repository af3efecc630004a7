package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Go client as people run it, against faults: `tryst send` and
// `tryst receive` processes and a `tryst serve` process on loopback, killed
// (SIGKILL) or interrupted (SIGINT) mid-transfer.

// resilSize is the file the tests transfer: 64 MiB.
const resilSize = 64 << 20

// resilTimeout bounds every wait of these tests: far more than a 64 MiB
// loopback transfer by a race-enabled binary on a loaded machine takes, so
// that reaching it means a hang.
const resilTimeout = 3 * time.Minute

// peerProcess is a running `tryst send` or `tryst receive`.
type peerProcess struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *lines
	exit chan error // Wait's result, once
	err  error
	done bool
}

// lines keeps what a process writes (stdout and stderr together), line by
// line, and wakes whoever waits for a line.
type lines struct {
	mu      sync.Mutex
	all     []string
	changed chan struct{} // closed and replaced on every line, and at the end
	ended   bool
	wg      sync.WaitGroup
}

func (l *lines) collect(r io.Reader) {
	defer l.wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// wait returns the first line from index from on that match accepts, and
// its index; an error once ctx ends or the output ended without one.
func (l *lines) wait(ctx context.Context, from int, match func(string) bool) (string, int, error) {
	for {
		l.mu.Lock()
		for i := from; i < len(l.all); i++ {
			if match(l.all[i]) {
				s := l.all[i]
				l.mu.Unlock()
				return s, i, nil
			}
		}
		from = len(l.all)
		ch, ended := l.changed, l.ended
		l.mu.Unlock()
		if ended {
			return "", 0, errors.New("output ended")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", 0, ctx.Err()
		}
	}
}

// startPeer runs the built binary with args; it is killed when the test
// ends, and its output shown if the test failed.
func startPeer(t *testing.T, name string, args ...string) *peerProcess {
	t.Helper()
	p, _ := startProcess(t, name, false, args)
	return p
}

// startProcess is startPeer, with a pipe for standard input when withIn.
func startProcess(t *testing.T, name string, withIn bool, args []string) (*peerProcess, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(trystBinary(t), args...)
	dieWithTest(cmd)
	var in io.WriteCloser
	if withIn {
		var err error
		if in, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &peerProcess{t: t, name: name, cmd: cmd, out: &lines{changed: make(chan struct{})}, exit: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.out.wg.Add(2)
	go p.out.collect(stdout)
	go p.out.collect(stderr)
	go func() {
		p.out.wg.Wait()
		err := cmd.Wait()
		p.out.mu.Lock()
		p.out.ended = true
		close(p.out.changed)
		p.out.changed = make(chan struct{})
		p.out.mu.Unlock()
		p.exit <- err
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		p.wait(context.Background())
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p, in
}

// wait waits for the process to exit and returns Wait's error.
func (p *peerProcess) wait(ctx context.Context) (exited bool, err error) {
	if p.done {
		return true, p.err
	}
	select {
	case p.err = <-p.exit:
		p.done = true
		return true, p.err
	case <-ctx.Done():
		return false, nil
	}
}

// line waits for a line containing substr.
func (p *peerProcess) line(ctx context.Context, substr string) string {
	p.t.Helper()
	s, _, err := p.out.wait(ctx, 0, func(l string) bool { return strings.Contains(l, substr) })
	if err != nil {
		p.t.Fatalf("%s: no line with %q: %v\n%s", p.name, substr, err, p.out.String())
	}
	return s
}

// progress waits until the process reports a transfer at pct % or more.
func (p *peerProcess) progress(ctx context.Context, pct int) {
	p.t.Helper()
	_, _, err := p.out.wait(ctx, 0, func(l string) bool {
		_, rest, ok := strings.Cut(l, ".bin: ")
		if !ok {
			return false
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.Fields(rest)[0], "%"))
		return err == nil && n >= pct
	})
	if err != nil {
		p.t.Fatalf("%s: no progress to %d%%: %v\n%s", p.name, pct, err, p.out.String())
	}
}

// exited waits for the process to exit and returns its status.
func (p *peerProcess) exited(ctx context.Context) int {
	p.t.Helper()
	ok, err := p.wait(ctx)
	if !ok {
		p.t.Fatalf("%s did not exit\n%s", p.name, p.out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	return 0
}

// resilSetup starts a hub and writes the password and a random file of
// resilSize bytes; it returns the hub's URL, the password file, the file's
// path and its SHA-256.
func resilSetup(t *testing.T) (*serveProcess, string, string, [32]byte) {
	t.Helper()
	srv := startServe(t, nil)
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, resilSize)
	rand.Read(data)
	src := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, pw, src, sha256.Sum256(data)
}

func peerArgs(cmd, hub, pw, state string, rest ...string) []string {
	return append([]string{cmd, "--hub", hub, "--ice-loopback", "--password-file", pw, "--state-dir", state}, rest...)
}

// startPair starts `tryst send src` and `tryst receive CODE` into out, each
// with a state directory of its own; it returns them and the code.
func startPair(ctx context.Context, t *testing.T, hub, pw, src, out string) (send, recv *peerProcess, code, recvState string) {
	t.Helper()
	send = startPeer(t, "send", peerArgs("send", hub, pw, t.TempDir(), src)...)
	code = strings.TrimPrefix(send.line(ctx, "code: "), "code: ")
	recvState = t.TempDir()
	recv = startPeer(t, "receive", peerArgs("receive", hub, pw, recvState, "--out", out, code)...)
	return send, recv, code, recvState
}

func checkFile(t *testing.T, path string, want [32]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(b) != want {
		t.Fatalf("%s: SHA-256 differs from the file sent", path)
	}
}

// onlyFile checks that out holds exactly the received file: no .part, no
// second copy.
func onlyFile(t *testing.T, out string) {
	t.Helper()
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "payload.bin" {
		t.Errorf("%s holds %v, want only payload.bin", out, names)
	}
}

// TestResilHubKilledDuringTransfer: kill -9 of the hub during a direct
// transfer between two processes does not stop it: it completes, verified,
// and both say that the hub is unreachable while they are still connected.
func TestResilHubKilledDuringTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resilTimeout)
	defer cancel()
	srv, pw, src, sum := resilSetup(t)
	out := t.TempDir()
	send, recv, _, _ := startPair(ctx, t, srv.Addrs.Hub, pw, src, out)
	recv.line(ctx, "* connected: direct")
	recv.progress(ctx, 10)
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peerProcess{send, recv} {
		p.line(ctx, "lost the connection to the hub; still connected to the other side")
	}
	if code := send.exited(ctx); code != 0 {
		t.Fatalf("send exited %d\n%s", code, send.out.String())
	}
	if code := recv.exited(ctx); code != 0 {
		t.Fatalf("receive exited %d\n%s", code, recv.out.String())
	}
	checkFile(t, filepath.Join(out, "payload.bin"), sum)
	onlyFile(t, out)
	send.line(ctx, "* sent payload.bin (67.1 MB), verified by the receiver")
	recv.line(ctx, "SHA-256 verified")
	for _, p := range []*peerProcess{send, recv} {
		if s := p.out.String(); strings.Contains(s, "failed to") || strings.Contains(s, "dial tcp") {
			t.Errorf("%s printed a raw network error:\n%s", p.name, s)
		}
	}
}

// TestResilReceiverKilledAndRerun: kill -9 of the receiver at about half;
// the same `tryst receive CODE` run again comes back to the room with the
// stored resume token and continues the .part from its verified length. The
// sender says where it resumes: less than 60 % of the file is sent again.
func TestResilReceiverKilledAndRerun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resilTimeout)
	defer cancel()
	srv, pw, src, sum := resilSetup(t)
	out := t.TempDir()
	send, recv, code, state := startPair(ctx, t, srv.Addrs.Hub, pw, src, out)
	recv.progress(ctx, 50)
	if err := recv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	recv.exited(ctx)
	if _, err := os.Stat(filepath.Join(out, "payload.bin.part")); err != nil {
		t.Fatalf("no .part after the kill: %v", err)
	}
	again := startPeer(t, "receive again", peerArgs("receive", srv.Addrs.Hub, pw, state, "--out", out, code)...)
	again.line(ctx, "back in room "+code)
	at := send.line(ctx, "* resuming payload.bin at ")
	var mb float64
	if _, err := fmt.Sscanf(strings.TrimPrefix(at, "* resuming payload.bin at "), "%f MB", &mb); err != nil {
		t.Fatalf("resume line %q: %v", at, err)
	}
	resent := float64(resilSize) - mb*1e6
	t.Logf("receiver killed at about half; the rerun resumed at %.1f MB: %.1f MB (%.0f%% of the file) sent again",
		mb, resent/1e6, 100*resent/resilSize)
	if resent >= 0.6*resilSize {
		t.Errorf("%.0f bytes sent again, want less than 60%% of %d", resent, resilSize)
	}
	if code := send.exited(ctx); code != 0 {
		t.Fatalf("send exited %d\n%s", code, send.out.String())
	}
	if code := again.exited(ctx); code != 0 {
		t.Fatalf("receive again exited %d\n%s", code, again.out.String())
	}
	checkFile(t, filepath.Join(out, "payload.bin"), sum)
	onlyFile(t, out)
	if entries, _ := os.ReadDir(filepath.Join(state, "rooms")); len(entries) != 0 {
		t.Errorf("state left after the room ended: %v", entries)
	}
}

// TestResilReceiverInterrupted: Ctrl-C of the receiver is an explicit
// leave: both sides say the room is closed, the receiver says that it left
// (not that the sender left without sending), both exit non-zero since the
// file was not delivered, and no state is kept for a rerun.
func TestResilReceiverInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resilTimeout)
	defer cancel()
	srv, pw, src, _ := resilSetup(t)
	out := t.TempDir()
	send, recv, _, state := startPair(ctx, t, srv.Addrs.Hub, pw, src, out)
	recv.progress(ctx, 10)
	if err := recv.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := recv.exited(ctx); code != 1 {
		t.Errorf("receive exited %d after Ctrl-C, want 1", code)
	}
	recv.line(ctx, "tryst: interrupted: you left the room, and it is closed (nothing to resume)")
	if s := recv.out.String(); strings.Contains(s, "without sending") {
		t.Errorf("receive blamed the sender:\n%s", s)
	}
	if code := send.exited(ctx); code != 1 {
		t.Errorf("send exited %d, want 1", code)
	}
	send.line(ctx, "* the other side left; the room is closed")
	send.line(ctx, "tryst: the receiver left the room before the files were delivered")
	if entries, _ := os.ReadDir(filepath.Join(state, "rooms")); len(entries) != 0 {
		t.Errorf("state left after Ctrl-C: %v", entries)
	}
}

// TestResilSenderKilledAndRerun: kill -9 of the sender; `tryst send` run
// again with the same file comes back to its room (its state is keyed by
// the hub and the files' absolute paths), offers the file under the same
// id, and the receiver, which kept running, continues from what it has.
func TestResilSenderKilledAndRerun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resilTimeout)
	defer cancel()
	srv, pw, src, sum := resilSetup(t)
	out := t.TempDir()
	sendState := t.TempDir()
	send := startPeer(t, "send", peerArgs("send", srv.Addrs.Hub, pw, sendState, src)...)
	code := strings.TrimPrefix(send.line(ctx, "code: "), "code: ")
	recv := startPeer(t, "receive", peerArgs("receive", srv.Addrs.Hub, pw, t.TempDir(), "--out", out, code)...)
	recv.progress(ctx, 30)
	if err := send.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	send.exited(ctx)
	again := startPeer(t, "send again", peerArgs("send", srv.Addrs.Hub, pw, sendState, src)...)
	if got := strings.TrimPrefix(again.line(ctx, "code: "), "code: "); got != code {
		t.Errorf("the rerun is in room %s, want %s", got, code)
	}
	at := again.line(ctx, "* resuming payload.bin at ")
	t.Logf("sender killed at about 30%%; the rerun resumed at %s", strings.TrimPrefix(at, "* resuming payload.bin at "))
	if code := again.exited(ctx); code != 0 {
		t.Fatalf("send again exited %d\n%s", code, again.out.String())
	}
	if code := recv.exited(ctx); code != 0 {
		t.Fatalf("receive exited %d\n%s", code, recv.out.String())
	}
	checkFile(t, filepath.Join(out, "payload.bin"), sum)
	onlyFile(t, out)
}
