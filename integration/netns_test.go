package integration

// TestServeREADMECommandInNetns runs the built binary exactly as the README
// says, `tryst serve` with no flags, on its real default ports. A private
// network namespace (`unshare -rn`: a user and a network namespace, so it
// needs no root) makes those ports free and keeps the test off the host's
// network. The checks run inside the namespace too: the test binary re-runs
// itself there as a helper (netnsHelper, started from TestMain), which
// starts tryst, talks to it and stops it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/stun/v3"

	"github.com/tryst-chat/tryst/internal/testenv"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

const (
	// netnsHelperEnv makes the test binary run netnsHelper with the tryst
	// binary it names instead of the tests.
	netnsHelperEnv = "TRYST_TEST_NETNS_HELPER"
	// netnsIPv6Env is "on" or "off": whether the namespace keeps IPv6.
	netnsIPv6Env = "TRYST_TEST_NETNS_IPV6"
	// netnsBudget bounds one helper run: start, checks and shutdown.
	netnsBudget = 15 * time.Second
)

func TestServeREADMECommandInNetns(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	unshare := testenv.Tool(t, "unshare", "util-linux")
	testenv.Tool(t, "ip", "iproute2") // used by the helper inside the namespace
	if out, err := exec.Command(unshare, "-rn", "true").CombinedOutput(); err != nil {
		// Present but not allowed (user namespaces disabled, or a
		// seccomp profile): a CI machine must allow it.
		msg := fmt.Sprintf("unshare -rn does not work here: %v: %s", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := trystBinary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, ipv6 := range []string{"on", "off"} {
		t.Run("ipv6-"+ipv6, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), netnsBudget+5*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, unshare, "-rn", self)
			cmd.Env = append(os.Environ(), netnsHelperEnv+"="+bin, netnsIPv6Env+"="+ipv6)
			// unshare execs the helper in place, so the helper is the
			// child that dies with this process; tryst dies with it.
			dieWithTest(cmd)
			out, err := cmd.CombinedOutput()
			t.Logf("helper in the namespace (IPv6 %s):\n%s", ipv6, out)
			if err != nil {
				t.Fatalf("helper: %v", err)
			}
		})
	}
}

// netnsHelper runs inside a fresh network namespace: it sets up loopback
// (with or without IPv6), starts `bin serve` with no flags and no TRYST_
// environment, checks every default endpoint, then stops it with SIGTERM,
// which must exit 0. It reports progress on out.
func netnsHelper(bin string, ipv6 bool, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), netnsBudget)
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	if !ipv6 {
		// sysctl -w, without needing procps: /proc/sys/net is this
		// namespace's.
		for _, dev := range []string{"all", "default", "lo"} {
			f := "/proc/sys/net/ipv6/conf/" + dev + "/disable_ipv6"
			if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
				return fmt.Errorf("disable IPv6: %w", err)
			}
		}
	}
	if b, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, bytes.TrimSpace(b))
	}
	// Whether ::1 exists is what decides the IPv6 checks: with IPv6 on it
	// must (unless the kernel has no IPv6 at all), with it off it must not.
	ln6, err := net.Listen("tcp6", "[::1]:0")
	has6 := err == nil
	if has6 {
		ln6.Close()
	}
	_, statErr := os.Stat("/proc/sys/net/ipv6")
	switch {
	case !ipv6 && has6:
		return errors.New("IPv6 is still up after disable_ipv6=1")
	case ipv6 && !has6 && statErr == nil:
		return fmt.Errorf("the namespace has IPv6 but no ::1: %v", err)
	case ipv6 && !has6:
		logf("the kernel has no IPv6: IPv6 checks skipped")
	}

	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRYST_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s serve: %w", bin, err)
	}
	// Until it is stopped deliberately, tryst must not outlive a failure.
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	// tryst logs "tryst serving" once every listener is open.
	var logs logTail
	ready := make(chan bool, 1)
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			logs.add(sc.Bytes())
			if !seen && strings.Contains(sc.Text(), `msg="tryst serving"`) {
				seen = true
				ready <- true
			}
		}
		if !seen {
			ready <- false
		}
	}()
	fail := func(err error) error {
		return fmt.Errorf("%w\ntryst's log:\n%s", err, logs.String())
	}
	select {
	case ok := <-ready:
		if !ok {
			err := cmd.Wait()
			stopped = true
			return fail(fmt.Errorf("tryst serve exited before serving: %v", err))
		}
	case <-ctx.Done():
		return fail(errors.New("tryst serve did not start in time"))
	}
	logf("tryst serve is up")

	var errs []error
	check := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			logf("FAIL %s: %v", what, err)
			return
		}
		logf("ok   %s", what)
	}
	// No proxy from the environment: the namespace has only loopback.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	httpGet := func(url string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return string(b), err
	}
	hosts := []string{"127.0.0.1"}
	if has6 {
		hosts = append(hosts, "::1")
	}
	for _, host := range hosts {
		check("GET /healthz on "+net.JoinHostPort(host, "8080"), func() error {
			body, err := httpGet("http://" + net.JoinHostPort(host, "8080") + "/healthz")
			if err == nil && body != "ok\n" {
				err = fmt.Errorf("answered %q", body)
			}
			return err
		}())
		for _, proto := range []string{"udp", "tcp"} {
			server := netip.AddrPortFrom(netip.MustParseAddr(host), 3478)
			check(fmt.Sprintf("STUN Binding over %s to %s", proto, server), stunCheck(ctx, proto, server))
		}
	}
	check("GET /metrics on 127.0.0.1:9464", func() error {
		body, err := httpGet("http://127.0.0.1:9464/metrics")
		if err == nil && !strings.Contains(body, "\ntryst_") {
			err = errors.New("no tryst_ series")
		}
		return err
	}())

	wsc, _, err := hubconn.Dial(ctx, "ws://127.0.0.1:8080/v1/ws", nil)
	check("WebSocket to ws://127.0.0.1:8080/v1/ws", err)
	if err == nil {
		defer wsc.Close()
		var f proto.Frame
		err := wsc.Send(ctx, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
		if err == nil {
			f, err = wsc.Next(ctx)
		}
		if err == nil && (f.Type != proto.TypeCreated || f.Room == "") {
			b, _ := json.Marshal(f)
			err = fmt.Errorf("answered %s", b)
		}
		check("create gets created", err)
	}

	// The README's deployment, checked the way an operator would; the
	// relayed round trip is skipped, as the default policy refuses loopback
	// peers, but nothing fails.
	doctor := exec.CommandContext(ctx, bin, "doctor", "--hub", "http://127.0.0.1:8080")
	doctor.Env = cmd.Env
	doc, err := doctor.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, doc)
	}
	check("tryst doctor --hub http://127.0.0.1:8080", err)

	// SIGTERM: a graceful drain, then exit status 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fail(fmt.Errorf("SIGTERM: %w", err))
	}
	if wsc != nil {
		// The hub tells live clients to go elsewhere (1001); the
		// connection's reader finishes the close handshake instead of
		// holding up the drain.
		_, err := wsc.Next(ctx)
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			check("WebSocket told to go away on SIGTERM", fmt.Errorf("got %v", err))
		}
	}
	waited := make(chan error, 1)
	go func() { <-logsDone; waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		stopped = true
		check("exit status 0 after SIGTERM", err)
	case <-ctx.Done():
		return fail(errors.New("tryst serve did not exit after SIGTERM"))
	}
	if len(errs) > 0 {
		return fail(errors.Join(errs...))
	}
	return nil
}

