package web

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/tryst-chat/tryst/proto"
)

// hubGate is a TCP proxy in front of a hub: the pages reach the hub only
// through it, so a test can cut them off (every connection through it
// closed, new ones closed at once) and let them through again, to the same
// server or another one.
type hubGate struct {
	ln  net.Listener
	url string // http://127.0.0.1:port, where the pages go

	mu     sync.Mutex
	target string // host:port of the server behind; "" while cut
	gen    int    // counts cuts: a connection dialled before one is dropped
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newHubGate(t *testing.T, target string) *hubGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &hubGate{ln: ln, url: "http://" + ln.Addr().String(), target: hostPort(target), conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(func() {
		ln.Close()
		g.cut()
		g.wg.Wait()
	})
	return g
}

func hostPort(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
}

func (g *hubGate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		target, gen := g.target, g.gen
		if target == "" {
			g.mu.Unlock()
			c.Close()
			continue
		}
		g.conns[c] = struct{}{}
		g.wg.Add(1)
		g.mu.Unlock()
		go g.pipe(c, target, gen)
	}
}

// pipe copies between the page's connection c and the server's until
// either ends or the gate is cut.
func (g *hubGate) pipe(c net.Conn, target string, gen int) {
	defer g.wg.Done()
	defer g.drop(c)
	u, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	g.mu.Lock()
	if g.gen != gen {
		g.mu.Unlock()
		u.Close()
		return
	}
	g.conns[u] = struct{}{}
	g.mu.Unlock()
	defer g.drop(u)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(u, c)
		u.Close()
		c.Close()
	}()
	io.Copy(c, u)
	c.Close()
	u.Close()
	<-done
}

func (g *hubGate) drop(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

// cut closes every connection through the gate and refuses new ones: to
// the pages, the hub is unreachable.
func (g *hubGate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.target = ""
	g.gen++
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

// open lets connections through again, to the server at url.
func (g *hubGate) open(url string) {
	g.mu.Lock()
	g.target = hostPort(url)
	g.mu.Unlock()
}

// roomlessHub is a hub that knows no room, as a restarted hub that kept
// nothing would be: it answers every frame with no_such_room.
func roomlessHub(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		for {
			var f proto.Frame
			if err := wsjson.Read(ctx, ws, &f); err != nil {
				return
			}
			if err := wsjson.Write(ctx, ws, proto.Frame{Type: proto.TypeError, Code: proto.CodeNoSuchRoom,
				Message: "no such room"}); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitJSWithin polls a JavaScript condition for at most d: for what must
// happen without a reconnect in between.
func (b *browser) waitJSWithin(cond string, d time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d+5*time.Second)
	defer cancel()
	err := chromedp.Run(ctx, chromedp.Poll(cond, nil, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(d)))
	if err != nil {
		b.shot("failure")
		var status string
		chromedp.Run(b.ctx, chromedp.Text("#status", &status, chromedp.ByQuery))
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			b.t.Fatalf("%s: not within %v: %s (status: %q)", b.name, d, cond, status)
		}
		b.t.Fatalf("%s: %v (status: %q)", b.name, err, status)
	}
}

// markPeer tags the page's current peer connection, so that samePeer can
// tell later whether it is still the one in use.
func (b *browser) markPeer(mark string) {
	b.t.Helper()
	var ok bool
	b.eval(`(() => { const p = window.tryst.peer; if (!p) return false; p.mark = `+jsString(mark)+`; return true; })()`, &ok)
	if !ok {
		b.t.Fatalf("%s: no peer connection to mark", b.name)
	}
}

func (b *browser) samePeer(mark string) bool {
	b.t.Helper()
	var same bool
	b.eval(`!!window.tryst.peer && window.tryst.peer.mark === `+jsString(mark), &same)
	return same
}

func (b *browser) status() string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text("#status", &s, chromedp.ByID))
	return s
}

const statusJS = `document.getElementById("status").textContent`

