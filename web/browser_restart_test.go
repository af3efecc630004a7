package web

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tryst-chat/tryst/internal/teststack"
	"github.com/tryst-chat/tryst/proto"
)

var (
	restartHubKey = []byte("browser-restart-hub-key-0123456789abcdef")
	otherHubKey   = []byte("some-other-hub-key-for-tests-0123456789")
)

// startKeyedStack starts a hub serving this package's client that signs and
// verifies resume tokens with key: two started with the same key are one
// hub restarted.
func startKeyedStack(t *testing.T, key []byte) *stack {
	t.Helper()
	st := teststack.Start(t, teststack.Options{Web: Handler(), HubKeys: [][]byte{key}})
	return &stack{url: st.URL, st: st}
}

// crash stops the hub behind gate the way kill -9 does: every page's
// connection cut at once, nothing said, every room in memory lost.
func crash(t *testing.T, gate *hubGate, st *stack) {
	t.Helper()
	gate.cut()
	if err := st.st.Hub.Close(); err != nil {
		t.Fatal(err)
	}
}

// keepConsole records what the page logs; the test's log shows it if the
// test fails.
func keepConsole(b *browser) {
	var mu sync.Mutex
	var lines []string
	chromedp.ListenTarget(b.ctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			args := make([]string, 0, len(e.Args))
			for _, a := range e.Args {
				if a.Value != nil {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			line = string(e.Type) + ": " + strings.Join(args, " ")
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				line += " " + e.ExceptionDetails.Exception.Description
			}
		default:
			return
		}
		mu.Lock()
		lines = append(lines, line)
		mu.Unlock()
	})
	b.logs = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
	b.t.Cleanup(func() {
		if !b.t.Failed() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		b.t.Logf("%s's console (%d lines):\n%s", b.name, len(lines), strings.Join(lines, "\n"))
	})
}

// numbered counts numbered chat messages both ways: say sends the next
// ones, check waits until the other page shows every one sent so far and
// fails the test unless each arrived exactly once and in order.
type numbered struct {
	t    *testing.T
	sent map[*browser]int
}

func (n *numbered) say(from *browser, k int) {
	n.t.Helper()
	for range k {
		n.sent[from]++
		from.say(fmt.Sprintf("from %s #%d", from.name, n.sent[from]))
	}
}

// check waits for to to show every message from sent so far, then
// compares the numbers it shows with 1…n.
func (n *numbered) check(to, from *browser) {
	n.t.Helper()
	prefix := jsString("from " + from.name + " #")
	shown := `[...document.querySelectorAll("#messages li.peer .text")].map(e => e.textContent).filter(s => s.startsWith(` +
		prefix + `)).map(s => Number(s.slice(` + prefix + `.length)))`
	want := n.sent[from]
	// Bounded; a timeout is reported below with the numbers shown.
	ctx, cancel := context.WithTimeout(to.ctx, 60*time.Second)
	chromedp.Run(ctx, chromedp.Poll(fmt.Sprintf(`%s.length >= %d`, shown, want), nil,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second)))
	cancel()
	var got []int
	to.eval(shown, &got)
	ok := len(got) == want
	for i := 0; ok && i < want; i++ {
		ok = got[i] == i+1
	}
	if !ok {
		n.t.Errorf("%s shows %s's messages %v, want 1…%d each once in order (state: %s)", to.name, from.name, got, want, to.stateLine())
	}
}

func (n *numbered) exchange(a, b *browser, k int) {
	n.t.Helper()
	n.say(a, k)
	n.say(b, k)
	n.check(b, a)
	n.check(a, b)
}

// TestBrowserRestart: the hub restarts (crashes, and a new one with the same
// hub key takes its address) during a direct chat. The chat goes on while it
// is away, both pages resume into the room it recreates from their tokens
// (the same peer connection, the normal status again), and the room then
// serves a new connection: no message lost or shown twice throughout.
func TestBrowserRestart(t *testing.T) {
	st := startKeyedStack(t, restartHubKey)
	gate := newHubGate(t, st.url)
	a, b := connectedPages(t, gate.url, true)
	chat := &numbered{t: t, sent: map[*browser]int{}}
	chat.exchange(a, b, 3)
	conns := map[*browser]int{a: a.conn(), b: b.conn()}

	crash(t, gate, st)
	for _, br := range []*browser{a, b} {
		br.waitJS(hubUnreachable)
	}
	chat.exchange(a, b, 2)

	restarted := startKeyedStack(t, restartHubKey)
	gate.open(restarted.url)
	for _, br := range []*browser{a, b} {
		// Reconnecting waits at most the backoff's cap; "up" means the
		// restarted hub took the token (it would say "gone" otherwise).
		br.waitJSWithin(backToNormal, proto.ReconnectBackoffMax+30*time.Second)
		br.shot("resumed")
	}
	chat.exchange(a, b, 3)
	for _, br := range []*browser{a, b} {
		if br.conn() != conns[br] {
			t.Errorf("%s: resuming after the restart replaced a live peer connection", br.name)
		}
	}

	// A step that needs the room: the guest drops its connection, and a new
	// one is signalled through the restarted hub. What either side says
	// meanwhile goes on the new connection, once.
	b.fire("tryst-test-close-pc")
	chat.say(b, 2)
	chat.say(a, 2)
	for _, br := range []*browser{a, b} {
		br.waitJS(fmt.Sprintf(`Number(document.getElementById("room-state").dataset.conn) > %d && %s`, conns[br], backToNormal))
	}
	chat.check(b, a)
	chat.check(a, b)
	chat.exchange(a, b, 3)
	// Nothing shown twice late: a last round trip after every resend.
	chat.exchange(a, b, 1)
	a.shot("after-restart")
	b.shot("after-restart")
}

// TestBrowserRestartOtherKey: a hub restarted with another key cannot read
// the tokens, so it does not know the room: the pages say so, and the chat
// on the live connection goes on.
func TestBrowserRestartOtherKey(t *testing.T) {
	st := startKeyedStack(t, restartHubKey)
	gate := newHubGate(t, st.url)
	a, b := connectedPages(t, gate.url, false)
	chat := &numbered{t: t, sent: map[*browser]int{}}
	chat.exchange(a, b, 2)

	crash(t, gate, st)
	gate.open(startKeyedStack(t, otherHubKey).url)
	for _, br := range []*browser{a, b} {
		br.waitJSWithin(hubJS+` === "gone" && document.getElementById("hub-state").textContent.includes("no longer knows this room")`,
			proto.ReconnectBackoffMax+30*time.Second)
		br.shot("other-key")
	}
	chat.exchange(a, b, 2)
	var enabled bool
	a.eval(`!document.getElementById("message").disabled && `+stateJS+` === "connected"`, &enabled)
	if !enabled {
		t.Error("the session ended while the peer connection was up")
	}
}
