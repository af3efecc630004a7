package turnserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/internal/testenv"
	"github.com/tryst-chat/tryst/metrics"
)

// Interoperability with coturn's independent client tools (Debian package
// "coturn"). Without them the tests skip, except under CI=true.

// startTurnutilsPeer runs coturn's UDP echo peer on 127.0.0.1 and returns its port.
func startTurnutilsPeer(t *testing.T) int {
	t.Helper()
	bin := testenv.Tool(t, "turnutils_peer", "coturn")
	// Pick a free port; the small window before the peer binds it is harmless.
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	_ = probe.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})

	// Poll until the external process echoes (bounded by a deadline).
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		_, _ = c.Write([]byte("ping"))
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "ping" {
			return port
		}
	}
	t.Fatal("turnutils_peer did not start")
	return 0
}

var (
	reTotals = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	reLost   = regexp.MustCompile(`Total lost packets (\d+) `)
)

func TestCoturnClientInterop(t *testing.T) {
	t.Parallel()
	uclient := testenv.Tool(t, "turnutils_uclient", "coturn")
	peerPort := startTurnutilsPeer(t)
	// "rtcp": without -c, turnutils_uclient allocates RTP/RTCP pairs with
	// EVEN-PORT (R bit) and the RESERVATION-TOKEN it gets back.
	for _, transport := range []string{"udp", "tcp", "rtcp"} {
		t.Run(transport, func(t *testing.T) {
			secret := "interop-secret-" + transport
			s, m := startServer(t, func(c *Config) { c.Secrets = [][]byte{[]byte(secret)} })
			port := s.UDPAddr().(*net.UDPAddr).Port
			const msgs, clients, size = 40, 2, 300
			args := []string{"-W", secret, "-u", "interop", "-e", "127.0.0.1", "-r", strconv.Itoa(peerPort),
				"-p", strconv.Itoa(port), "-n", strconv.Itoa(msgs), "-m", strconv.Itoa(clients),
				"-l", strconv.Itoa(size), "-z", "5"}
			switch transport {
			case "udp":
				args = append(args, "-c")
			case "tcp":
				args = append(args, "-c", "-t")
			}
			args = append(args, "127.0.0.1")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("turnutils_uclient %s: %v\n%s", strings.Join(args, " "), err, tail(out))
			}
			totals := reTotals.FindAllSubmatch(out, -1)
			lost := reLost.FindSubmatch(out)
			if len(totals) == 0 || lost == nil {
				t.Fatalf("unexpected turnutils_uclient output:\n%s", tail(out))
			}
			last := totals[len(totals)-1]
			sent, _ := strconv.Atoi(string(last[1]))
			recv, _ := strconv.Atoi(string(last[2]))
			if sent != msgs*clients || recv != sent || string(lost[1]) != "0" {
				t.Fatalf("sent %d received %d lost %s, want %d each and no loss\n%s", sent, recv, lost[1], msgs*clients, tail(out))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for _, dir := range []string{metrics.DirectionClientToPeer, metrics.DirectionPeerToClient} {
				if got := testutil.ToFloat64(m.RelayPackets.WithLabelValues(dir)); got != float64(sent) {
					t.Errorf("packets %s = %v, want %d", dir, got, sent)
				}
				if got := testutil.ToFloat64(m.RelayBytes.WithLabelValues(dir)); got != float64(sent*size) {
					t.Errorf("bytes %s = %v, want %d", dir, got, sent*size)
				}
			}
		})
	}
}

func TestCoturnClientWrongSecret(t *testing.T) {
	t.Parallel()
	uclient := testenv.Tool(t, "turnutils_uclient", "coturn")
	s, m := startServer(t, nil)
	port := s.UDPAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, uclient, "-W", "not-the-secret", "-u", "x", "-e", "127.0.0.1",
		"-p", strconv.Itoa(port), "-n", "1", "127.0.0.1").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("turnutils_uclient with a wrong secret: err=%v\n%s", err, tail(out))
	}
	if got := testutil.ToFloat64(m.AuthFailures.WithLabelValues(metrics.AuthBadMAC)); got < 1 {
		t.Errorf("auth_failures{bad_mac} = %v", got)
	}
}

func TestCoturnSTUNClient(t *testing.T) {
	t.Parallel()
	stunclient := testenv.Tool(t, "turnutils_stunclient", "coturn")
	s, m := startServer(t, nil)
	port := s.UDPAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, stunclient, "-p", strconv.Itoa(port), "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("turnutils_stunclient: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "UDP reflexive addr: 127.0.0.1:") {
		t.Fatalf("no reflexive address:\n%s", out)
	}
	if got := testutil.ToFloat64(m.STUNBindingRequests); got < 1 {
		t.Errorf("binding counter = %v", got)
	}
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 3000 {
		s = "...\n" + s[len(s)-3000:]
	}
	return fmt.Sprint(s)
}
