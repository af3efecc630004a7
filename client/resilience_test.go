package client_test

import (
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
	"github.com/tryst-chat/tryst/internal/teststack"
)

// hubProxy stands between the clients and a hub, on a fixed loopback
// address, so that a test can take the hub away (every connection cut,
// new ones refused: what clients see of a killed hub process) and bring it
// back, or bring back another hub (one that restarted and forgot its rooms).
type hubProxy struct {
	t    *testing.T
	addr string

	mu      sync.Mutex
	backend string // host:port of the hub
	ln      net.Listener
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func startHubProxy(t *testing.T, hubURL string) *hubProxy {
	t.Helper()
	p := &hubProxy{t: t, conns: map[net.Conn]struct{}{}}
	p.setBackend(hubURL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *hubProxy) url() string { return "http://" + p.addr }

func (p *hubProxy) setBackend(hubURL string) {
	u, err := url.Parse(hubURL)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.backend = u.Host
	p.mu.Unlock()
}

func (p *hubProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			backend := p.backend
			p.mu.Unlock()
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, b) {
				c.Close()
				b.Close()
				return
			}
			for _, dir := range [][2]net.Conn{{c, b}, {b, c}} {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					_, _ = io.Copy(dir[0], dir[1])
					dir[0].Close()
					dir[1].Close()
				}()
			}
		}
	}()
}

