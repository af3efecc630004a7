package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tryst-chat/tryst/internal/teststack"
)

// stack is a hub serving this package's client, with a TURN relay, on loopback.
type stack struct {
	url string
	st  *teststack.Stack
}

func startStack(t *testing.T) *stack {
	t.Helper()
	st := teststack.Start(t, teststack.Options{Web: Handler()})
	return &stack{url: st.URL, st: st}
}

func (s *stack) relayed() float64 { return s.st.RelayedBytes() }

func needBrowser(tb testing.TB) string {
	tb.Helper()
	ci := os.Getenv("CI") == "true"
	path, err := exec.LookPath("chromium")
	if err != nil {
		if ci {
			tb.Fatal("chromium is required in CI (Debian package chromium)")
		}
		tb.Skip("chromium not installed: skipping browser tests")
	}
	if !isolated {
		if ci {
			tb.Fatal("browser tests need a network namespace (run as root with unshare)")
		}
		tb.Skip("not in an isolated network namespace (needs root and unshare): skipping browser tests")
	}
	return path
}

// chromiumOptions are the flags every headless Chromium of web's tests and
// benchmarks starts with, over a fresh profile directory (the caller
// removes it). Not t.TempDir: Chromium's helper processes may still be
// writing to the profile for a moment after the browser is stopped, and a
// failed removal would fail the test.
func chromiumOptions(tb testing.TB, prefix string, width, height int) ([]chromedp.ExecAllocatorOption, string) {
	tb.Helper()
	exe := needBrowser(tb)
	profile, err := os.MkdirTemp("", prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// WebRTC on loopback, with real addresses rather than mDNS names
		// (the Go client does not resolve mDNS on loopback).
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.WindowSize(width, height),
	}, profile
}

// browser is one headless Chromium with its own profile (its own
// localStorage, sessionStorage and IndexedDB).
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context
	logs func() []string // what the page logged (keepConsole)
}

// problems is what the page logged as errors or threw.
func (b *browser) problems() []string {
	var out []string
	for _, l := range b.logs() {
		if strings.HasPrefix(l, "exception") || strings.HasPrefix(l, "error") {
			out = append(out, l)
		}
	}
	return out
}

func newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	opts, profile := chromiumOptions(t, "tryst-chromium-", 420, 860)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelB()
		cancelA()
		if os.RemoveAll(profile) != nil {
			os.RemoveAll(profile) // a straggler wrote a file meanwhile
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, name: name, ctx: ctx}
	keepConsole(b)
	return b
}

// run executes actions with a generous deadline (a hang, not a wait).
func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	err := chromedp.Run(ctx, actions...)
	for i := 0; err != nil && i < 3 && navigated(err); i++ {
		// The page navigated (a reload) under a query: run it again in the
		// new document. Only idempotent actions (polls, reads) get here.
		err = chromedp.Run(ctx, append([]chromedp.Action{chromedp.WaitReady("body", chromedp.ByQuery)}, actions...)...)
	}
	if err != nil {
		b.shot("failure")
		b.t.Fatalf("%s: %v (state: %s)", b.name, err, b.stateLine())
	}
}

// stateLine is the page's #room-state and #alert, for failure messages.
func (b *browser) stateLine() string {
	var s string
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	chromedp.Run(ctx, chromedp.Evaluate(`(() => { const r = document.getElementById("room-state"), a = document.getElementById("alert");
		return r ? r.dataset.state + " " + JSON.stringify(r.textContent.trim()) + (a && !a.hidden ? " alert " + JSON.stringify(a.textContent.trim()) : "") +
			[...document.querySelectorAll(".file-card")].map(c => " card " + c.dataset.dir + " " + c.dataset.status + " " + (c.dataset.done || "") + " " + JSON.stringify(c.textContent)).join("") : "no page"; })()`, &s))
	return s
}

func navigated(err error) bool {
	return strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "context was destroyed") ||
		strings.Contains(err.Error(), "Inspected target navigated")
}

