package main

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

	"github.com/tryst-chat/tryst/turnserver"
)

// relayProcess is `tryst serve` run from this same binary as a child
// process: the hub and TURN relay of bench transfer's loopback scenarios.
//
// Why a process: a relay is a separate server in every deployment, and in
// the benchmark's own process it would share the peers' Go scheduler. Its
// data plane keeps a P while traffic flows (turnserver/dataplane_linux.go),
// which on a 2-CPU machine left the two peers one P between them: relayed
// was 47-50 % of direct in-process, 58-70 % with the relay as a process on
// the same two CPUs (docs/BENCHMARKS.md).
type relayProcess struct {
	cmd     *exec.Cmd
	secret  []byte // signs the TURN credentials the benchmark mints
	hubURL  string
	turnUDP string // host:port
	metrics string // URL of its /metrics; /debug/pprof/ is on the same listener

	mu      sync.Mutex
	logTail []string // last lines of its log, for errors
	logDone chan struct{}
	exited  chan struct{} // closed once Wait returned
	waitErr error
}

// relayLogLines is how many of the relay's last log lines an error quotes.
const relayLogLines = 20

// startRelayProcess starts `tryst serve` on loopback ports chosen by the
// kernel, restricted to cpus unless cpus is empty, and waits until it
// serves.
func startRelayProcess(ctx context.Context, cpus []int) (*relayProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("relay: find own binary: %w", err)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secretText := hex.EncodeToString(raw[:])
	secrets, err := turnserver.ParseSecrets([]byte(secretText))
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	cmd := exec.Command(exe, "serve",
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0",
		"--public-ip", "127.0.0.1", "--allow-loopback-peers", "--turn-user-quota", "1000",
		// Every benchmark client is on 127.0.0.1: the per-address limits,
		// meant for the Internet, would measure themselves.
		"--turn-allocations-per-ip", "-1", "--credentials-per-ip", "-1",
		"--drain-timeout", "2s", "--log-format", "json")
	cmd.Env = relayEnv(os.Environ(), secretText)
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if len(cpus) > 0 {
		err = startOnCPUs(cmd, cpus)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("relay: start %s serve: %w", exe, err)
	}
	r := &relayProcess{cmd: cmd, secret: secrets[0], logDone: make(chan struct{}), exited: make(chan struct{})}
	ready := make(chan [3]string, 1)
	go r.readLog(bufio.NewScanner(stderr), ready)
	go func() {
		<-r.logDone // Wait closes the pipe: read it to the end first
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()

	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case addrs := <-ready:
		r.hubURL, r.turnUDP, r.metrics = addrs[0], addrs[1], addrs[2]
		return r, nil
	case <-r.exited:
		return nil, fmt.Errorf("relay: serve exited (%v) before serving:\n%s", r.waitErr, r.logs())
	case <-wait.Done():
		r.close()
		return nil, fmt.Errorf("relay: serve did not start: %w\n%s", wait.Err(), r.logs())
	}
}

// relayEnv is the benchmark's environment without the settings serve reads
// from it (a TRYST_LISTEN of the user's must not move the relay), plus the
// TURN secret, which stays out of argv.
func relayEnv(environ []string, secret string) []string {
	drop := []string{"TRYST_TURN_SECRET"}
	for _, name := range settingNames(serveFlags(newServeOptions())) {
		drop = append(drop, envName(name))
	}
	env := slices.DeleteFunc(slices.Clone(environ), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(drop, name)
	})
	return append(env, "TRYST_TURN_SECRET="+secret)
}

// readLog keeps the relay's last log lines and reports the hub, TURN and
// metrics addresses from its "tryst serving" line.
func (r *relayProcess) readLog(sc *bufio.Scanner, ready chan<- [3]string) {
	defer close(r.logDone)
	for sc.Scan() {
		line := sc.Text()
		r.mu.Lock()
		r.logTail = append(r.logTail, line)
		if len(r.logTail) > relayLogLines {
			r.logTail = r.logTail[1:]
		}
		r.mu.Unlock()
		var rec struct {
			Msg     string `json:"msg"`
			Hub     string `json:"hub"`
			TurnUDP string `json:"turn_udp"`
			Metrics string `json:"metrics"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "tryst serving" {
			select {
			case ready <- [3]string{rec.Hub, rec.TurnUDP, rec.Metrics}:
			default:
			}
		}
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