// TestBrowserResilienceHubOutage: once two browsers are connected, the hub
// going away stops neither chat nor a transfer, the pages say the hub is
// unreachable, and once it is back they resume into the room (the same
// peer connection), which then serves a new connection.
func TestBrowserResilienceHubOutage(t *testing.T) {
	st := startStack(t)
	gate := newHubGate(t, st.url)
	a, b := connectedPages(t, gate.url)
	a.say("before the outage")
	b.waitMessage("before the outage")
	for _, br := range []*browser{a, b} {
		br.markPeer("before the outage")
	}

	gate.cut()
	for _, br := range []*browser{a, b} {
		br.waitJS(statusJS + `.includes("hub unreachable") && !document.getElementById("message").disabled`)
		br.shot("hub-down")
	}
	a.say("while the hub is down")
	b.waitMessage("while the hub is down")
	b.say("still here")
	a.waitMessage("still here")
	path, sum := randomFile(t, "outage.bin", 300<<10)
	b.sendFile(path)
	if got := a.receivedSHA("outage.bin"); got != sum {
		t.Errorf("received SHA-256 %s, want %s", got, sum)
	}
	b.waitSent("outage.bin")
	for _, br := range []*browser{a, b} {
		if s := br.status(); !strings.Contains(s, "hub unreachable") {
			t.Errorf("%s: status %q while the hub is still down", br.name, s)
		}
		if !br.samePeer("before the outage") {
			t.Errorf("%s: the peer connection was replaced while the hub was down", br.name)
		}
	}

	gate.open(st.url)
	for _, br := range []*browser{a, b} {
		// Reconnecting waits at most the backoff's cap.
		br.waitJSWithin(`window.tryst.hub === "up" && `+statusJS+` === "Connected" && document.getElementById("path").textContent.startsWith("Direct")`,
			proto.ReconnectBackoffMax+10*time.Second)
	}
	a.say("after the outage")
	b.waitMessage("after the outage")
	for _, br := range []*browser{a, b} {
		if !br.samePeer("before the outage") {
			t.Errorf("%s: resuming replaced a live peer connection", br.name)
		}
	}

	// A step that needs the room: the guest drops its connection, and a new
	// one is signalled through the hub it resumed.
	var closed bool
	b.eval(`(() => { window.tryst.peer.pc.close(); return true; })()`, &closed)
	for _, br := range []*browser{a, b} {
		br.waitJS(`!!window.tryst.peer && window.tryst.peer.confirmed && window.tryst.peer.mark === undefined && ` +
			statusJS + ` === "Connected"`)
	}
	b.say("on a new connection")
	a.waitMessage("on a new connection")
	a.shot("after-outage")
}

// TestBrowserResilienceRoomGone: the hub comes back without the room (a
// restart that kept nothing). While the peer connection lives, chat goes
// on and the pages say so; once it is gone too, the page shows the end:
// no message box, no stale path or round-trip line.
func TestBrowserResilienceRoomGone(t *testing.T) {
	st := startStack(t)
	gate := newHubGate(t, st.url)
	a, b := connectedPages(t, gate.url)
	// A round trip shown, to see it cleared at the end.
	a.waitJS(`document.getElementById("rtt").textContent.includes("round trip")`)

	gate.cut()
	gate.open(roomlessHub(t))
	for _, br := range []*browser{a, b} {
		br.waitJS(`window.tryst.hub === "gone" && ` + statusJS + `.includes("no longer knows this room")`)
	}
	a.say("the room is gone")
	b.waitMessage("the room is gone")
	b.say("but we are not")
	a.waitMessage("but we are not")
	var enabled bool
	a.eval(`!document.getElementById("message").disabled && !window.tryst.ended`, &enabled)
	if !enabled {
		t.Error("the session ended while the peer connection was up")
	}
	a.shot("room-gone")

	// The guest's connection goes away (a tab closed would take it too, but
	// the host would notice only after the 15 s of silence): nothing can
	// bring it back.
	var closed bool
	b.eval(`(() => { window.tryst.peer.pc.close(); return true; })()`, &closed)
	a.waitJS(`window.tryst.ended && ` + statusJS + `.includes("no longer knows this room")`)
	var ui struct {
		Disabled bool   `json:"disabled"`
		Path     string `json:"path"`
		RTT      string `json:"rtt"`
	}
	a.eval(`({disabled: document.getElementById("message").disabled,
		path: document.getElementById("path").textContent, rtt: document.getElementById("rtt").textContent})`, &ui)
	if !ui.Disabled || ui.Path != "" || ui.RTT != "" {
		t.Errorf("ended page: message box disabled %v, path %q, round trip %q", ui.Disabled, ui.Path, ui.RTT)
	}
	a.shot("ended")
}

