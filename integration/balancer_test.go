package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// startHAProxy runs a real HAProxy in front of the nodes' hubs: round
// robin, /readyz checked every 100 ms, a connection that fails retried on
// the other node, WebSockets tunnelled for an hour. It returns the
// balancer's http:// URL once it serves.
func startHAProxy(ctx context.Context, t *testing.T, nodes ...*serveProcess) string {
	t.Helper()
	return startHAProxyWith(ctx, t, "", nodes...)
}

// startHAProxyWith is startHAProxy with extra server options (such as
// "send-proxy-v2 check-send-proxy").
func startHAProxyWith(ctx context.Context, t *testing.T, serverOpts string, nodes ...*serveProcess) string {
	t.Helper()
	bin := testenv.Tool(t, "haproxy", "haproxy")
	listen := freeLoopbackAddr(t)
	var servers strings.Builder
	for i, n := range nodes {
		fmt.Fprintf(&servers, "  server node%d %s check %s\n", i, strings.TrimPrefix(n.Addrs.Hub, "http://"), serverOpts)
	}
	cfg := fmt.Sprintf(`global
  maxconn 1000
defaults
  mode http
  timeout connect 1s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
  retries 3
  option redispatch
frontend hubs
  bind %s
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 100ms fall 1 rise 1
%s`, listen, servers.String())
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", file)
	dieWithTest(cmd)
	logs := &logTail{done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go logs.collect(stderr)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-logs.done
		if t.Failed() {
			t.Logf("haproxy log:\n%s", logs.String())
		}
	})
	url := "http://" + listen
	// Ready once it answers through to a node that passed its check.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("haproxy did not serve:\n%s", logs.String())
		case <-tick.C:
		}
	}
}

// TestNodeKilledBehindBalancer: two nodes on one Redis behind HAProxy;
// `tryst send` and `tryst receive` reach the room through the balancer
// (round robin: one on each node). kill -9 of one node mid-transfer: the
// file keeps moving peer to peer, the client that was on the dead node
// reconnects through the balancer to the other and resumes its room, and
// both finish with the file verified.
func TestNodeKilledBehindBalancer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resilTimeout)
	defer cancel()
	a, b := startTwoNodes(t)
	lb := startHAProxy(ctx, t, a, b)

	_, pw, src, sum := resilSetup(t)
	out := t.TempDir()
	sender, recv, _, _ := startPair(ctx, t, lb, pw, src, out)
	recv.line(ctx, "* connected: direct")
	recv.progress(ctx, 10)
	// Which node each client reached: each counts its own resumes and
	// joins; round robin put one client on each.
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	var moved *peerProcess
	for _, p := range []*peerProcess{sender, recv} {
		if strings.Contains(p.out.String(), "lost the connection to the hub") {
			moved = p
		}
	}
	if moved == nil {
		// The lost connection may not be printed yet: wait for whichever
		// prints it.
		lost := make(chan *peerProcess, 2)
		for _, p := range []*peerProcess{sender, recv} {
			go func() {
				lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
				defer lcancel()
				if _, _, err := p.out.wait(lctx, 0, func(l string) bool { return strings.Contains(l, "lost the connection to the hub") }); err == nil {
					lost <- p
				}
			}()
		}
		select {
		case moved = <-lost:
		case <-ctx.Done():
			t.Fatal("no client noticed its node die")
		}
	}
	moved.line(ctx, "reconnected to the hub")
	for _, p := range []*peerProcess{sender, recv} {
		if code := p.exited(ctx); code != 0 {
			t.Fatalf("%s exited %d", p.name, code)
		}
	}
	checkFile(t, filepath.Join(out, "payload.bin"), sum)
	if m := httpGet(ctx, t, b.Addrs.Metrics); !strings.Contains(m, `tryst_hub_messages_total{type="resume"}`) ||
		strings.Contains(m, `tryst_hub_messages_total{type="resume"} 0`+"\n") {
		t.Errorf("node B saw no resume:\n%s", grepLines(m, "tryst_hub_messages_total"))
	}
}

// TestProxyProtocolBehindBalancer: a node behind HAProxy that sends the
// PROXY protocol header (--proxy-protocol-from the balancer's address)
// counts each client's own address: with two connections allowed per
// address, a third from the same client is refused (429) while another
// client still gets in; without it every client would be HAProxy's one
// address. Straight to the node, a connection from the balancer's address
// without a header is refused, one from elsewhere is served, and a header
// it sends is not believed.
func TestProxyProtocolBehindBalancer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node := startServe(t, nil, "--proxy-protocol-from", "127.0.0.1/32", "--max-conns-per-ip", "2")
	lb := startHAProxyWith(ctx, t, "send-proxy-v2 check-send-proxy", node)
	from := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	dial := func(base, src string) (int, error) {
		ws, resp, err := websocket.Dial(ctx, wsURL(t, base), &websocket.DialOptions{HTTPClient: from(src)})
		if err == nil {
			t.Cleanup(func() { ws.CloseNow() })
			return http.StatusSwitchingProtocols, nil
		}
		if resp != nil {
			return resp.StatusCode, err
		}
		return 0, err
	}
	for i := range 2 {
		if code, err := dial(lb, "127.0.0.2"); err != nil {
			t.Fatalf("connection %d from 127.0.0.2 through the balancer: %d %v", i+1, code, err)
		}
	}
	if code, _ := dial(lb, "127.0.0.2"); code != http.StatusTooManyRequests {
		t.Errorf("third connection from 127.0.0.2: HTTP %d, want 429 (the node counted the balancer, not the client?)", code)
	}
	if code, err := dial(lb, "127.0.0.3"); err != nil {
		t.Errorf("another client through the balancer: %d %v", code, err)
	}
	// Straight to the node.
	if code, err := dial(node.Addrs.Hub, "127.0.0.1"); err == nil {
		t.Errorf("a connection from the balancer's address without a header was served (%d)", code)
	}
	if code, err := dial(node.Addrs.Hub, "127.0.0.4"); err != nil {
		t.Errorf("a direct client: %d %v", code, err)
	}
	if !strings.Contains(httpGet(ctx, t, node.Addrs.Metrics), `tryst_hub_rejections_total{reason="ip_conn_limit"} 1`+"\n") {
		t.Error("the node did not count one ip_conn_limit rejection")
	}
}
