package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/turnserver"
)

var doctorChecks = []string{"websocket", "ice", "clock", "stun", "turn-udp", "turn-tcp", "turn-tls", "relay-address", "round-trip"}

// startDoctorServer runs `tryst serve` in-process on loopback, with a
// self-signed certificate when tlsDir is not empty, and returns the hub URL.
func startDoctorServer(t *testing.T, tlsDir string) string {
	t.Helper()
	args := []string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0",
		"--turn-sockets", "1", "--allow-loopback-peers", "--log-level", "error"}
	if tlsDir != "" {
		cert, key := doctorSelfSigned(t, tlsDir)
		args = append(args, "--tls-cert", cert, "--tls-key", key, "--turn-tls-listen", "127.0.0.1:0")
	}
	s := startServe(t, map[string]string{"TRYST_TURN_SECRET": "doctor-test-secret"}, args...)
	return s.Addrs().Hub // https:// with a certificate
}

// doctorSelfSigned writes cert.pem and key.pem for 127.0.0.1 and localhost.
func doctorSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tryst doctor test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func doctorRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out syncBuffer
	err := runIO(ctx, append([]string{"doctor"}, args...),
		stdio{in: strings.NewReader(""), out: &out, err: &out, getenv: env(nil)})
	t.Logf("tryst doctor %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

// doctorLine returns the status word of a check in the output and its line
// with the hint, if any.
func doctorLine(out, name string) (status, text string) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		st, rest, ok := strings.Cut(l, " ")
		if ok && strings.HasPrefix(rest, name+":") {
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  hint: ") {
				l += "\n" + lines[i+1]
			}
			return st, l
		}
	}
	return "", ""
}

func wantDoctorCheck(t *testing.T, out, name, status string, substrs ...string) {
	t.Helper()
	st, line := doctorLine(out, name)
	if st != status {
		t.Errorf("%s: got %q, want %s\n%s", name, line, status, out)
		return
	}
	for _, s := range substrs {
		if !strings.Contains(line, s) {
			t.Errorf("%s: %q does not mention %q", name, line, s)
		}
	}
}

func TestDoctorHealthy(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		hubURL := startDoctorServer(t, "")
		out, err := doctorRun(t, "--hub", hubURL)
		if err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		for _, name := range doctorChecks {
			want := "PASS"
			if name == "turn-tls" {
				want = "SKIP" // no certificate, no turns: URL
			}
			wantDoctorCheck(t, out, name, want)
		}
		wantDoctorCheck(t, out, "round-trip", "PASS", "round trip")
		if !strings.Contains(out, "8 passed, 0 failed, 1 skipped") {
			t.Errorf("summary:\n%s", out)
		}
	})
	t.Run("tls", func(t *testing.T) {
		dir := t.TempDir()
		hubURL := startDoctorServer(t, dir)
		for _, trust := range [][]string{{"--ca-file", filepath.Join(dir, "cert.pem")}, {"--insecure"}} {
			out, err := doctorRun(t, append([]string{"--hub", hubURL}, trust...)...)
			if err != nil {
				t.Fatalf("doctor %v: %v\n%s", trust, err, out)
			}
			for _, name := range doctorChecks {
				wantDoctorCheck(t, out, name, "PASS")
			}
			wantDoctorCheck(t, out, "websocket", "PASS", "wss://")
			wantDoctorCheck(t, out, "turn-tls", "PASS", "relayed address 127.0.0.1:")
		}
		// Without a way to trust the certificate the very first check says why.
		out, err := doctorRun(t, "--hub", hubURL)
		if err == nil {
			t.Fatalf("doctor trusted a self-signed certificate\n%s", out)
		}
		wantDoctorCheck(t, out, "websocket", "FAIL", "certificate", "--ca-file")
		wantDoctorCheck(t, out, "stun", "SKIP")
	})
}

