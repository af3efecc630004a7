package web

import (
	"context"
	"errors"
	"fmt"
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
	srv := httptest.NewServer(answeringHub(func(proto.Frame) proto.Frame {
		return proto.Frame{Type: proto.TypeError, Code: proto.CodeNoSuchRoom, Message: "no such room"}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// answeringHub is a stand-in hub's WebSocket handler: it answers every
// frame a client sends with what answer returns for it.
func answeringHub(answer func(proto.Frame) proto.Frame) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
			if err := wsjson.Write(ctx, ws, answer(f)); err != nil {
				return
			}
		}
	}
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
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			b.t.Fatalf("%s: not within %v: %s (state: %s)", b.name, d, cond, b.stateLine())
		}
		b.t.Fatalf("%s: %v (state: %s)", b.name, err, b.stateLine())
	}
}

// hubUnreachable: the page says the hub is down, and the chat is usable.
const hubUnreachable = hubJS + ` === "down" && document.getElementById("hub-state").textContent.includes("Hub unreachable") && ` +
	stateJS + ` === "connected" && !document.getElementById("message").disabled`

// backToNormal: connected directly, the hub up, nothing said about it.
const backToNormal = hubJS + ` === "up" && document.getElementById("hub-state").textContent === "" && ` + stateJS +
	` === "connected" && ` + pathJS + ` === "direct"`

// TestBrowserResilienceHubOutage: once two browsers are connected, the hub
// going away stops neither chat nor a transfer, the pages say the hub is
// unreachable, and once it is back they resume into the room (the same
// peer connection), which then serves a new connection.
func TestBrowserResilienceHubOutage(t *testing.T) {
	st := startStack(t)
	gate := newHubGate(t, st.url)
	a, b := connectedPages(t, gate.url, true)
	a.say("before the outage")
	b.waitMessage("before the outage")
	conns := map[*browser]int{a: a.conn(), b: b.conn()}

	gate.cut()
	for _, br := range []*browser{a, b} {
		br.waitJS(hubUnreachable)
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
		var down bool
		br.eval(hubUnreachable, &down)
		if !down {
			t.Errorf("%s: state %s while the hub is still down", br.name, br.stateLine())
		}
		if br.conn() != conns[br] {
			t.Errorf("%s: the peer connection was replaced while the hub was down", br.name)
		}
	}

	gate.open(st.url)
	for _, br := range []*browser{a, b} {
		// Reconnecting waits at most the backoff's cap.
		br.waitJSWithin(backToNormal, proto.ReconnectBackoffMax+10*time.Second)
	}
	a.say("after the outage")
	b.waitMessage("after the outage")
	for _, br := range []*browser{a, b} {
		if br.conn() != conns[br] {
			t.Errorf("%s: resuming replaced a live peer connection", br.name)
		}
	}

	// A step that needs the room: the guest's connection breaks, and a new
	// one is signalled through the hub it resumed.
	b.fire("tryst-test-close-pc")
	for _, br := range []*browser{a, b} {
		br.waitJS(fmt.Sprintf(`Number(document.getElementById("room-state").dataset.conn) > %d && %s`, conns[br], backToNormal))
	}
	b.say("on a new connection")
	a.waitMessage("on a new connection")
	a.shot("after-outage")
}

// TestBrowserResilienceRoomGone: the hub comes back without the room (a
// restart that kept nothing). While the peer connection lives, chat goes
// on and the pages say so; once it is gone too, the page shows the end:
// no message box, no stale path or round-trip line, and the next step.
func TestBrowserResilienceRoomGone(t *testing.T) {
	st := startStack(t)
	gate := newHubGate(t, st.url)
	a, b := connectedPages(t, gate.url, true)
	// A round trip shown, to see it cleared at the end.
	a.waitJS(`document.getElementById("rtt").dataset.ms !== undefined`)

	gate.cut()
	gate.open(roomlessHub(t))
	for _, br := range []*browser{a, b} {
		br.waitJS(hubJS + ` === "gone" && document.getElementById("hub-state").textContent.includes("no longer knows this room") && ` +
			stateJS + ` === "connected"`)
	}
	a.say("the room is gone")
	b.waitMessage("the room is gone")
	b.say("but we are not")
	a.waitMessage("but we are not")
	var enabled bool
	a.eval(`!document.getElementById("message").disabled && `+stateJS+` !== "ended"`, &enabled)
	if !enabled {
		t.Error("the session ended while the peer connection was up")
	}
	a.shot("room-gone")

	// The guest's connection goes away: nothing can bring it back.
	b.fire("tryst-test-close-pc")
	a.waitJS(stateJS + ` === "ended" && ` + alertJS + `.includes("no longer knows this room") && ` +
		`document.getElementById("alert-action").textContent === "Start a new room" && !document.getElementById("alert-action").hidden`)
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

// TestBrowserMalformedMessage: control messages whose payload is not the
// JSON it should be are reported (once) and skipped; the messages after
// them arrive on the same connection. The sender's page seals them with
// its real keys: instrument's Web Crypto hook swaps the plaintext of a chat
// message whose text holds a marker.
func TestBrowserMalformedMessage(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url, true)
	first := b.conn()
	a.say("__malformed_json__")
	a.say("__malformed_null__")
	a.say("after the malformed ones")
	// Well within the 15 s after which a silent connection is replaced.
	b.waitJSWithin(`[...document.querySelectorAll("#messages li.peer .text")].some(e => e.textContent === "after the malformed ones")`,
		8*time.Second)
	if b.conn() != first {
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
// while its old connection, which the host's side still holds open,
// carries nothing from it any more (a killed tab leaves it so until the
// 15 s of silence). The host, told peer-back, keeps a live connection but
// probes it: this one stays silent, so the host offers afresh well before
// the silence timeout would.
func TestBrowserResiliencePeerBackProbe(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url, true)
	hostConn := a.conn()

	// The guest's page stops sending on its connection (frozen, not
	// closed: the host hears nothing, not a close), then loses its hub
	// connection and resumes.
	b.fire("tryst-test-freeze")
	b.fire("tryst-test-drop-ws")
	// The probe takes 5 s; the silence timeout would take 10 to 20 s (15 s
	// after the guest's last ping, checked every 5 s).
	a.waitJSWithin(fmt.Sprintf(`Number(document.getElementById("room-state").dataset.conn) > %d && %s === "connected"`, hostConn, stateJS),
		10*time.Second)
	b.waitJS(stateJS + ` === "connected"`)
	a.say("after the probe")
	b.waitMessage("after the probe")
}

// connectedPages opens a host page on hubURL and a guest page that joins it
// with the same password, and returns once both are connected;
// instrumented pages can be broken by the test (instrument).
func connectedPages(t *testing.T, hubURL string, instrumented bool) (host, guest *browser) {
	t.Helper()
	host, guest = newBrowser(t, "host"), newBrowser(t, "guest")
	if instrumented {
		host.instrument()
		guest.instrument()
	}
	link := host.host(hubURL, "pw", false)
	guest.join(link, "pw", false)
	host.connected()
	guest.connected()
	return host, guest
}
