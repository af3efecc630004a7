package transfer

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/proc"
	"github.com/tryst-chat/tryst/internal/server"
	"github.com/tryst-chat/tryst/turnserver"
)

// relayProcess is `tryst serve`, run from Config.Executable as a child
// process: the hub and TURN relay of the loopback scenarios.
//
// Why a process: a relay is a separate server in every deployment, and in
// the benchmark's own process it would share the peers' Go scheduler. Its
// data plane keeps a P while traffic flows (turnserver/internal/dataplane),
// which on a 2-CPU machine left the two peers one P between them: relayed
// was 47-50 % of direct in-process, 58-70 % with the relay as a process on
// the same two CPUs (docs/BENCHMARKS.md).
type relayProcess struct {
	cmd    *exec.Cmd
	secret []byte       // signs the TURN credentials the benchmark mints
	addrs  server.Addrs // from its --ready-file; pprof is beside Metrics

	mu      sync.Mutex
	logTail []string // last lines of its log, for errors
	logDone chan struct{}
	exited  chan struct{} // closed once Wait returned
	waitErr error
}

// relayLogLines is how many of the relay's last log lines an error quotes.
const relayLogLines = 20

// RelayReadyFile is where the relay must write its addresses, as serve's
// --ready-file does: its fd 3, the first of cmd.ExtraFiles, the write end
// of a pipe.
const RelayReadyFile = "/dev/fd/3"

// relayStartTimeout bounds the wait for the relay's addresses.
const relayStartTimeout = 30 * time.Second

// startRelayProcess starts `cfg.Executable serve cfg.RelayArgs...`,
// restricted to cpus unless cpus is empty, and waits until it serves.
func startRelayProcess(ctx context.Context, cfg Config, cpus []int) (*relayProcess, error) {
	exe := cfg.Executable
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret := hex.EncodeToString(raw[:])
	cmd := exec.Command(exe, append([]string{"serve"}, cfg.RelayArgs...)...)
	cmd.Env = relayEnv(cfg.RelayEnv, secret)
	proc.DieWithParent(cmd)
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	defer readyR.Close()
	cmd.ExtraFiles = []*os.File{readyW} // fd 3 = RelayReadyFile
	stderr, err := cmd.StderrPipe()
	if err == nil {
		if len(cpus) > 0 {
			err = proc.StartOnCPUs(cmd, cpus)
		} else {
			err = cmd.Start()
		}
	}
	// The child has its own copy: once it exits, the read end sees EOF.
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("relay: start %s serve: %w", exe, err)
	}
	r := &relayProcess{cmd: cmd, secret: []byte(secret), logDone: make(chan struct{}), exited: make(chan struct{})}
	go r.readLog(bufio.NewScanner(stderr))
	go func() {
		<-r.logDone // Wait closes the pipe: read it to the end first
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()
	if r.addrs, err = readRelayAddrs(ctx, readyR); err != nil {
		cerr := r.close()
		return nil, fmt.Errorf("relay: serve did not report its addresses: %w (exit: %v)\n%s", err, cerr, r.logs())
	}
	return r, nil
}

// readRelayAddrs reads the relay's --ready-file line from the pipe: a
// blocking read that ends with the line, at EOF when the relay exits
// without writing it, or when ctx or relayStartTimeout end.
func readRelayAddrs(ctx context.Context, ready *os.File) (server.Addrs, error) {
	ctx, cancel := context.WithTimeout(ctx, relayStartTimeout)
	defer cancel()
	// A pipe from os.Pipe is pollable: the deadline wakes the read.
	stop := context.AfterFunc(ctx, func() { _ = ready.SetReadDeadline(time.Now()) })
	defer stop()
	var a server.Addrs
	err := json.NewDecoder(ready).Decode(&a)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil && (a.Hub == "" || a.TURNUDP == "" || a.Metrics == "") {
		err = fmt.Errorf("incomplete addresses %+v", a)
	}
	return a, err
}

// relayEnv is environ with secret as the relay's TURN secret, which stays
// out of argv.
func relayEnv(environ []string, secret string) []string {
	env := slices.DeleteFunc(slices.Clone(environ), func(kv string) bool {
		return strings.HasPrefix(kv, "TRYST_TURN_SECRET=")
	})
	return append(env, "TRYST_TURN_SECRET="+secret)
}

// readLog keeps the relay's last log lines.
func (r *relayProcess) readLog(sc *bufio.Scanner) {
	defer close(r.logDone)
	for sc.Scan() {
		r.mu.Lock()
		r.logTail = append(r.logTail, sc.Text())
		if len(r.logTail) > relayLogLines {
			r.logTail = r.logTail[1:]
		}
		r.mu.Unlock()
	}
}

func (r *relayProcess) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logTail, "\n")
}

// credential mints TURN REST credentials the relay accepts.
func (r *relayProcess) credential(id string) (username, password string) {
	return turnserver.MintCredential(r.secret, id, time.Hour, time.Now())
}

// close stops the relay as an operator would (SIGTERM, graceful drain) and
// kills it if it does not exit in time. It returns the exit error of a
// relay that failed.
func (r *relayProcess) close() error {
	select {
	case <-r.exited:
	default:
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = r.cmd.Process.Kill()
		}
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	}
	var exit *exec.ExitError
	if r.waitErr != nil && !errors.As(r.waitErr, &exit) {
		return r.waitErr
	}
	if exit != nil && !exit.Success() {
		return fmt.Errorf("relay exited with %v:\n%s", exit, r.logs())
	}
	return nil
}
