package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/internal/testenv"
)

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
	testenv.WriteCert(t, certFile, keyFile, 1)
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
	testenv.WriteCert(t, certFile, keyFile, 2)
	s.Reload()
	if servedSerial(t, hubAddr) != 2 || servedSerial(t, turnsAddr) != 2 {
		t.Error("certificate not reloaded on SIGHUP")
	}
	// File-change path (what the watcher runs every few seconds).
	testenv.WriteCert(t, certFile, keyFile, 3)
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
