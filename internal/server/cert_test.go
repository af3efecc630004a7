package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "tryst test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Duration(serial) * 24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	// Write to temporary names and rename, as certificate tools do, so a
	// reader never sees half a file.
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSReload: HTTPS/WSS and TURNS serve the certificate; a new one is
// picked up on SIGHUP and when the files change, without dropping an open
// WebSocket.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1)
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	s := start(t, cfg)
	if !strings.HasPrefix(s.Addrs().Hub, "https://") {
		t.Errorf("hub at %s with a certificate", s.Addrs().Hub)
	}
	hubAddr, turnsAddr := testenv.HostPort(t, s.Addrs().Hub), s.Addrs().TURNTLS
	if servedSerial(t, hubAddr) != 1 || servedSerial(t, turnsAddr) != 1 {
		t.Fatal("not serving the configured certificate")
	}

	// An open WSS connection.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	httpc := &http.Client{Transport: tr}
	ws, _, err := websocket.Dial(ctx, "wss://"+hubAddr+"/v1/ws", &websocket.DialOptions{HTTPClient: httpc})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	// SIGHUP path.
	writeCert(t, certFile, keyFile, 2)
	s.Reload()
	if servedSerial(t, hubAddr) != 2 || servedSerial(t, turnsAddr) != 2 {
		t.Error("certificate not reloaded on SIGHUP")
	}
	// File-change path (what the watcher runs every few seconds).
	writeCert(t, certFile, keyFile, 3)
	now := time.Now().Add(time.Minute)
	os.Chtimes(certFile, now, now)
	s.certs.checkFiles()
	if servedSerial(t, hubAddr) != 3 {
		t.Error("certificate not reloaded after the files changed")
	}
	// A broken file keeps the current certificate.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	s.Reload()
	if servedSerial(t, hubAddr) != 3 {
		t.Error("a broken certificate replaced the good one")
	}

	// The WebSocket opened before the reloads still works.
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"create","version":3}`)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"created"`) {
		t.Fatalf("old connection after reload: %s %v", msg, err)
	}

	// The expiry is exported.
	if !strings.Contains(get(t, s.Addrs().Metrics), "tryst_tls_certificate_expiry_timestamp_seconds") {
		t.Error("certificate expiry not exported")
	}
}