// TestBrowserMalformedMessage: a control message whose payload is not the
// JSON it should be (and a file chunk too short for its header) is reported
// and skipped; the messages after it arrive on the same connection.
func TestBrowserMalformedMessage(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url)
	b.markPeer("first")

	// Sealed with the connection's keys and queued on its send chain, so
	// that they open and arrive in sequence: only their payloads are wrong.
	var sent bool
	a.eval(`(() => {
		const p = window.tryst.peer, e = new TextEncoder();
		const raw = (type, payload) => { p.sendChain = p.sendChain.then(async () => p.dc.send(await p.sess.seal(type, payload))); };
		raw(2, e.encode("{not json"));       // chat
		raw(5, e.encode("null"));            // pong
		raw(8, new Uint8Array([1, 2, 3]));   // file chunk
		return true; })()`, &sent)
	a.say("after the malformed ones")
	// Well within the 15 s after which a silent connection is replaced (and
	// unacknowledged chat sent again on the new one).
	b.waitJSWithin(`[...document.querySelectorAll("#messages li.peer")].some(li => li.textContent.endsWith("after the malformed ones"))`,
		8*time.Second)
	if !b.samePeer("first") {
		t.Error("the message came on a new connection: the malformed ones broke the first")
	}
	var notes int
	b.eval(`[...document.querySelectorAll("#messages li.note")].filter(li => li.textContent.includes("malformed message")).length`, &notes)
	if notes != 1 {
		t.Errorf("%d notes of a malformed message, want 1", notes)
	}
	b.say("and back")
	a.waitMessage("and back")
}

// TestBrowserResiliencePeerBackProbe: the guest comes back to the hub
// without its old connection, which the host's side still holds open (a
// killed tab leaves it so until the 15 s of silence). The host, told
// peer-back, keeps a live connection but probes it: this one stays silent,
// so the host offers afresh well before the silence timeout would.
func TestBrowserResiliencePeerBackProbe(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url)
	a.markPeer("old")

	// The guest forgets its connection without closing it (the host's end
	// stays open and hears nothing more), then drops its hub connection and
	// resumes.
	var done bool
	b.eval(`(() => { const s = window.tryst, p = s.peer; p.closed = true; clearInterval(p.timer); s.peer = null;
		s.ws.close(); return true; })()`, &done)
	// The probe takes 5 s; the silence timeout would take 10 to 20 s (15 s
	// after the guest's last ping, checked every 5 s).
	a.waitJSWithin(`!!window.tryst.peer && window.tryst.peer.mark === undefined && window.tryst.peer.confirmed`,
		10*time.Second)
	b.waitJS(statusJS + ` === "Connected"`)
	a.say("after the probe")
	b.waitMessage("after the probe")
}

// connectedPages opens a host page on hubURL and a guest page that joins it
// with the same password, and returns once both are connected.
func connectedPages(t *testing.T, hubURL string) (host, guest *browser) {
	t.Helper()
	host, guest = newBrowser(t, "host"), newBrowser(t, "guest")
	link := host.host(hubURL, "pw", false, false)
	guest.join(link, "pw", false)
	host.connected()
	guest.connected()
	return host, guest
}
