package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// TestHubRestartKeepsRooms kills `tryst serve` with SIGKILL under a paired
// room and starts it again on the same port with the same --state-dir: both
// members resume with their tokens, signal through the hub again, and a
// stranger with the room code, or with a made-up token, gets nothing.
func TestHubRestartKeepsRooms(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	state := filepath.Join(t.TempDir(), "state")
	// The clients come back to the address they knew: the hub's port is
	// fixed, picked free by the kernel (the other listeners take any).
	listen := freeLoopbackAddr(t)
	serve := startServe(t, nil, "--listen", listen, "--state-dir", state)
	url := wsURL(t, serve.Addrs.Hub)

	host, guest, created, joined := openRoom(ctx, t, url)
	// peer-joined carries the host's token that knows of the guest.
	hostToken := await(ctx, t, host, proto.TypePeerJoined).Token
	if hostToken == "" {
		t.Fatal("peer-joined without a token")
	}
	send(ctx, t, host, proto.Frame{Type: proto.TypeOffer, Data: "offer-1"})
	await(ctx, t, guest, proto.TypeOffer)
	send(ctx, t, guest, proto.Frame{Type: proto.TypeAnswer, Data: "answer-1"})
	await(ctx, t, host, proto.TypeAnswer)

	if err := serve.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = serve.cmd.Wait()
	for _, c := range []*hubconn.Conn{host, guest} {
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("a client did not see the hub go")
		}
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(filepath.Join(state, "hub-key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("hub key in the state directory: %v %v", fi, err)
		}
	}

	again := startServe(t, nil, "--listen", listen, "--state-dir", state)
	if again.Addrs.Hub != serve.Addrs.Hub {
		t.Fatalf("restarted on %s, was %s", again.Addrs.Hub, serve.Addrs.Hub)
	}
	host = hubDial(ctx, t, url)
	send(ctx, t, host, proto.Frame{Type: proto.TypeResume, Token: hostToken, Version: proto.ProtocolVersion})
	r := await(ctx, t, host, proto.TypeResumed)
	if r.Room != created.Room || r.Role != "host" || r.Peer == nil || *r.Peer {
		t.Fatalf("host resumed: %+v", r)
	}
	// The mailbox went with the process: the host offers again, as
	// clients do after resumed.
	send(ctx, t, host, proto.Frame{Type: proto.TypeOffer, Data: "offer-2"})

	stranger := hubDial(ctx, t, url)
	send(ctx, t, stranger, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	if f := await(ctx, t, stranger, proto.TypeError); f.Code != proto.CodeRoomFull {
		t.Errorf("a stranger with the code: %+v", f)
	}
	forged := strings.Repeat("A", len(joined.Token))
	send(ctx, t, stranger, proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: forged})
	if f := await(ctx, t, stranger, proto.TypeError); f.Code != proto.CodeNoSuchRoom {
		t.Errorf("a stranger with a made-up token: %+v", f)
	}

	guest = hubDial(ctx, t, url)
	send(ctx, t, guest, proto.Frame{Type: proto.TypeResume, Token: joined.Token, Version: proto.ProtocolVersion})
	g := await(ctx, t, guest, proto.TypeResumed)
	if g.Room != created.Room || g.Role != "guest" || g.Peer == nil || !*g.Peer {
		t.Fatalf("guest resumed: %+v", g)
	}
	if f := await(ctx, t, guest, proto.TypeOffer); f.Data != "offer-2" {
		t.Errorf("offer after the restart: %q", f.Data)
	}
	await(ctx, t, host, proto.TypePeerBack)
	send(ctx, t, guest, proto.Frame{Type: proto.TypeCandidate, Data: "candidate-after-restart"})
	if f := await(ctx, t, host, proto.TypeCandidate); f.Data != "candidate-after-restart" {
		t.Errorf("candidate after the restart: %q", f.Data)
	}

	metrics := httpGet(ctx, t, again.Addrs.Metrics)
	for _, want := range []string{"tryst_hub_rooms_recreated_total 1\n", `tryst_hub_rejections_total{reason="bad_token"} 1` + "\n"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(again.logs.String(), joined.Token) || strings.Contains(again.logs.String(), created.Room) {
		t.Error("the log shows a token or a room code")
	}
}

// openRoom creates a room on the hub at url and joins it: the host and the
// guest, after created and joined (the host's peer-joined is left to the
// caller).
func openRoom(ctx context.Context, t *testing.T, url string) (host, guest *hubconn.Conn, created, joined proto.Frame) {
	t.Helper()
	host = hubDial(ctx, t, url)
	send(ctx, t, host, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created = await(ctx, t, host, proto.TypeCreated)
	guest = hubDial(ctx, t, url)
	send(ctx, t, guest, proto.Frame{Type: proto.TypeJoin, Room: created.Room, Version: proto.ProtocolVersion})
	joined = await(ctx, t, guest, proto.TypeJoined)
	return host, guest, created, joined
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port nobody listens on
// now, for a server that must come back on the same one.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func wsURL(t *testing.T, hub string) string {
	t.Helper()
	u, err := proto.WebSocketURL(hub)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func hubDial(ctx context.Context, t *testing.T, url string) *hubconn.Conn {
	t.Helper()
	c, _, err := hubconn.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(ctx context.Context, t *testing.T, c *hubconn.Conn, f proto.Frame) {
	t.Helper()
	if err := c.Send(ctx, f); err != nil {
		t.Fatalf("send %s: %v", f.Type, err)
	}
}

// await skips notices until a frame of type typ; an error frame is
// returned when typ is TypeError, else fails the test.
func await(ctx context.Context, t *testing.T, c *hubconn.Conn, typ string) proto.Frame {
	t.Helper()
	f, err := c.Await(ctx, typ)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return f
}

func httpGet(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
