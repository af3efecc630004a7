package doctor_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/doctor"
	"github.com/tryst-chat/tryst/internal/server"
	"github.com/tryst-chat/tryst/internal/testenv"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/turnserver"
)

// doctorChecks are the checks every run reports, in this order.
var doctorChecks = []string{"websocket", "ice", "clock", "stun", "turn-udp", "turn-tcp", "turn-tls", "relay-address", "round-trip"}

// startServer runs what `tryst serve` runs, in-process with every listener
// on 127.0.0.1:0, one relay socket and a known TURN secret, changed by mod;
// it stops when the test ends.
func startServer(t *testing.T, mod func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.MetricsListen, cfg.TURNListen, cfg.TURNTLSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TURNSecret = "doctor-test-secret"
	cfg.TURNSockets = 1
	cfg.DrainDelay = 0 // no load balancer to tell: stop at once
	if mod != nil {
		mod(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, s.Run)
	return s
}

// startDoctorServer runs a server that lets the round trip through (loopback
// peers allowed), with a self-signed certificate when tlsDir is not empty,
// and returns the hub URL: https:// with a certificate.
func startDoctorServer(t *testing.T, tlsDir string) string {
	t.Helper()
	return startServer(t, func(c *server.Config) {
		c.AllowLoopbackPeers = true
		if tlsDir != "" {
			c.TLSCert, c.TLSKey = filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
			testenv.WriteCert(t, c.TLSCert, c.TLSKey, 1)
		}
	}).Addrs().Hub
}

// doctorRun runs the checks and wants every check reported once, in order,
// to OnResult as to the report.
func doctorRun(t *testing.T, cfg doctor.Config) doctor.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var started string
	var seen []doctor.Result
	cfg.OnStart = func(hub string) { started = hub }
	cfg.OnResult = func(r doctor.Result) { seen = append(seen, r) }
	rep, err := doctor.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("doctor %+v: %v", cfg, err)
	}
	t.Logf("doctor %s\n%s", cfg.Hub, render(rep))
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, doctorChecks) {
		t.Errorf("checks %q, want %q", names, doctorChecks)
	}
	if started != rep.Hub || !slices.Equal(seen, rep.Results) {
		t.Errorf("OnStart got %q, OnResult %+v; the report says %q, %+v", started, seen, rep.Hub, rep.Results)
	}
	return rep
}

// line is a result as `tryst doctor` prints it, hint and all, so that the
// assertions below read like its output.
func line(r doctor.Result) string {
	s := fmt.Sprintf("%s %s: %s", r.Status, r.Name, r.Detail)
	if r.Status == doctor.Fail && r.Hint != "" {
		s += "\n  hint: " + r.Hint
	}
	return s
}

func render(rep doctor.Report) string {
	var b strings.Builder
	for _, r := range rep.Results {
		b.WriteString(line(r) + "\n")
	}
	return b.String()
}

func wantDoctorCheck(t *testing.T, rep doctor.Report, name, status string, substrs ...string) {
	t.Helper()
	i := slices.IndexFunc(rep.Results, func(r doctor.Result) bool { return r.Name == name })
	if i < 0 {
		t.Errorf("%s: not reported\n%s", name, render(rep))
		return
	}
	r := rep.Results[i]
	if r.Status.String() != status {
		t.Errorf("%s: got %q, want %s\n%s", name, line(r), status, render(rep))
		return
	}
	for _, s := range substrs {
		if !strings.Contains(line(r), s) {
			t.Errorf("%s: %q does not mention %q", name, line(r), s)
		}
	}
}

func wantCounts(t *testing.T, rep doctor.Report, passed, failed, skipped int) {
	t.Helper()
	if p, f, s := rep.Count(doctor.Pass), rep.Count(doctor.Fail), rep.Count(doctor.Skip); p != passed || f != failed || s != skipped {
		t.Errorf("%d passed, %d failed, %d skipped; want %d, %d, %d\n%s", p, f, s, passed, failed, skipped, render(rep))
	}
}