// stunCheck sends a STUN Binding request to server over network ("udp" or
// "tcp") and wants a success whose XOR-MAPPED-ADDRESS is the local address
// it came from (on loopback there is no NAT).
func stunCheck(ctx context.Context, network string, server netip.AddrPort) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server.String())
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	mapped, err := stunBinding(conn, network == "tcp")
	if err != nil {
		return err
	}
	if local := netip.MustParseAddrPort(conn.LocalAddr().String()); mapped != local {
		return fmt.Errorf("XOR-MAPPED-ADDRESS %s, want %s", mapped, local)
	}
	return nil
}

// stunHeaderSize is the STUN message header: type, length, cookie, id.
const stunHeaderSize = 20

// stunBinding does a STUN Binding on a connected socket. Over a stream
// (RFC 5389 section 7.2.2) messages come back to back, each framed by its
// own header; over UDP the answer is one datagram.
func stunBinding(conn net.Conn, stream bool) (netip.AddrPort, error) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if _, err := conn.Write(req.Raw); err != nil {
		return netip.AddrPort{}, err
	}
	var buf []byte
	if stream {
		buf = make([]byte, stunHeaderSize)
		if _, err := io.ReadFull(conn, buf); err != nil {
			return netip.AddrPort{}, fmt.Errorf("read answer: %w", err)
		}
		n := binary.BigEndian.Uint16(buf[2:4])
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(conn, buf[stunHeaderSize:]); err != nil {
			return netip.AddrPort{}, fmt.Errorf("read answer: %w", err)
		}
	} else {
		buf = make([]byte, 1500)
		n, err := conn.Read(buf)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("read answer: %w", err)
		}
		buf = buf[:n]
	}
	res := &stun.Message{Raw: buf}
	if err := res.Decode(); err != nil {
		return netip.AddrPort{}, fmt.Errorf("decode answer: %w", err)
	}
	if res.TransactionID != req.TransactionID {
		return netip.AddrPort{}, errors.New("answer to another transaction")
	}
	if res.Type != stun.BindingSuccess {
		return netip.AddrPort{}, fmt.Errorf("answer is %s", res.Type)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(res); err != nil {
		return netip.AddrPort{}, fmt.Errorf("answer: %w", err)
	}
	ip, ok := netip.AddrFromSlice(xor.IP)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("answer: bad address %v", xor.IP)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(xor.Port)), nil
}
