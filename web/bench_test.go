package web

// Browser transfer benchmarks (docs/BENCHMARKS.md, "Browser transfers").
// They are Go benchmarks, so `make test` never runs them:
//
//	go test ./web -run '^$' -bench BrowserRaw -benchtime 1x      # bare data channels
//	go test ./web -run '^$' -bench BrowserClient -benchtime 1x   # the client, with its baselines
//
// TRYST_BENCH_MIB sets the size of each transfer (default 256 MiB) and
// TRYST_BENCH_RUNS the number of runs (default 3; the median is reported).
// The baselines are bare pages (testdata/bench) with no crypto: one
// ordered, reliable data channel, bufferedAmount kept between 1 and 8 MiB.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/stats"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/internal/teststack"
	"github.com/tryst-chat/tryst/proto"
)

// Flow control of the bare pages and the pion peer: write while
// bufferedAmount is at most benchHigh, else wait for it to drain to benchLow.
const (
	benchHigh = 8 << 20
	benchLow  = 1 << 20
)

// benchMessageSizes are the raw baselines' message sizes: the first
// client's chunk (16 KiB), the second's (proto.DefaultChunkData, 64 KiB,
// both clients) and Chromium's largest message (255 KiB, what the Go client
// sent until 2026-12-05).
var benchMessageSizes = []int{16 << 10, proto.DefaultChunkData, 255 << 10}

func benchEnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func benchSize(tb testing.TB) int64 { return int64(benchEnvInt(tb, "TRYST_BENCH_MIB", 256)) << 20 }
func benchRuns(tb testing.TB) int   { return benchEnvInt(tb, "TRYST_BENCH_RUNS", 3) }

func sizeName(n int) string {
	if n%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// mbps is 10^6 bytes per second.
func benchMBps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

// --- Chromium -------------------------------------------------------------

// chrome is one headless Chromium with a fresh profile, for the benchmarks
// and the memory test (any testing.TB; web's browser tests have their own).
type benchChrome struct {
	tb   testing.TB
	name string
	ctx  context.Context
	pid  int // the browser process; its descendants are the rest of it
}

func startChrome(tb testing.TB, name string) *benchChrome {
	tb.Helper()
	opts, profile := chromiumOptions(tb, "tryst-bench-chromium-", 1280, 800)
	opts = append(opts,
		// A page in a tab nobody looks at must not be throttled.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancelB()
		cancelA()
		if os.RemoveAll(profile) != nil {
			os.RemoveAll(profile) // a straggler wrote a file meanwhile
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	c := &benchChrome{tb: tb, name: name, ctx: ctx}
	if p := chromedp.FromContext(ctx).Browser.Process(); p != nil {
		c.pid = p.Pid
	}
	return c
}

// do runs actions within limit (a hang, not a wait).
func (c *benchChrome) do(limit time.Duration, actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(c.ctx, limit)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	return nil
}

func (c *benchChrome) must(limit time.Duration, actions ...chromedp.Action) {
	c.tb.Helper()
	if err := c.do(limit, actions...); err != nil {
		c.tb.Fatal(err)
	}
}

// eval evaluates js, awaiting a promise, within limit.
func (c *benchChrome) eval(limit time.Duration, js string, out any) error {
	return c.do(limit, chromedp.Evaluate(js, out, func(p *runtimeEvaluateParams) *runtimeEvaluateParams { return p.WithAwaitPromise(true) }))
}

func (c *benchChrome) mustEval(limit time.Duration, js string, out any) {
	c.tb.Helper()
	if err := c.eval(limit, js, out); err != nil {
		c.tb.Fatal(err)
	}
}

// poll waits until js is truthy in the page and stores its value in out.
func (c *benchChrome) poll(limit time.Duration, js string, out any) error {
	return c.do(limit, chromedp.Poll(js, out, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(limit)))
}

// --- Raw baselines --------------------------------------------------------

// rawLink is a connected bare data channel with a sending and a receiving
// end.
type rawLink interface {
	// transfer moves n bytes in messages of size bytes and returns the
	// time from the sender's start until the receiver has them all.
	transfer(n int64, size int) (time.Duration, error)
}

// benchEnv is where the bare pages are served, and the ICE servers they
// use.
type benchEnv struct {
	url string
	ice string // RTCIceServer[] as JSON
}

// benchPages serves testdata/bench on loopback, with a STUN server: in the
// test's network namespace (loopback only) Chromium gathers no host
// candidate, and its server-reflexive candidate, 127.0.0.1, is what makes
// a direct path between two Chromiums. (The relay the stack also runs is
// not offered.)
func benchPages(tb testing.TB) benchEnv {
	tb.Helper()
	st := teststack.Start(tb, teststack.Options{})
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join("testdata", "bench"))))
	tb.Cleanup(srv.Close)
	return benchEnv{url: srv.URL + "/", ice: `[{"urls": ["stun:` + st.TURN.UDPAddr().String() + `"]}]`}
}