func TestDoctorHealthy(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		hubURL := startDoctorServer(t, "")
		rep := doctorRun(t, doctor.Config{Hub: hubURL})
		for _, name := range doctorChecks {
			want := "PASS"
			if name == "turn-tls" {
				want = "SKIP" // no certificate, no turns: URL
			}
			wantDoctorCheck(t, rep, name, want)
		}
		wantDoctorCheck(t, rep, "round-trip", "PASS", "round trip")
		wantCounts(t, rep, 8, 0, 1)
		if rep.Hub != hubURL {
			t.Errorf("checked %q, want %q", rep.Hub, hubURL)
		}
		for _, r := range rep.Results {
			if r.Status == doctor.Pass && r.Duration <= 0 {
				t.Errorf("%s: ran for %v", r.Name, r.Duration)
			}
		}
	})
	t.Run("tls", func(t *testing.T) {
		dir := t.TempDir()
		hubURL := startDoctorServer(t, dir)
		for _, cfg := range []doctor.Config{{Hub: hubURL, CAFile: filepath.Join(dir, "cert.pem")}, {Hub: hubURL, Insecure: true}} {
			rep := doctorRun(t, cfg)
			for _, name := range doctorChecks {
				wantDoctorCheck(t, rep, name, "PASS")
			}
			wantDoctorCheck(t, rep, "websocket", "PASS", "wss://")
			wantDoctorCheck(t, rep, "turn-tls", "PASS", "relayed address 127.0.0.1:")
		}
		// Without a way to trust the certificate the very first check says why.
		rep := doctorRun(t, doctor.Config{Hub: hubURL})
		if rep.Count(doctor.Fail) == 0 {
			t.Fatalf("doctor trusted a self-signed certificate\n%s", render(rep))
		}
		wantDoctorCheck(t, rep, "websocket", "FAIL", "certificate", "--ca-file")
		wantDoctorCheck(t, rep, "stun", "SKIP")
	})
}

// TestDoctorDefaultPeerPolicy: against a local `tryst serve` with its
// default peer policy the relay refuses the loopback peer of the round trip;
// the doctor says why and how to get a local round trip, and passes.
func TestDoctorDefaultPeerPolicy(t *testing.T) {
	s := startServer(t, nil)
	rep := doctorRun(t, doctor.Config{Hub: s.Addrs().Hub})
	if rep.Count(doctor.Fail) != 0 {
		t.Fatalf("doctor failed a healthy local deployment\n%s", render(rep))
	}
	for _, name := range doctorChecks {
		switch name {
		case "turn-tls":
			wantDoctorCheck(t, rep, name, "SKIP")
		case "round-trip":
			wantDoctorCheck(t, rep, name, "SKIP", "CreatePermission for 127.0.0.1:", "refuses loopback peers by policy",
				"--allow-loopback-peers")
		default:
			wantDoctorCheck(t, rep, name, "PASS")
		}
	}
	wantCounts(t, rep, 7, 0, 2)
}

// doctorFakeDeployment serves a hub on 127.0.0.1 (httptest) whose ICE
// servers come from ice.
func doctorFakeDeployment(t *testing.T, ice func(host string) proto.ICEConfig) string {
	t.Helper()
	h, err := hub.New(hub.Config{ICE: ice})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return srv.URL
}

func doctorRelay(t *testing.T, mod func(*turnserver.Config)) *turnserver.Server {
	t.Helper()
	cfg := turnserver.Config{
		ListenAddr:         "127.0.0.1:0",
		Secrets:            [][]byte{[]byte("the relay's secret")},
		AllowLoopbackPeers: true,
		Sockets:            1,
	}
	if mod != nil {
		mod(&cfg)
	}
	ts, err := turnserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	return ts
}

// doctorICE hands out STUN and TURN over UDP and TCP at port, with
// credentials signed by secret.
func doctorICE(port int, secret []byte) func(string) proto.ICEConfig {
	return func(string) proto.ICEConfig {
		user, pass := turnserver.MintCredential(secret, "doctor", 10*time.Minute, time.Now())
		hp := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
			{URLs: []string{"stun:" + hp}},
			{URLs: []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}, Username: user, Credential: pass},
		}}
	}
}

