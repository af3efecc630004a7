package integration

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/redistest"
	"github.com/tryst-chat/tryst/proto"
)

// sharedNodeFiles writes what nodes sharing rooms share: the hub key
// file. The TURN secret goes in the environment.
func sharedNodeFiles(t *testing.T) (keyFile string, env []string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), "hub-key")
	if err := os.WriteFile(keyFile, append(hub.NewHubKey(), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, []string{"TRYST_TURN_SECRET=multinode-test-secret-0123456789"}
}

// startTwoNodes runs a redis-server and two `tryst serve` nodes on it that
// share their hub key and TURN secret.
func startTwoNodes(t *testing.T) (a, b *serveProcess) {
	t.Helper()
	redis := redistest.Start(t)
	keyFile, env := sharedNodeFiles(t)
	return startNode(t, redis.URL(), keyFile, env), startNode(t, redis.URL(), keyFile, env)
}

// startNode runs `tryst serve` on the Redis store at redisURL.
func startNode(t *testing.T, redisURL, keyFile string, env []string, args ...string) *serveProcess {
	t.Helper()
	return startServe(t, env, append([]string{"--store", redisURL, "--hub-key-file", keyFile}, args...)...)
}

// TestTwoNodesOneRedis: `tryst send` through node A and `tryst receive`
// through node B, two `tryst serve` processes on one real redis-server,
// pair and move a file; both nodes count the room.
func TestTwoNodesOneRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resilTimeout)
	defer cancel()
	a, b := startTwoNodes(t)
	_, pw, src, sum := resilSetup(t)
	out := t.TempDir()
	send := startPeer(t, "send", peerArgs("send", a.Addrs.Hub, pw, t.TempDir(), src)...)
	code := strings.TrimPrefix(send.line(ctx, "code: "), "code: ")
	recv := startPeer(t, "receive", peerArgs("receive", b.Addrs.Hub, pw, t.TempDir(), "--out", out, code)...)
	recv.line(ctx, "* connected: direct")
	if c := send.exited(ctx); c != 0 {
		t.Fatalf("send exited %d", c)
	}
	if c := recv.exited(ctx); c != 0 {
		t.Fatalf("receive exited %d", c)
	}
	checkFile(t, filepath.Join(out, "payload.bin"), sum)
	for _, n := range []*serveProcess{a, b} {
		m := httpGet(ctx, t, n.Addrs.Metrics)
		for _, want := range []string{"tryst_hub_store_up 1\n", "tryst_hub_store_errors_total 0\n"} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q", strings.TrimSpace(want))
			}
		}
	}
	if !strings.Contains(httpGet(ctx, t, a.Addrs.Metrics), "tryst_hub_rooms_created_total 1\n") {
		t.Error("node A did not count the room it created")
	}
	for _, n := range []*serveProcess{a, b} {
		if strings.Contains(n.logs.String(), code) {
			t.Error("a node logged the room code")
		}
	}
}

// TestRedisDownAndBack: Redis killed under a node while a file moves
// between two of its clients: the transfer carries on (peer to peer),
// /readyz turns 503, tryst_hub_store_up 0, a new room is refused with a
// sentence that says to try again; Redis back (its append-only file
// kept the rooms) and the node serves again without a restart: the old
// room resumes and a new one pairs.
func TestRedisDownAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resilTimeout)
	defer cancel()
	redis := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	keyFile, env := sharedNodeFiles(t)
	node := startNode(t, redis.URL(), keyFile, env)
	url := wsURL(t, node.Addrs.Hub)

	// A room paired through the hub only, to resume later.
	host, guest, created, joined := openRoom(ctx, t, url)
	await(ctx, t, host, proto.TypePeerJoined)

	// A transfer under way between two real clients.
	_, pw, src, sum := resilSetup(t)
	out := t.TempDir()
	sender, recv, _, _ := startPair(ctx, t, node.Addrs.Hub, pw, src, out)
	recv.line(ctx, "* connected: direct")
	recv.progress(ctx, 10)

	redis.Kill()
	waitReady(ctx, t, node, http.StatusServiceUnavailable)
	if m := httpGet(ctx, t, node.Addrs.Metrics); !strings.Contains(m, "tryst_hub_store_up 0\n") {
		t.Error("tryst_hub_store_up is not 0 with Redis down")
	}
	c := hubDial(ctx, t, url)
	send(ctx, t, c, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	f := await(ctx, t, c, proto.TypeError)
	if f.Code != proto.CodeInternal || f.RetryAfter <= 0 || !strings.Contains(f.Message, "try again") {
		t.Errorf("create with Redis down: %+v", f)
	}
	if code := sender.exited(ctx); code != 0 {
		t.Fatalf("send exited %d with Redis down", code)
	}
	if code := recv.exited(ctx); code != 0 {
		t.Fatalf("receive exited %d with Redis down", code)
	}
	checkFile(t, filepath.Join(out, "payload.bin"), sum)

	redis.Restart(t)
	waitReady(ctx, t, node, http.StatusOK)
	// The guest's connection comes back; the room was kept.
	_ = guest.Close()
	guest = hubDial(ctx, t, url)
	send(ctx, t, guest, proto.Frame{Type: proto.TypeResume, Token: joined.Token, Version: proto.ProtocolVersion})
	if r := await(ctx, t, guest, proto.TypeResumed); r.Room != created.Room || r.Peer == nil || !*r.Peer {
		t.Errorf("resumed after Redis came back: %+v", r)
	}
	await(ctx, t, host, proto.TypePeerBack)
	send(ctx, t, guest, proto.Frame{Type: proto.TypeCandidate, Data: "after"})
	if f := await(ctx, t, host, proto.TypeCandidate); f.Data != "after" {
		t.Errorf("candidate after Redis came back: %q", f.Data)
	}
	// And a new room pairs.
	send(ctx, t, c, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created2 := await(ctx, t, c, proto.TypeCreated)
	g2 := hubDial(ctx, t, url)
	send(ctx, t, g2, proto.Frame{Type: proto.TypeJoin, Room: created2.Room, Version: proto.ProtocolVersion})
	await(ctx, t, g2, proto.TypeJoined)
	await(ctx, t, c, proto.TypePeerJoined)
	m := httpGet(ctx, t, node.Addrs.Metrics)
	if !strings.Contains(m, "tryst_hub_store_up 1\n") || strings.Contains(m, "tryst_hub_store_errors_total 0\n") {
		t.Errorf("metrics after Redis came back: store_up and errors:\n%s", grepLines(m, "tryst_hub_store"))
	}
}

// waitReady polls the node's /readyz until it answers want: the state
// changes when the node notices Redis, which it is asked about at each
// request.
func waitReady(ctx context.Context, t *testing.T, n *serveProcess, want int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.Addrs.Hub+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/readyz never answered %d", want)
		case <-tick.C:
		}
	}
}

func grepLines(s, substr string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}