func (c *benchChrome) openBench(env benchEnv) {
	c.tb.Helper()
	c.must(time.Minute, chromedp.Navigate(env.url))
	var ok bool
	c.must(time.Minute, chromedp.Poll(`typeof window.bench === "object"`, &ok, chromedp.WithPollingTimeout(time.Minute)))
}

// transferLimit bounds one transfer: 0.2 MB/s would be a hang.
func transferLimit(n int64) time.Duration { return time.Minute + time.Duration(n/200e3)*time.Second }

// pagePair is two peers, each a page of its own Chromium, or both in one
// page when one is true.
type pagePair struct {
	send, recv *benchChrome
}

func newPagePair(tb testing.TB, env benchEnv, onePage bool) *pagePair {
	tb.Helper()
	a := startChrome(tb, "raw-a")
	a.openBench(env)
	p := &pagePair{send: a, recv: a}
	if onePage {
		var ok bool
		a.mustEval(time.Minute, `bench.pair("a", "b", `+env.ice+`)`, &ok)
	} else {
		b := startChrome(tb, "raw-b")
		b.openBench(env)
		p.recv = b
		var offer, answer, state string
		a.mustEval(time.Minute, `bench.offer("a", `+env.ice+`)`, &offer)
		b.mustEval(time.Minute, `bench.answer("b", `+benchJSString(offer)+`, `+env.ice+`)`, &answer)
		var ok bool
		a.mustEval(time.Minute, `bench.accept("a", `+benchJSString(answer)+`)`, &ok)
		a.mustEval(time.Minute, `bench.opened("a")`, &state)
		b.mustEval(time.Minute, `bench.opened("b")`, &state)
	}
	var path string
	a.mustEval(time.Minute, `bench.path("a")`, &path)
	tb.Logf("raw path (local/remote candidate types): %s", path)
	if strings.Contains(path, "relay") {
		tb.Fatalf("raw path %q: relayed", path)
	}
	return p
}

func benchJSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (p *pagePair) transfer(n int64, size int) (time.Duration, error) {
	limit := transferLimit(n)
	var target float64
	if err := p.recv.eval(time.Minute, fmt.Sprintf(`bench.expect("b", %d)`, n), &target); err != nil {
		return 0, err
	}
	arrived := make(chan error, 1)
	go func() {
		var got float64
		arrived <- p.recv.eval(limit, `bench.arrived("b")`, &got)
	}()
	start := time.Now()
	var sent float64
	if err := p.send.eval(limit, fmt.Sprintf(`bench.send("a", %d, %d)`, n, size), &sent); err != nil {
		return 0, err
	}
	if err := <-arrived; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// pionPeer is a bare pion data channel (internal/rtc's settings, as the
// Go client has them) connected to a bare page's peer "a".
type pionPeer struct {
	page    *benchChrome
	pc      *webrtc.PeerConnection
	dc      *webrtc.DataChannel
	got     atomic.Int64
	target  atomic.Int64
	arrived chan struct{}
	lowBuf  chan struct{}
}

func newPionPeer(tb testing.TB, env benchEnv) *pionPeer {
	tb.Helper()
	page := startChrome(tb, "raw-page")
	page.openBench(env)
	p := &pionPeer{page: page, arrived: make(chan struct{}, 1), lowBuf: make(chan struct{}, 1)}
	p.target.Store(1 << 62)
	pc, err := rtc.NewAPI(rtc.Options{LoopbackOnly: true}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	p.pc = pc
	tb.Cleanup(func() { _ = pc.Close() })
	opened := make(chan *webrtc.DataChannel, 1)
	pc.OnDataChannel(func(d *webrtc.DataChannel) {
		d.OnOpen(func() { opened <- d })
		d.OnMessage(func(m webrtc.DataChannelMessage) {
			if p.got.Add(int64(len(m.Data))) >= p.target.Load() {
				select {
				case p.arrived <- struct{}{}:
				default:
				}
			}
		})
	})
	var offerJSON string
	page.mustEval(time.Minute, `bench.offer("a", `+env.ice+`)`, &offerJSON)
	var offer webrtc.SessionDescription
	if err := json.Unmarshal([]byte(offerJSON), &offer); err != nil {
		tb.Fatal(err)
	}
	if err := pc.SetRemoteDescription(offer); err != nil {
		tb.Fatal(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-webrtc.GatheringCompletePromise(pc):
	case <-ctx.Done():
		tb.Fatal("pion: ICE gathering did not complete")
	}
	answerJSON, err := json.Marshal(pc.LocalDescription())
	if err != nil {
		tb.Fatal(err)
	}
	var ok bool
	page.mustEval(time.Minute, `bench.accept("a", `+benchJSString(string(answerJSON))+`)`, &ok)
	var state, path string
	page.mustEval(time.Minute, `bench.opened("a")`, &state)
	page.mustEval(time.Minute, `bench.path("a")`, &path)
	tb.Logf("raw path (Chromium's local/remote candidate types): %s; pion: %s", path, rtc.SelectedPath(pc))
	select {
	case p.dc = <-opened:
	case <-ctx.Done():
		tb.Fatal("pion: the data channel did not open")
	}
	p.dc.SetBufferedAmountLowThreshold(benchLow)
	p.dc.OnBufferedAmountLow(func() {
		select {
		case p.lowBuf <- struct{}{}:
		default:
		}
	})
	return p
}

// chromiumToPion sends from the page to pion.
type chromiumToPion struct{ *pionPeer }

func (p chromiumToPion) transfer(n int64, size int) (time.Duration, error) {
	limit := transferLimit(n)
	p.target.Store(p.got.Load() + n)
	select { // a stale signal from an earlier run
	case <-p.arrived:
	default:
	}
	start := time.Now()
	var sent float64
	if err := p.page.eval(limit, fmt.Sprintf(`bench.send("a", %d, %d)`, n, size), &sent); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for p.got.Load() < p.target.Load() {
		select {
		case <-p.arrived:
		case <-ctx.Done():
			return 0, fmt.Errorf("pion received %d of %d bytes", p.got.Load()-(p.target.Load()-n), n)
		}
	}
	return time.Since(start), nil
}

// pionToChromium sends from pion to the page.
type pionToChromium struct{ *pionPeer }

func (p pionToChromium) transfer(n int64, size int) (time.Duration, error) {
	limit := transferLimit(n)
	var target float64
	if err := p.page.eval(time.Minute, fmt.Sprintf(`bench.expect("a", %d)`, n), &target); err != nil {
		return 0, err
	}
	arrived := make(chan error, 1)
	go func() {
		var got float64
		arrived <- p.page.eval(limit, `bench.arrived("a")`, &got)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	buf := make([]byte, size)
	start := time.Now()
	for sent := int64(0); sent < n; {
		for p.dc.BufferedAmount() > benchHigh {
			select {
			case <-p.lowBuf:
			case <-ctx.Done():
				return 0, errors.New("pion: the send buffer did not drain")
			}
		}
		m := buf[:min(int64(size), n-sent)]
		if err := p.dc.Send(m); err != nil {
			return 0, err
		}
		sent += int64(len(m))
	}
	if err := <-arrived; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// rawKinds are the raw baselines, by sub-benchmark name.
var rawKinds = []string{"chromium-chromium", "one-page", "chromium-pion", "pion-chromium"}

func newRawLink(tb testing.TB, kind string, env benchEnv) rawLink {
	tb.Helper()
	switch kind {
	case "chromium-chromium":
		return newPagePair(tb, env, false)
	case "one-page":
		return newPagePair(tb, env, true)
	case "chromium-pion":
		return chromiumToPion{newPionPeer(tb, env)}
	case "pion-chromium":
		return pionToChromium{newPionPeer(tb, env)}
	}
	tb.Fatalf("unknown raw link %q", kind)
	return nil
}

// BenchmarkBrowserRaw measures bare data channels: two Chromium processes
// (a page each), two peer connections in one page, and Chromium with a
// pion peer in this process, each way; at 16 KiB and 255 KiB messages.
func BenchmarkBrowserRaw(b *testing.B) {
	for _, kind := range rawKinds {
		for _, size := range benchMessageSizes {
			b.Run(kind+"/"+sizeName(size), func(b *testing.B) {
				n, runs := benchSize(b), benchRuns(b)
				link := newRawLink(b, kind, benchPages(b))
				var rates []float64
				for b.Loop() {
					for range runs {
						d, err := link.transfer(n, size)
						if err != nil {
							b.Fatal(err)
						}
						rates = append(rates, benchMBps(n, d))
					}
				}
				b.Logf("%s, %d MiB, %s messages: %.1f MB/s (runs %s)", kind, n>>20, sizeName(size), stats.Median(rates), fmtRates(rates))
				b.ReportMetric(stats.Median(rates), "MB/s")
				b.ReportMetric(slices.Min(rates), "min-MB/s")
				b.ReportMetric(slices.Max(rates), "max-MB/s")
			})
		}
	}
}

func fmtRates(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strings.Join(s, ", ")
}

// --- The client -----------------------------------------------------------

// The client's page is read through the DOM contract of the second client
// (docs: the #room-state, .file-card and #rtt elements); where it is
// absent, through the first client's page (#path, a.download, ".transfer
// .ok"), so that the same benchmark gives a before-figure.

// jsConnected is true once the page shows a connection.
const jsConnected = `(() => {
	const s = document.getElementById("room-state");
	if (s) return s.dataset.state === "connected";
	const p = document.getElementById("path");
	return p !== null && p.textContent !== "";
})()`

// jsFileStateFn is a function of (dir, name) that returns the state of
// the file card of name in direction dir ("in" or "out"): "verified",
// "failed: reason", or "" while under way.
const jsFileStateFn = `(dir, name) => {
	for (const c of document.querySelectorAll('.file-card[data-dir="' + dir + '"]')) {
		const n = c.querySelector(".name");
		if (!n || n.textContent.trim() !== name) continue;
		const s = c.dataset.status;
		if (s === "verified") return "verified";
		if (s === "failed" || s === "refused") return "failed: " + s + " " + (c.querySelector(".detail")?.textContent || "");
		return "";
	}
	if (dir === "in") {
		for (const a of document.querySelectorAll("a.download")) if (a.download === name) return "verified";
		for (const d of document.querySelectorAll(".transfer .bad")) if (d.textContent.includes(name)) return "failed: " + d.textContent;
		return "";
	}
	for (const d of document.querySelectorAll(".transfer .ok")) if (d.textContent.includes("Sent " + name + ":")) return "verified";
	for (const d of document.querySelectorAll(".transfer .bad")) if (d.textContent.includes(name)) return "failed: " + d.textContent;
	return "";
}`

// jsFileState is jsFileStateFn's answer for dir and name.
func jsFileState(dir, name string) string {
	return fmt.Sprintf("(%s)(%s, %s)", jsFileStateFn, benchJSString(dir), benchJSString(name))
}

// jsRTTFn returns the last keepalive round trip in ms (#rtt data-ms; the
// first client wrote it only as text), or -1.
const jsRTTFn = `() => {
	const r = document.getElementById("rtt");
	if (!r) return -1;
	if (r.dataset.ms !== undefined && r.dataset.ms !== "") return Number(r.dataset.ms);
	const m = r.textContent.match(/([0-9.]+) ms/);
	return m ? Number(m[1]) : -1;
}`

// jsWatch makes the page watch itself during one transfer, so that the
// harness need not poll it: window.benchWatch records each new keepalive
// round trip (rtts: a new value is a new ping, one per keepalive interval)
// and settles its promise done with the state of the file card of name in
// direction dir once that is no longer "". Polling both pages 30 times a
// second, as the harness did, took about 5 % of this 2-core machine during
// the client's transfers and nothing during the raw baseline's.
func jsWatch(dir, name string) string {
	return fmt.Sprintf(`((dir, name, fileState, rtt) => {
	window.benchWatch?.stop();
	const w = { rtts: [], state: "" };
	let last, settle;
	w.done = new Promise((r) => { settle = r; });
	const look = () => {
		const ms = rtt();
		if (ms >= 0 && ms !== last) { last = ms; w.rtts.push(ms); }
		if (w.state === "") {
			w.state = fileState(dir, name);
			if (w.state !== "") settle(w.state);
		}
	};
	const obs = new MutationObserver(look);
	obs.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
	w.stop = () => obs.disconnect();
	window.benchWatch = w;
	look();
	return true;
})(%s, %s, %s, %s)`, benchJSString(dir), benchJSString(name), jsFileStateFn, jsRTTFn)
}

// clientVersion is 2 for a page with the second client's DOM, else 1.
func (c *benchChrome) clientVersion() int {
	c.tb.Helper()
	var v2 bool
	c.mustEval(time.Minute, `document.getElementById("room-state") !== null`, &v2)
	if v2 {
		return 2
	}
	return 1
}

// sendChunk is the chunk size the sending client uses: the Go client's
// default, or what the page's protocol.js says it sends (16 KiB for the
// first client, which has no such export).
func (p *clientPair) sendChunk() int {
	if p.sender == nil {
		return proto.DefaultChunkData
	}
	if p.version < 2 {
		return 16 << 10
	}
	var n int
	p.sender.mustEval(time.Minute, `import("/protocol.js").then((m) => m.DEFAULT_CHUNK_DATA)`, &n)
	return n
}

func (c *benchChrome) hostRoom(url, password string) string {
	c.tb.Helper()
	var link string
	c.must(time.Minute, chromedp.Navigate(url), chromedp.WaitVisible("#new-room", chromedp.ByID), chromedp.Click("#new-room", chromedp.ByID),
		chromedp.WaitVisible("#share-link", chromedp.ByID))
	var ok bool
	c.must(time.Minute, chromedp.Poll(`document.getElementById("share-link").value.includes("#")`, &ok, chromedp.WithPollingTimeout(time.Minute)))
	c.must(time.Minute, chromedp.Value("#share-link", &link, chromedp.ByID))
	c.typePassword(password)
	return link
}

func (c *benchChrome) typePassword(password string) {
	c.tb.Helper()
	c.must(time.Minute, chromedp.WaitVisible("#password-input", chromedp.ByID), chromedp.SendKeys("#password-input", password, chromedp.ByID),
		chromedp.Click("#connect", chromedp.ByID))
}

func (c *benchChrome) joinRoom(link, password string) {
	c.tb.Helper()
	c.must(time.Minute, chromedp.Navigate(link))
	c.typePassword(password)
}

func (c *benchChrome) waitConnected() {
	c.tb.Helper()
	var ok bool
	if err := c.poll(2*time.Minute, jsConnected, &ok); err != nil {
		c.tb.Fatal(err)
	}
}

// waitFile waits until the file card of name in direction dir is verified.
func (c *benchChrome) waitFile(limit time.Duration, dir, name string) error {
	var state string
	if err := c.poll(limit, jsFileState(dir, name), &state); err != nil {
		return err
	}
	if state != "verified" {
		return fmt.Errorf("%s: file %s (%s): %s", c.name, name, dir, state)
	}
	return nil
}

// clientPair is two ends of a room: browsers, or a browser and the Go
// client (what `tryst send` and `tryst receive` run).
type clientPair struct {
	tb      testing.TB
	sender  *benchChrome // nil: the Go client sends
	recv    *benchChrome // nil: the Go client receives
	goPeer  *clienttest.Member
	version int
	hashing time.Duration // the last transfer's time from selection to the end of the sender's hashing (±100 ms)
}

// startClientPair opens a room between a host browser and a guest that is
// a browser or, when goGuest, the Go client.
func startClientPair(tb testing.TB, goGuest, goSends bool) *clientPair {
	tb.Helper()
	st := teststack.Start(tb, teststack.Options{Web: Handler()})
	host := startChrome(tb, "host")
	const password = "benchmark password"
	link := host.hostRoom(st.URL, password)
	p := &clientPair{tb: tb, sender: host}
	if goGuest {
		code := link[strings.Index(link, "#")+1:]
		p.goPeer = clienttest.Start(tb, client.Config{Hub: st.URL, Room: code, Password: password, OutDir: tb.TempDir()})
		p.goPeer.Timeout = 2 * time.Minute
		p.goPeer.WaitFor(client.EventConnected)
		if goSends {
			p.sender, p.recv = nil, host
		}
	} else {
		guest := startChrome(tb, "guest")
		guest.joinRoom(link, password)
		guest.waitConnected()
		p.recv = guest
	}
	host.waitConnected()
	p.version = host.clientVersion()
	return p
}

// clientRun is one transfer through the client.
type clientRun struct {
	d          time.Duration // from the file's selection to the receiver's verdict
	rtts       []float64     // keepalive round trips seen during it, ms
	rssBefore  int64         // the receiving browser's processes, bytes
	rssPeak    int64
	rssSamples int
}

// transfer sends the file at path (its base name must be new to the room)
// and samples the receiving browser's memory every 250 ms while it runs;
// the pages record their own round-trip times (jsWatch).
func (p *clientPair) transfer(path string, size int64) (clientRun, error) {
	var r clientRun
	if p.recv != nil {
		r.rssBefore = treeRSS(p.recv.pid)
		r.rssPeak = r.rssBefore
	}
	name := filepath.Base(path)
	for _, w := range []struct {
		c   *benchChrome
		dir string
	}{{p.sender, "out"}, {p.recv, "in"}} {
		if w.c == nil {
			continue
		}
		var ok bool
		if err := w.c.eval(time.Minute, jsWatch(w.dir, name), &ok); err != nil {
			return r, err
		}
	}
	stop := make(chan struct{})
	sampled := make(chan clientRun, 1)
	go func() {
		s := r
		defer func() { sampled <- s }()
		if p.recv == nil {
			return
		}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			s.rssPeak = max(s.rssPeak, treeRSS(p.recv.pid))
			s.rssSamples++
		}
	}()
	pages := []*benchChrome{}
	if dir := benchProfileDir(); dir != "" {
		for _, c := range []*benchChrome{p.sender, p.recv} {
			if c != nil && c.startProfile() == nil {
				pages = append(pages, c)
			}
		}
	}
	var tracing sync.WaitGroup
	defer tracing.Wait()
	if dir := benchTraceDir(); dir != "" {
		// Mid-transfer: the sender has been sending for a while.
		for _, c := range []*benchChrome{p.sender, p.recv} {
			if c == nil {
				continue
			}
			tracing.Go(func() {
				select {
				case <-time.After(4 * time.Second):
					c.trace(p.tb, traceWindow, filepath.Join(dir, fmt.Sprintf("%s-%s.trace.json", filepath.Base(path), c.name)))
				case <-stop:
				}
			})
		}
	}
	d, err := p.send(path, size)
	for _, c := range pages {
		c.stopProfile(p.tb, filepath.Join(benchProfileDir(), fmt.Sprintf("%s-%s.cpuprofile", filepath.Base(path), c.name)))
	}
	close(stop)
	r = <-sampled
	r.d = d
	for _, c := range []*benchChrome{p.sender, p.recv} {
		var rtts []float64
		if c != nil && c.eval(time.Minute, `window.benchWatch.stop(), window.benchWatch.rtts`, &rtts) == nil {
			r.rtts = append(r.rtts, rtts...)
		}
	}
	return r, err
}

// send sends the file at path and returns the time from its selection
// until the receiver verified it; it then waits for the sender's verdict.
func (p *clientPair) send(path string, size int64) (time.Duration, error) {
	name := filepath.Base(path)
	limit := transferLimit(size)
	start := time.Now()
	p.hashing = 0
	if p.sender != nil {
		// How long the sending page hashes the file before offering it.
		hashed := make(chan time.Duration, 1)
		stop := make(chan struct{})
		defer func() { close(stop); p.hashing = <-hashed }()
		go func() {
			js := fmt.Sprintf(`[...document.querySelectorAll('.file-card[data-dir="out"]')].find((c) => c.querySelector(".name")?.textContent.trim() === %q)?.dataset.status || ""`, name)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				var status string
				if p.sender.eval(30*time.Second, js, &status) == nil && status != "" && status != "hashing" {
					hashed <- time.Since(start)
					return
				}
				select {
				case <-tick.C:
				case <-stop:
					hashed <- 0
					return
				}
			}
		}()
		if err := p.sender.do(time.Minute, chromedp.SetUploadFiles("#file-input", []string{path}, chromedp.ByID)); err != nil {
			return 0, err
		}
	} else if err := p.goPeer.Client.SendFile(path); err != nil {
		return 0, err
	}
	var d time.Duration
	if p.recv != nil {
		if err := p.waitReceived(limit, name); err != nil {
			return 0, err
		}
		d = time.Since(start)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		ev, err := p.goPeer.Next(ctx, client.EventFileReceived)
		if err != nil {
			return 0, err
		}
		d = time.Since(start)
		if !ev.File.OK {
			return 0, fmt.Errorf("Go receiver: %s", ev.File.Err)
		}
		if err := os.Remove(ev.File.Path); err != nil {
			return 0, err
		}
	}
	// The sender's verdict too, so that the next run starts clean.
	if p.sender != nil {
		return d, p.sender.waitFile(time.Minute, "out", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := p.goPeer.Next(ctx, client.EventFileSent)
	if err != nil {
		return 0, err
	}
	if !ev.File.OK {
		return 0, fmt.Errorf("Go sender: %s", ev.File.Err)
	}
	return d, nil
}

// waitReceived waits until the receiving page shows name verified, or
// either page shows it failed (so that a file the sender gave up on fails
// at once rather than at the deadline), on the pages' jsWatch.
func (p *clientPair) waitReceived(limit time.Duration, name string) error {
	type verdict struct {
		c     *benchChrome
		state string
		err   error
	}
	verdicts := make(chan verdict, 2)
	pages := []*benchChrome{p.recv}
	if p.sender != nil {
		pages = append(pages, p.sender)
	}
	for _, c := range pages {
		go func() {
			var state string
			err := c.eval(limit, `window.benchWatch.done`, &state)
			verdicts <- verdict{c, state, err}
		}()
	}
	for range pages {
		v := <-verdicts
		switch {
		case v.err != nil:
			return fmt.Errorf("file %s: %w", name, v.err)
		case v.state == "verified" && v.c == p.recv:
			return nil
		case v.state != "verified":
			return fmt.Errorf("%s: file %s: %s", v.c.name, name, v.state)
		}
		// The sender saw it verified first: the receiver's verdict follows.
	}
	return fmt.Errorf("%s: file %s: no verdict", p.recv.name, name)
}

// benchRandomFile writes n random bytes to a new file in dir and returns
// its path and SHA-256.
func benchRandomFile(tb testing.TB, dir string, n int64) (string, string) {
	tb.Helper()
	f, err := os.Create(filepath.Join(dir, "source.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, n); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil))
}

// linkAs gives src another name (a hard link) in dir, for a new transfer of
// the same bytes.
func linkAs(tb testing.TB, src, name string) string {
	tb.Helper()
	dst := filepath.Join(filepath.Dir(src), name)
	if err := os.Link(src, dst); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// clientKinds are the client scenarios: the client's sub-benchmark and its
// like-for-like raw baseline.
var clientKinds = []struct {
	name, baseline  string
	goGuest, goSend bool
}{
	{"browser-browser", "chromium-chromium", false, false},
	{"browser-to-cli", "chromium-pion", true, false},
	{"cli-to-browser", "pion-chromium", true, true},
}

// BenchmarkBrowserClient moves files through the client's page, browser
// to browser and between a browser and the Go client, and in each round
// the like-for-like raw baseline at the client's message size, in the same
// run: MB/s of each, their ratio (the median over rounds of each round's
// ratio), keepalive RTT during the transfers, and how much the receiving
// browser's processes grew.
func BenchmarkBrowserClient(b *testing.B) {
	for _, k := range clientKinds {
		b.Run(k.name, func(b *testing.B) {
			n, runs := benchSize(b), benchRuns(b)
			p := startClientPair(b, k.goGuest, k.goSend)
			size := p.sendChunk()
			raw := newRawLink(b, k.baseline, benchPages(b))
			src, _ := benchRandomFile(b, b.TempDir(), n)
			var rates, rawRates, ratios, rtts []float64
			var growth []float64
			for b.Loop() {
				for i := range runs {
					d, err := raw.transfer(n, size)
					if err != nil {
						b.Fatal(err)
					}
					rawRates = append(rawRates, benchMBps(n, d))
					r, err := p.transfer(linkAs(b, src, fmt.Sprintf("bench-%d.bin", i+1)), n)
					if err != nil {
						b.Fatal(err)
					}
					rates = append(rates, benchMBps(n, r.d))
					ratios = append(ratios, rates[i]/rawRates[i])
					rtts = append(rtts, r.rtts...)
					if p.recv != nil {
						growth = append(growth, float64(r.rssPeak-r.rssBefore)/1e6)
					}
					b.Logf("run %d: client v%d %.1f MB/s, raw %s %.1f MB/s (%.2f×); RTT samples %v ms; receiver RSS %.0f → peak %.0f MB (%d samples); the sending page hashed for %.1f s",
						i+1, p.version, rates[i], k.baseline, rawRates[i], ratios[i], r.rtts, float64(r.rssBefore)/1e6, float64(r.rssPeak)/1e6, r.rssSamples, p.hashing.Seconds())
				}
			}
			b.Logf("%s, client v%d, %d MiB, raw %s at %s: client %.1f MB/s (%s), raw %.1f MB/s (%s), ratio %.2f",
				k.name, p.version, n>>20, k.baseline, sizeName(size), stats.Median(rates), fmtRates(rates), stats.Median(rawRates), fmtRates(rawRates), stats.Median(ratios))
			b.ReportMetric(stats.Median(rates), "MB/s")
			b.ReportMetric(stats.Median(rawRates), "raw-MB/s")
			b.ReportMetric(stats.Median(ratios), "x-raw")
			if len(rtts) > 0 {
				b.ReportMetric(slices.Max(rtts), "rtt-max-ms")
				b.ReportMetric(stats.Median(rtts), "rtt-p50-ms")
			}
			if len(growth) > 0 {
				b.ReportMetric(slices.Max(growth), "rss-growth-MB")
			}
			b.ReportMetric(float64(p.version), "client-version")
		})
	}
}