func TestDoctorWrongSecret(t *testing.T) {
	ts := doctorRelay(t, nil)
	hubURL := doctorFakeDeployment(t, doctorICE(portOf(ts.UDPAddr()), []byte("the hub's other secret")))
	rep := doctorRun(t, doctor.Config{Hub: hubURL})
	if rep.Count(doctor.Fail) == 0 {
		t.Fatalf("doctor passed with a wrong secret\n%s", render(rep))
	}
	wantDoctorCheck(t, rep, "websocket", "PASS")
	wantDoctorCheck(t, rep, "stun", "PASS") // STUN needs no credential
	for _, name := range []string{"turn-udp", "turn-tcp"} {
		wantDoctorCheck(t, rep, name, "FAIL", "hint: the hub and the relay use different secrets", "--turn-secret-file", "static-auth-secret")
	}
	wantDoctorCheck(t, rep, "relay-address", "SKIP")
	wantDoctorCheck(t, rep, "round-trip", "SKIP")
}

func TestDoctorPrivateRelayAddress(t *testing.T) {
	// 10.9.8.7 is only advertised: the relay binds 127.0.0.1, and the
	// doctor must send nothing to the advertised address.
	secret := []byte("shared secret 0123456789")
	ts := doctorRelay(t, func(c *turnserver.Config) {
		c.PublicIP = netip.MustParseAddr("10.9.8.7")
		c.Secrets = [][]byte{secret}
	})
	hubURL := doctorFakeDeployment(t, doctorICE(portOf(ts.UDPAddr()), secret))

	rep := doctorRun(t, doctor.Config{Hub: hubURL})
	if rep.Count(doctor.Fail) != 0 {
		t.Fatalf("without ExpectPublic a private relay on a loopback hub is expected\n%s", render(rep))
	}
	wantDoctorCheck(t, rep, "turn-udp", "PASS", "10.9.8.7:")
	wantDoctorCheck(t, rep, "relay-address", "PASS", "10.9.8.7:")
	wantDoctorCheck(t, rep, "round-trip", "SKIP", "10.9.8.7", "private")

	rep = doctorRun(t, doctor.Config{Hub: hubURL, ExpectPublic: true})
	if rep.Count(doctor.Fail) == 0 {
		t.Fatalf("doctor passed a private relay address with ExpectPublic\n%s", render(rep))
	}
	wantDoctorCheck(t, rep, "relay-address", "FAIL", "10.9.8.7", "hint:", "--public-ip")
	wantDoctorCheck(t, rep, "round-trip", "SKIP", "10.9.8.7", "private")
}

// doctorClosedPort returns a 127.0.0.1 port on which nothing listens, over UDP
// and TCP.
func doctorClosedPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := portOf(u.LocalAddr())
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free UDP+TCP port")
	return 0
}

func TestDoctorClosedTURNPort(t *testing.T) {
	hubURL := doctorFakeDeployment(t, doctorICE(doctorClosedPort(t), []byte("any secret")))
	rep := doctorRun(t, doctor.Config{Hub: hubURL, Timeout: 2 * time.Second})
	wantDoctorCheck(t, rep, "websocket", "PASS")
	wantDoctorCheck(t, rep, "ice", "PASS")
	wantDoctorCheck(t, rep, "stun", "FAIL", "udp 127.0.0.1:", "3478/udp")
	wantDoctorCheck(t, rep, "turn-udp", "FAIL", "3478/udp")
	wantDoctorCheck(t, rep, "turn-tcp", "FAIL", "refused", "3478/tcp")
	wantDoctorCheck(t, rep, "turn-tls", "SKIP")
	wantDoctorCheck(t, rep, "relay-address", "SKIP")
	wantDoctorCheck(t, rep, "round-trip", "SKIP")
	wantCounts(t, rep, 3, 3, 3)
}

func TestDoctorAccessControl(t *testing.T) {
	dir := t.TempDir()
	secret := "access-token-secret-0123456789"
	secretFile := filepath.Join(dir, "token-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *server.Config) {
		c.TURNSecret = "" // generated, as with no TRYST_TURN_SECRET
		c.AllowLoopbackPeers = true
		c.TokenSecretFile = secretFile
	})
	hubURL := s.Addrs().Hub

	rep := doctorRun(t, doctor.Config{Hub: hubURL})
	wantDoctorCheck(t, rep, "websocket", "FAIL", "--token-file")
	wantDoctorCheck(t, rep, "ice", "FAIL", "401", "--token-file")

	token, err := hub.MintAccessToken([]byte(secret), "doctor", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := doctorRun(t, doctor.Config{Hub: hubURL, TokenFile: tokenFile}); rep.Count(doctor.Fail) != 0 {
		t.Fatalf("doctor with a token\n%s", render(rep))
	}
}