// track records a proxied pair, unless the proxy went down meanwhile.
func (p *hubProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// down cuts every connection and stops listening: dials are refused.
func (p *hubProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// up listens again on the same address.
func (p *hubProxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// waitHub waits for an EventHub whose text contains want.
func waitHub(t *testing.T, m *clienttest.Member, want string) client.Event {
	t.Helper()
	for {
		ev := m.WaitFor(client.EventHub)
		if strings.Contains(ev.Text, want) {
			return ev
		}
	}
}

func chatBothWays(t *testing.T, h, g *clienttest.Member, text string) {
	t.Helper()
	h.Client.Send("host: " + text)
	if ev := g.WaitFor(client.EventChat); ev.Text != "host: "+text {
		t.Fatalf("guest got %q", ev.Text)
	}
	g.Client.Send("guest: " + text)
	if ev := h.WaitFor(client.EventChat); ev.Text != "guest: "+text {
		t.Fatalf("host got %q", ev.Text)
	}
}

// TestResilHubOutage: once two members are connected directly, the hub
// can go away. Chat goes on both ways and a transfer under way completes;
// both say that the hub is unreachable while they are still connected. The
// hub coming back is reported, and the room is resumed. A hub that comes
// back without the room (it restarted and forgot it) does not end the chat
// either; only when the direct connection fails too does the session end,
// saying why.
func TestResilHubOutage(t *testing.T) {
	st := startStack(t, nil)
	px := startHubProxy(t, st.URL)
	const size = 16 << 20
	src, sum := randomFile(t, size)
	out := t.TempDir()
	h := startMember(t, client.Config{Hub: px.url(), Password: "pw"})
	code := h.WaitFor(client.EventRoom).Text
	g := startMember(t, client.Config{Hub: px.url(), Password: "pw", Room: code, OutDir: out})
	if ev := h.WaitFor(client.EventConnected); !strings.HasPrefix(ev.Path, "direct") {
		t.Fatalf("path %q, want direct", ev.Path)
	}
	g.WaitFor(client.EventConnected)

	if err := h.Client.SendFile(src); err != nil {
		t.Fatal(err)
	}
	for g.WaitFor(client.EventProgress).File.Done < 2<<20 {
	}
	px.down()
	for _, m := range []*clienttest.Member{h, g} {
		ev := waitHub(t, m, "still connected to the other side")
		if !strings.HasPrefix(ev.Text, "lost the connection to the hub; ") {
			t.Errorf("hub loss reported as %q", ev.Text)
		}
		if s := m.Client.Status(); !s.Connected || s.Hub || s.HubIssue == "" {
			t.Errorf("status while the hub is away: %+v", s)
		}
	}
	chatBothWays(t, h, g, "while the hub is away")
	if sent := h.WaitFor(client.EventFileSent); !sent.File.OK {
		t.Fatalf("sender verdict: %+v", sent.File)
	}
	got := g.WaitFor(client.EventFileReceived)
	checkReceived(t, got.File.Path, sum)

	px.up()
	for _, m := range []*clienttest.Member{h, g} {
		waitHub(t, m, "reconnected to the hub")
		if s := m.Client.Status(); !s.Connected || !s.Hub {
			t.Errorf("status once the hub is back: %+v", s)
		}
	}
	chatBothWays(t, h, g, "with the hub back")

	// The hub "restarts" without the room.
	px.down()
	waitHub(t, h, "still connected")
	waitHub(t, g, "still connected")
	px.setBackend(teststack.Start(t, teststack.Options{}).URL)
	px.up()
	for _, m := range []*clienttest.Member{h, g} {
		waitHub(t, m, "the hub no longer knows this room (it restarted, or the room expired); still connected")
	}
	chatBothWays(t, h, g, "with a hub that forgot the room")
	for _, ev := range append(h.Drain(), g.Drain()...) {
		if ev.Kind == client.EventDisconnected || ev.Kind == client.EventPeerLeft {
			t.Errorf("unexpected event %d %q", ev.Kind, ev.Text)
		}
	}
	// Now the direct connection fails too: nothing is left to reconnect
	// with.
	h.Client.DropPeer()
	for _, m := range []*clienttest.Member{h, g} {
		err := m.WaitResult()
		if !errors.Is(err, client.ErrNoSuchRoom) || !strings.HasPrefix(err.Error(), "the hub no longer knows this room") {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestResilLeaveWhileHubAway: leaving while the hub is away still tells
// the other side, over the direct connection, and both state files go.
func TestResilLeaveWhileHubAway(t *testing.T) {
	st := startStack(t, nil)
	px := startHubProxy(t, st.URL)
	stateH, stateG := t.TempDir(), t.TempDir()
	h := startMember(t, client.Config{Hub: px.url(), Password: "pw", StateDir: stateH, StateKey: "send-test"})
	code := h.WaitFor(client.EventRoom).Text
	g := startMember(t, client.Config{Hub: px.url(), Password: "pw", Room: code, StateDir: stateG})
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)
	for _, dir := range []string{stateH, stateG} {
		assertStateFiles(t, dir, 1)
	}
	px.down()
	waitHub(t, g, "still connected")
	g.Client.Leave()
	if err := g.WaitResult(); err != nil {
		t.Errorf("guest Run after Leave: %v", err)
	}
	if err := h.WaitResult(); !errors.Is(err, client.ErrPeerLeft) {
		t.Errorf("host Run: %v, want client.ErrPeerLeft", err)
	}
	for _, dir := range []string{stateH, stateG} {
		assertStateFiles(t, dir, 0)
	}
}

// assertStateFiles checks how many state files dir holds, and that they
// and their directory are private.
func assertStateFiles(t *testing.T, dir string, n int) {
	t.Helper()
	rooms := filepath.Join(dir, "rooms")
	entries, _ := os.ReadDir(rooms)
	if len(entries) != n {
		t.Fatalf("%s holds %d files, want %d", rooms, len(entries), n)
	}
	if n == 0 {
		return
	}
	if fi, err := os.Stat(rooms); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v %v, want 0700", rooms, fi.Mode(), err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", e.Name(), fi.Mode(), err)
		}
	}
}

// TestResilStateUnwritable: a state directory that cannot be written costs
// only the ability to come back after a crash: one warning, and the
// session goes on.
func TestResilStateUnwritable(t *testing.T) {
	st := startStack(t, nil)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	warnings := func(evs []client.Event) (n int) {
		for _, ev := range evs {
			if ev.Kind == client.EventWarning && strings.HasPrefix(ev.Text, "cannot keep state in ") {
				n++
			}
		}
		return n
	}
	h := startMember(t, client.Config{Hub: st.hubURL, Password: "pw", StateDir: notDir, StateKey: "send-x"})
	skippedH, room := h.WaitUntil(client.EventRoom)
	g := startMember(t, client.Config{Hub: st.hubURL, Password: "pw", StateDir: notDir, Room: room.Text})
	skippedG, _ := g.WaitUntil(client.EventConnected)
	more, _ := h.WaitUntil(client.EventConnected)
	if n := warnings(append(skippedH, more...)); n != 1 {
		t.Errorf("host: %d warnings about the state directory, want 1", n)
	}
	if n := warnings(skippedG); n != 1 {
		t.Errorf("guest: %d warnings about the state directory, want 1", n)
	}
	chatBothWays(t, h, g, "without state")
}
