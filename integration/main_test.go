package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/internal/server"
)

func TestMain(m *testing.M) {
	if bin := os.Getenv(netnsHelperEnv); bin != "" {
		// Inside `unshare -rn` (TestServeREADMECommandInNetns).
		if err := netnsHelper(bin, os.Getenv(netnsIPv6Env) == "on", os.Stdout); err != nil {
			fmt.Println("FAIL:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		removeBuiltBinary()
		os.Exit(code)
	}))
}

// The binary is built once per test run, with the race detector, since a
// live test is the place where a race between goroutines of a real
// process shows; removed by TestMain.
var testBinary struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// trystBinary compiles ./cmd/tryst with a stamped version, once per run.
func trystBinary(t testing.TB) string {
	t.Helper()
	testBinary.once.Do(func() {
		if testBinary.dir, testBinary.err = os.MkdirTemp("", "tryst-test-bin-"); testBinary.err != nil {
			return
		}
		testBinary.bin = filepath.Join(testBinary.dir, "tryst")
		cmd := exec.Command("go", "build", "-race", "-ldflags", "-X main.version=v0.0.0-test",
			"-o", testBinary.bin, "../cmd/tryst")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			testBinary.err = fmt.Errorf("go build: %w", err)
		}
	})
	if testBinary.err != nil {
		t.Fatal(testBinary.err)
	}
	return testBinary.bin
}

func removeBuiltBinary() {
	if testBinary.dir != "" {
		os.RemoveAll(testBinary.dir)
	}
}

// serveProcess is a `tryst serve` process started by startServe.
type serveProcess struct {
	Addrs server.Addrs
	cmd   *exec.Cmd
	logs  *logTail
}

// startServe runs the built binary's `serve` with every listener on
// 127.0.0.1:0, then args (a later flag wins), and env added to the
// environment. It returns once --ready-file has named the bound addresses
// (read from a pipe: no log parsing, no polling). The process is killed
// when the test ends, and its log is shown if the test failed.
func startServe(t *testing.T, env []string, args ...string) *serveProcess {
	t.Helper()
	all := append([]string{"serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--turn-listen", "127.0.0.1:0", "--turn-tls-listen", "127.0.0.1:0",
		"--ready-file", "/dev/fd/3"}, args...)
	cmd := exec.Command(trystBinary(t), all...)
	dieWithTest(cmd)
	// serve keeps its hub key in a state directory: the test's own, so that
	// no run writes into the user's ~/.local/state.
	cmd.Env = append(os.Environ(), append([]string{"XDG_STATE_HOME=" + t.TempDir()}, env...)...)
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer readyR.Close()
	cmd.ExtraFiles = []*os.File{readyW}
	logs := &logTail{done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readyW.Close()
	go logs.collect(stderr)
	p := &serveProcess{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-logs.done
		if t.Failed() {
			t.Logf("tryst serve log:\n%s", logs.String())
		}
	})
	// The pipe ends with EOF if serve exits before it is ready.
	if err := json.NewDecoder(readyR).Decode(&p.Addrs); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		<-logs.done
		t.Fatalf("tryst serve did not report its addresses: %v\n%s", err, logs.String())
	}
	return p
}

// logTail keeps the lines a process writes, for one goroutine to add
// and another to read.
type logTail struct {
	mu   sync.Mutex
	b    strings.Builder
	done chan struct{} // closed when collect returns
}

func (l *logTail) collect(r io.Reader) {
	defer close(l.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.add(sc.Bytes())
	}
}

// add appends one line.
func (l *logTail) add(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(line)
	l.b.WriteByte('\n')
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
