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

func needBrowser(t *testing.T) string {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	path, err := exec.LookPath("chromium")
	if err != nil {
		if ci {
			t.Fatal("chromium is required in CI (Debian package chromium)")
		}
		t.Skip("chromium not installed: skipping browser tests")
	}
	if !isolated {
		if ci {
			t.Fatal("browser tests need a network namespace (run as root with unshare)")
		}
		t.Skip("not in an isolated network namespace (needs root and unshare): skipping browser tests")
	}
	return path
}

// browser is one headless Chromium with its own profile (its own
// localStorage, sessionStorage and IndexedDB).
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	exe := needBrowser(t)
	// Not t.TempDir: Chromium's helper processes may still be writing to
	// the profile for a moment after the browser is stopped, and a failed
	// removal would fail the test.
	profile, err := os.MkdirTemp("", "tryst-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
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
		chromedp.WindowSize(420, 860),
	}
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
	return &browser{t: t, name: name, ctx: ctx}
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
		var status string
		chromedp.Run(b.ctx, chromedp.Text("#status", &status, chromedp.ByQuery))
		b.t.Fatalf("%s: %v (status: %q)", b.name, err, status)
	}
}

func navigated(err error) bool {
	return strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "context was destroyed")
}

// waitJS polls a JavaScript condition in the page until it is true.
func (b *browser) waitJS(cond string) {
	b.t.Helper()
	b.run(chromedp.Poll(cond, nil, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(80*time.Second)))
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

// host opens a new room and returns the share link.
func (b *browser) host(url, password string, relay, auto bool) string {
	b.t.Helper()
	var link string
	b.run(chromedp.Navigate(url), chromedp.WaitVisible("#new-room", chromedp.ByID), chromedp.Click("#new-room", chromedp.ByID),
		chromedp.WaitVisible("#share-link", chromedp.ByID))
	b.waitJS(`document.getElementById("share-link").value.includes("#")`)
	b.run(chromedp.Value("#share-link", &link, chromedp.ByID))
	b.shot("share")
	b.password(password, relay, auto)
	return link
}

func (b *browser) password(pw string, relay, auto bool) {
	b.t.Helper()
	b.run(chromedp.WaitVisible("#password-input", chromedp.ByID), chromedp.SendKeys("#password-input", pw, chromedp.ByID))
	if relay {
		b.run(chromedp.Click("#relay-only", chromedp.ByID))
	}
	if auto {
		b.run(chromedp.Click("#auto-connect", chromedp.ByID))
	}
	b.run(chromedp.Click("#connect", chromedp.ByID))
}

func (b *browser) join(link, password string, relay bool) {
	b.t.Helper()
	b.run(chromedp.Navigate(link))
	b.password(password, relay, false)
}

// connected waits for the path indicator and returns it.
func (b *browser) connected() string {
	b.t.Helper()
	b.waitJS(`document.getElementById("path").textContent !== ""`)
	var path string
	b.run(chromedp.Text("#path", &path, chromedp.ByID))
	return path
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
	b.waitJS(`[...document.querySelectorAll("#messages li.peer")].some(li => li.textContent.endsWith(` + jsString(text) + `))`)
}

func (b *browser) sendFile(path string) {
	b.t.Helper()
	b.run(chromedp.SetUploadFiles("#file-input", []string{path}, chromedp.ByID))
}

// receivedSHA waits for a verified download of name and returns the
// SHA-256 of its bytes, computed in the page.
func (b *browser) receivedSHA(name string) string {
	b.t.Helper()
	sel := `document.querySelector(` + jsString(`a.download[download="`+name+`"]`) + `)`
	b.waitJS(sel + ` !== null`)
	var sum string
	b.eval(`(async () => { const buf = await window.tryst.received.get(`+jsString(name)+`).arrayBuffer();
		return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", buf)), x => x.toString(16).padStart(2, "0")).join(""); })()`, &sum)
	return sum
}

func (b *browser) waitSent(name string) {
	b.t.Helper()
	b.waitJS(`[...document.querySelectorAll(".transfer .ok")].some(d => d.textContent.includes(` + jsString("Sent "+name) + `))`)
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