func TestDoctorOriginRefused(t *testing.T) {
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A reverse proxy that does not keep the Host header.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host = "backend:8080"
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	rep := doctorRun(t, doctor.Config{Hub: srv.URL})
	wantDoctorCheck(t, rep, "websocket", "FAIL", "403", "--origin", "Host header")
}

// TestDoctorSilentTURNPort: a relay port that takes packets and
// connections but never answers times out within the timeout.
func TestDoctorSilentTURNPort(t *testing.T) {
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	port := portOf(u.LocalAddr())
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Skipf("TCP port %d taken: %v", port, err)
	}
	defer l.Close()
	hubURL := doctorFakeDeployment(t, doctorICE(port, []byte("any secret")))
	start := time.Now()
	rep := doctorRun(t, doctor.Config{Hub: hubURL, Timeout: 500 * time.Millisecond})
	wantDoctorCheck(t, rep, "stun", "FAIL", "no answer", "3478/udp")
	wantDoctorCheck(t, rep, "turn-udp", "FAIL", "no answer", "3478/udp")
	wantDoctorCheck(t, rep, "turn-tcp", "FAIL", "no TURN answer", "--turn-listen")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v with a 500ms timeout", d)
	}
}

// TestDoctorInterrupted: once ctx has ended every check is skipped, none
// runs, and Run returns ctx's error with the full report.
func TestDoctorInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Nothing may be dialled: the hub's address does not matter.
	rep, err := doctor.Run(ctx, doctor.Config{Hub: "http://127.0.0.1:9"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	wantDoctorCheck(t, rep, "websocket", "SKIP", "interrupted")
	wantDoctorCheck(t, rep, "ice", "SKIP", "interrupted")
	wantDoctorCheck(t, rep, "round-trip", "SKIP", "needs the ICE servers")
	wantCounts(t, rep, 0, 0, len(doctorChecks))
	for _, r := range rep.Results {
		if r.Duration != 0 {
			t.Errorf("%s ran for %v", r.Name, r.Duration)
		}
	}
}

// TestDoctorConfig: a Config no run could use is a *ConfigError naming
// the flag, before anything is checked.
func TestDoctorConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM, empty := filepath.Join(dir, "not-pem"), filepath.Join(dir, "empty")
	for _, f := range []string{notPEM, empty} {
		if err := os.WriteFile(f, []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		cfg  doctor.Config
		want string
	}{
		{doctor.Config{}, "--hub is required"},
		{doctor.Config{Hub: "ftp://x"}, "scheme must be"},
		{doctor.Config{Hub: "http://x", Timeout: -time.Second}, "--timeout must be positive"},
		{doctor.Config{Hub: "http://x", CAFile: missing}, "--ca-file: open "},
		{doctor.Config{Hub: "http://x", CAFile: notPEM}, "--ca-file: " + notPEM + ": no PEM certificate in it"},
		{doctor.Config{Hub: "http://x", TokenFile: missing}, "--token-file: open "},
		{doctor.Config{Hub: "http://x", TokenFile: empty}, "--token-file " + empty + " is empty"},
	} {
		called := false
		tc.cfg.OnStart = func(string) { called = true }
		rep, err := doctor.Run(context.Background(), tc.cfg)
		var ce *doctor.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want a ConfigError saying %q", tc.cfg, err, tc.want)
		}
		if called || len(rep.Results) > 0 {
			t.Errorf("%+v: checked something: %+v", tc.cfg, rep)
		}
	}
	_, err := doctor.Run(context.Background(), doctor.Config{Hub: "http://x", CAFile: missing})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing --ca-file: %v, want fs.ErrNotExist wrapped", err)
	}
}

func portOf(a net.Addr) int { return int(netip.MustParseAddrPort(a.String()).Port()) }