// TestDoctorDefaultPeerPolicy: against a local `tryst serve` with its
// default peer policy the relay refuses the loopback peer of the round trip;
// the doctor says why and how to get a local round trip, and passes.
func TestDoctorDefaultPeerPolicy(t *testing.T) {
	s := startServe(t, map[string]string{"TRYST_TURN_SECRET": "doctor-test-secret"}, "--turn-sockets", "1")
	out, err := doctorRun(t, "--hub", s.Addrs().Hub)
	if err != nil {
		t.Fatalf("doctor failed a healthy local deployment: %v\n%s", err, out)
	}
	for _, name := range doctorChecks {
		switch name {
		case "turn-tls":
			wantDoctorCheck(t, out, name, "SKIP")
		case "round-trip":
			wantDoctorCheck(t, out, name, "SKIP", "CreatePermission for 127.0.0.1:", "refuses loopback peers by policy",
				"--allow-loopback-peers")
		default:
			wantDoctorCheck(t, out, name, "PASS")
		}
	}
	if !strings.Contains(out, "7 passed, 0 failed, 2 skipped") {
		t.Errorf("summary:\n%s", out)
	}
}

// TestDoctorPermissionRefused: both ways a relay refuses a peer by policy
// (403, or an error response without an error code) are explained; a
// refused public peer is a failure, a refused local one a skip.
func TestDoctorPermissionRefused(t *testing.T) {
	forbidden := &stun.TurnError{StunMessageType: stun.NewType(stun.MethodCreatePermission, stun.ClassErrorResponse),
		ErrorCodeAttr: stun.ErrorCodeAttribute{Code: stun.CodeForbidden}}
	noCode := fmt.Errorf("%s", stun.NewType(stun.MethodCreatePermission, stun.ClassErrorResponse))
	public := netip.MustParseAddrPort("203.0.113.7:40000")
	publicRelay := netip.MustParseAddrPort("198.51.100.1:50000")
	loopback := netip.MustParseAddrPort("127.0.0.1:40000")
	for _, tc := range []struct {
		name          string
		relayed, peer netip.AddrPort
		err           error
		want          checkStatus
		detail, hint  string
	}{
		{"403, public", publicRelay, public, forbidden, statusFail, "forbidden by the relay's peer policy (403)", "--turn-deny-peer"},
		{"no code, public", publicRelay, public, noCode, statusFail, "without an error code", "--turn-allow-peer"},
		{"403, loopback", loopback, loopback, forbidden, statusSkip, "forbidden by the relay's peer policy", ""},
		{"no code, loopback", loopback, loopback, noCode, statusSkip, "refuses loopback peers by policy", ""},
		{"403, loopback relay", loopback, public, forbidden, statusSkip, "--allow-loopback-peers", ""},
		{"other error", publicRelay, public, errors.New("transaction timed out"), statusFail, "timed out", "relay's log"},
	} {
		r := permissionRefused(tc.relayed, tc.peer, tc.err)
		if r.status != tc.want || !strings.Contains(r.detail, tc.detail) || !strings.Contains(r.hint, tc.hint) {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
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
	out, err := doctorRun(t, "--hub", hubURL)
	if err == nil {
		t.Fatalf("doctor passed with a wrong secret\n%s", out)
	}
	wantDoctorCheck(t, out, "websocket", "PASS")
	wantDoctorCheck(t, out, "stun", "PASS") // STUN needs no credential
	for _, name := range []string{"turn-udp", "turn-tcp"} {
		wantDoctorCheck(t, out, name, "FAIL", "hint: the hub and the relay use different secrets", "--turn-secret-file", "static-auth-secret")
	}
	wantDoctorCheck(t, out, "relay-address", "SKIP")
	wantDoctorCheck(t, out, "round-trip", "SKIP")
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

	out, err := doctorRun(t, "--hub", hubURL)
	if err != nil {
		t.Fatalf("without --expect-public a private relay on a loopback hub is expected: %v\n%s", err, out)
	}
	wantDoctorCheck(t, out, "turn-udp", "PASS", "10.9.8.7:")
	wantDoctorCheck(t, out, "relay-address", "PASS", "10.9.8.7:")
	wantDoctorCheck(t, out, "round-trip", "SKIP", "10.9.8.7", "private")

	out, err = doctorRun(t, "--hub", hubURL, "--expect-public")
	if err == nil {
		t.Fatalf("doctor passed a private relay address with --expect-public\n%s", out)
	}
	wantDoctorCheck(t, out, "relay-address", "FAIL", "10.9.8.7", "hint:", "--public-ip")
	wantDoctorCheck(t, out, "round-trip", "SKIP", "10.9.8.7", "private")
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
	out, err := doctorRun(t, "--hub", hubURL, "--timeout", "2s")
	if err == nil {
		t.Fatalf("doctor passed with nothing on the TURN port\n%s", out)
	}
	wantDoctorCheck(t, out, "websocket", "PASS")
	wantDoctorCheck(t, out, "ice", "PASS")
	wantDoctorCheck(t, out, "stun", "FAIL", "udp 127.0.0.1:", "3478/udp")
	wantDoctorCheck(t, out, "turn-udp", "FAIL", "3478/udp")
	wantDoctorCheck(t, out, "turn-tcp", "FAIL", "refused", "3478/tcp")
	wantDoctorCheck(t, out, "turn-tls", "SKIP")
	wantDoctorCheck(t, out, "relay-address", "SKIP")
	wantDoctorCheck(t, out, "round-trip", "SKIP")
	if !strings.Contains(out, "3 passed, 3 failed, 3 skipped") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestDoctorClock(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	user := strconv.FormatInt(now.Add(600*time.Second).Unix(), 10) + ":x"
	cases := []struct {
		name        string
		local, date time.Time
		ttl         int
		want        checkStatus
		mention     string
	}{
		{"in sync", now, now, 600, statusPass, "consistent"},
		{"local clock behind", now.Add(-2 * time.Minute), now, 600, statusFail, "2m0s ahead of"},
		{"local clock ahead, credential expired", now.Add(11 * time.Minute), now, 600, statusFail, "expired"},
		{"Date from another clock", now, now.Add(-10 * time.Minute), 600, statusFail, "HTTP Date"},
		{"no Date header", now.Add(time.Second), time.Time{}, 600, statusPass, "agree"},
	}
	for _, tc := range cases {
		r := clockCheck(user, tc.ttl, tc.local, tc.date)
		if r.status != tc.want || !strings.Contains(r.detail, tc.mention) {
			t.Errorf("%s: %+v", tc.name, r)
		}
		if r.status == statusFail && !strings.Contains(r.hint, "NTP") {
			t.Errorf("%s: hint %q", tc.name, r.hint)
		}
	}
}

func TestDoctorFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"--hub", "ftp://x"}, {"--hub", "http://x", "--timeout", "0s"}, {"--hub", "http://x", "extra"}} {
		_, err := doctorRun(t, args...)
		if exitCode(err, io.Discard) != 2 {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestDoctorAccessControl(t *testing.T) {
	dir := t.TempDir()
	secret := "access-token-secret-0123456789"
	secretFile := filepath.Join(dir, "token-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, nil, "--turn-sockets", "1", "--allow-loopback-peers", "--token-secret-file", secretFile)
	hubURL := s.Addrs().Hub

	out, err := doctorRun(t, "--hub", hubURL)
	if err == nil {
		t.Fatalf("doctor passed without an access token\n%s", out)
	}
	wantDoctorCheck(t, out, "websocket", "FAIL", "--token-file")
	wantDoctorCheck(t, out, "ice", "FAIL", "401", "--token-file")

	token, err := hub.MintAccessToken([]byte(secret), "doctor", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := doctorRun(t, "--hub", hubURL, "--token-file", tokenFile); err != nil {
		t.Fatalf("doctor with a token: %v\n%s", err, out)
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
	out, _ := doctorRun(t, "--hub", srv.URL)
	wantDoctorCheck(t, out, "websocket", "FAIL", "403", "--origin", "Host header")
}

// TestDoctorSilentTURNPort: a relay port that takes packets and
// connections but never answers times out within --timeout.
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
	out, err := doctorRun(t, "--hub", hubURL, "--timeout", "500ms")
	if err == nil {
		t.Fatalf("doctor passed with a silent relay\n%s", out)
	}
	wantDoctorCheck(t, out, "stun", "FAIL", "no answer", "3478/udp")
	wantDoctorCheck(t, out, "turn-udp", "FAIL", "no answer", "3478/udp")
	wantDoctorCheck(t, out, "turn-tcp", "FAIL", "no TURN answer", "--turn-listen")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v with --timeout 500ms", d)
	}
}

func portOf(a net.Addr) int { return int(addrPortOf(a).Port()) }
