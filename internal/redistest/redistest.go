// Package redistest runs a real redis-server for tests, on a loopback
// port, in a temporary directory.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// Server is a running redis-server.
type Server struct {
	Addr string // 127.0.0.1:PORT
	Dir  string // its working directory (dump and append-only files)
	cmd  *exec.Cmd
	args []string
	bin  string
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Start runs redis-server until the test ends. Extra arguments follow the
// defaults (no persistence: pass "--appendonly", "yes" for a server whose
// rooms survive a restart).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := testenv.Tool(t, "redis-server", "redis-server")
	s := &Server{Dir: t.TempDir(), bin: bin}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.Dir,
			"--save", "", "--appendonly", "no", "--protected-mode", "no"}, extra...)
		if err = s.start(); err == nil {
			break
		}
		if attempt == 4 {
			t.Fatalf("redis-server: %v", err)
		}
	}
	t.Cleanup(s.Kill)
	return s
}

// start runs the server and waits until it says it is ready.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var last string
		for sc.Scan() {
			last = sc.Text()
			if strings.Contains(last, "Ready to accept connections") {
				ready <- nil
				for sc.Scan() {
				}
				return
			}
		}
		ready <- fmt.Errorf("exited before it was ready: %s", last)
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Wait()
			return err
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("not ready within 30 s")
	}
	s.cmd = cmd
	return nil
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server (SIGTERM: it saves what persistence keeps) and
// starts it again on the same port and directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(interrupt)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := s.start()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redis-server restart: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