// waitJS polls a JavaScript condition in the page until it is true.
func (b *browser) waitJS(cond string) {
	b.t.Helper()
	b.run(chromedp.Poll(cond, nil, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
}

func (b *browser) eval(js string, out any) {
	b.t.Helper()
	b.run(chromedp.Evaluate(js, out, func(p *runtimeEvaluateParams) *runtimeEvaluateParams { return p.WithAwaitPromise(true) }))
}

// shot saves a screenshot as a test artifact (never committed).
func (b *browser) shot(name string) {
	dir := os.Getenv("TRYST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	var png []byte
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)) == nil {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", b.t.Name(), b.name, name)), png, 0o644)
	}
}

// DOM contract (docs in web/static/ui.js): the room's state and the
// connection's path.
const (
	stateJS = `document.getElementById("room-state").dataset.state`
	hubJS   = `document.getElementById("hub-state").dataset.hub`
	pathJS  = `document.getElementById("path").dataset.path`
	alertJS = `(document.getElementById("alert").hidden ? "" : document.getElementById("alert-text").textContent)`
)

// host opens a new room and returns the share link.
func (b *browser) host(url, password string, relay bool) string {
	b.t.Helper()
	link := b.create(url)
	b.password(password, relay)
	return link
}

// create opens a new room and returns the share link, before the password.
func (b *browser) create(url string) string {
	b.t.Helper()
	var link string
	b.run(chromedp.Navigate(url), chromedp.WaitVisible("#new-room", chromedp.ByID), chromedp.Click("#new-room", chromedp.ByID),
		chromedp.WaitVisible("#share-link", chromedp.ByID))
	b.waitJS(`document.getElementById("share-link").value.includes("#")`)
	b.run(chromedp.Value("#share-link", &link, chromedp.ByID))
	b.shot("share")
	return link
}

// password types pw and connects; relay ticks "Relay only". Reconnecting
// on reload is left as it is by default: on.
func (b *browser) password(pw string, relay bool) {
	b.t.Helper()
	b.run(chromedp.WaitVisible("#password-input", chromedp.ByID), chromedp.SendKeys("#password-input", pw, chromedp.ByID))
	if relay {
		b.run(chromedp.Click("#relay-only", chromedp.ByID))
	}
	b.run(chromedp.Click("#connect", chromedp.ByID))
}

func (b *browser) join(link, password string, relay bool) {
	b.t.Helper()
	b.run(chromedp.Navigate(link))
	b.password(password, relay)
}

// connected waits for the connection and returns its path (direct or
// relayed).
func (b *browser) connected() string {
	b.t.Helper()
	b.waitJS(stateJS + ` === "connected" && ` + pathJS + ` !== ""`)
	var path string
	b.eval(pathJS, &path)
	return path
}

// conn is the number of connections that became ready in the page: a test
// tells a kept connection from a new one by it.
func (b *browser) conn() int {
	b.t.Helper()
	var n string
	b.eval(`document.getElementById("room-state").dataset.conn || "0"`, &n)
	var k int
	fmt.Sscan(n, &k)
	return k
}

func (b *browser) say(text string) {
	b.t.Helper()
	b.run(chromedp.SendKeys("#message", text+"\n", chromedp.ByID))
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func (b *browser) waitMessage(text string) {
	b.t.Helper()
	b.waitJS(`[...document.querySelectorAll("#messages li.peer .text")].some(e => e.textContent === ` + jsString(text) + `)`)
}

func (b *browser) sendFile(paths ...string) {
	b.t.Helper()
	b.run(chromedp.SetUploadFiles("#file-input", paths, chromedp.ByID))
}

// cardJS is the file card of name in direction dir ("in" or "out").
func cardJS(dir, name string) string {
	return `[...document.querySelectorAll('#transfers .file-card[data-dir="` + dir + `"]')].find(c => c.querySelector(".name").textContent === ` +
		jsString(name) + `)`
}

// receivedSHA waits for name to arrive verified, and returns the SHA-256
// of the bytes the page stored (its OPFS file), computed in the page.
func (b *browser) receivedSHA(name string) string {
	b.t.Helper()
	card := cardJS("in", name)
	b.waitJS(`(() => { const c = ` + card + `; if (c && ["failed", "refused"].includes(c.dataset.status)) throw new Error("` + name + `: " + c.textContent); return !!c && c.dataset.status === "verified" && !!c.querySelector("button.save"); })()`)
	var sum string
	b.eval(`(async () => { const id = `+card+`.dataset.id;
		const top = await (await navigator.storage.getDirectory()).getDirectoryHandle("tryst");
		for await (const [, dir] of top.entries()) {
			try {
				const f = await (await dir.getFileHandle("in-" + id)).getFile();
				const buf = await f.arrayBuffer();
				return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", buf)), x => x.toString(16).padStart(2, "0")).join("");
			} catch (e) { if (e.name !== "NotFoundError") throw e; }
		}
		return "no file"; })()`, &sum)
	return sum
}

// waitSent waits for the sender's card of name to say verified.
func (b *browser) waitSent(name string) {
	b.t.Helper()
	card := cardJS("out", name)
	b.waitJS(`(() => { const c = ` + card + `; if (c && ["failed", "refused"].includes(c.dataset.status)) throw new Error("` + name + `: " + c.textContent); return !!c && c.dataset.status === "verified"; })()`)
}

func randomFile(t *testing.T, name string, size int) (string, string) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return p, hex.EncodeToString(sum[:])
}

// storedText is everything the page's origin keeps in localStorage,
// sessionStorage and IndexedDB, as text (binary values in hex), prefixed
// by where it is: for tests that look for what must not be kept.
func (b *browser) storedText() string {
	b.t.Helper()
	var s string
	b.eval(`(async () => {
		const out = [];
		const hex = (u) => Array.from(u, (x) => x.toString(16).padStart(2, "0")).join("");
		const text = (v) => {
			if (v instanceof ArrayBuffer) return hex(new Uint8Array(v)) + " " + new TextDecoder().decode(v);
			if (ArrayBuffer.isView(v)) return hex(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) + " " + new TextDecoder().decode(v);
			if (v instanceof CryptoKey) return "CryptoKey extractable=" + v.extractable;
			if (v && typeof v === "object") return "{" + Object.entries(v).map(([k, x]) => k + ":" + text(x)).join(",") + "}";
			return String(v);
		};
		for (const [name, st] of [["localStorage", localStorage], ["sessionStorage", sessionStorage]]) {
			for (let i = 0; i < st.length; i++) out.push(name + " " + st.key(i) + " " + st.getItem(st.key(i)));
		}
		for (const info of await indexedDB.databases()) {
			const db = await new Promise((res, rej) => { const r = indexedDB.open(info.name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
			for (const store of db.objectStoreNames) {
				const [keys, vals] = await new Promise((res, rej) => {
					const t = db.transaction(store).objectStore(store);
					const k = t.getAllKeys(), v = t.getAll();
					v.onsuccess = () => res([k.result, v.result]);
					v.onerror = () => rej(v.error);
				});
				keys.forEach((k, i) => out.push("indexedDB " + info.name + " " + store + " " + JSON.stringify(k) + " " + text(vals[i])));
			}
			db.close();
		}
		return out.join("\n"); })()`, &s)
	return s
}

// pollTimeout bounds every wait for a page's state (a hang, not a wait).
var pollTimeout = 80 * time.Second

// instrument wraps, in every document the page loads from now on, the
// browser's RTCPeerConnection, RTCDataChannel and WebSocket so that the
// test can break them from outside, as a network or a killed tab would.
// It adds nothing to window: the test talks to it with DOM events on
// document ("tryst-test-close-pc", "tryst-test-freeze", "tryst-test-drop-ws").
func (b *browser) instrument() {
	b.t.Helper()
	b.run(chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`(() => {
			const pcs = [], sockets = [], seen = new Set(), frozen = new Set();
			const PC = RTCPeerConnection, WS = WebSocket;
			window.RTCPeerConnection = class extends PC { constructor(...a) { super(...a); pcs.push(this); } };
			window.WebSocket = class extends WS { constructor(...a) { super(...a); sockets.push(this); } };
			const send = RTCDataChannel.prototype.send;
			RTCDataChannel.prototype.send = function (d) { seen.add(this); if (!frozen.has(this)) send.call(this, d); };
			// close-pc closes the newest connection; freeze silently drops
			// what the page sends on the channels it has used so far; drop-ws
			// closes the hub connection.
			document.addEventListener("tryst-test-close-pc", () => { if (pcs.length) pcs[pcs.length - 1].close(); });
			document.addEventListener("tryst-test-freeze", () => { for (const c of seen) frozen.add(c); });
			document.addEventListener("tryst-test-drop-ws", () => { for (const s of sockets) s.close(); });
			// Every PAKE exchange the page completed (its master derived
			// from CPace's ISK, "tryst/v3/master") counted on <html
			// data-pake>, so a test sees whether an exchange ran, and every
			// PBKDF2 derivation (version 2's, which must be gone) on
			// data-kdf.
			const deriveBits = SubtleCrypto.prototype.deriveBits;
			const count = (name) => { document.documentElement.dataset[name] = String(Number(document.documentElement.dataset[name] || 0) + 1); };
			SubtleCrypto.prototype.deriveBits = function (alg, ...rest) {
				if (alg && alg.name === "PBKDF2") count("kdf");
				if (alg && alg.name === "HKDF" && new TextDecoder().decode(alg.info) === "tryst/v3/master") count("pake");
				return deriveBits.call(this, alg, ...rest);
			};
			// A chat message whose text holds __malformed_json__ or
			// __malformed_null__ is sealed with "{not json" or "null" as its
			// payload instead: well sealed, not the JSON it should be.
			const encrypt = SubtleCrypto.prototype.encrypt;
			SubtleCrypto.prototype.encrypt = function (alg, key, data) {
				const ad = alg && alg.additionalData;
				if (ad && ad.byteLength === 10 && new Uint8Array(ad.buffer || ad, ad.byteOffset || 0, 10)[1] === 2) {
					const text = new TextDecoder().decode(data);
					if (text.includes("__malformed_json__")) data = new TextEncoder().encode("{not json");
					if (text.includes("__malformed_null__")) data = new TextEncoder().encode("null");
				}
				return encrypt.call(this, alg, key, data);
			};
		})()`).Do(ctx)
		return err
	}))
}

// fire dispatches one of instrument's events in the page.
// tab opens another tab of the same browser (the same profile: its
// IndexedDB and localStorage, not its sessionStorage).
func (b *browser) tab(name string) *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil {
		b.t.Fatalf("new tab: %v", err)
	}
	nb := &browser{t: b.t, name: name, ctx: ctx}
	keepConsole(nb)
	return nb
}

func (b *browser) fire(event string) {
	b.t.Helper()
	var ok bool
	b.eval(`document.dispatchEvent(new Event(`+jsString(event)+`)), true`, &ok)
}
