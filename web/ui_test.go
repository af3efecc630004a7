package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// The page's look is checked in Chromium: every screen, at a desktop and a
// phone size, in the light and the dark theme, gets an axe-core run (no
// serious or critical violation: contrast, names, labels, ARIA) and a
// full-page screenshot saved under $TRYST_ARTIFACTS for people to look at.

const axePath = "testdata/vendor/axe-core-4.14.1/axe.min.js"

// uiVariant is one viewport and colour scheme a screen is checked in.
type uiVariant struct {
	w, h   int64
	mobile bool
	scheme string // prefers-color-scheme
}

func (v uiVariant) String() string { return fmt.Sprintf("%dx%d-%s", v.w, v.h, v.scheme) }

var uiVariants = []uiVariant{
	{1280, 800, false, "light"},
	{1280, 800, false, "dark"},
	{390, 844, true, "light"},
	{390, 844, true, "dark"},
}

// axeViolation is one rule axe-core found broken, with the elements that
// break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  string `json:"target"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

func (v axeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n\t\t%s: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " "))
	}
	return b.String()
}

var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(axePath)
	return string(b), err
})

// runAxe runs axe-core on the current page and returns its serious and
// critical violations. The vendored source is evaluated through the
// DevTools protocol (Runtime.evaluate), which the page's CSP does not
// govern: the page itself stays under its real policy.
func runAxe(ctx context.Context) ([]axeViolation, error) {
	src, err := axeSource()
	if err != nil {
		return nil, err
	}
	var loaded bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`typeof window.axe === "object"`, &loaded)); err != nil {
		return nil, err
	}
	if !loaded {
		if err := chromedp.Run(ctx, chromedp.Evaluate(src+"\n;undefined", nil)); err != nil {
			return nil, fmt.Errorf("inject axe-core: %w", err)
		}
	}
	var out []axeViolation
	err = chromedp.Run(ctx, chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => ({id: v.id, impact: v.impact, help: v.help,
			nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary || ""}))})))`,
		&out, func(p *runtimeEvaluateParams) *runtimeEvaluateParams { return p.WithAwaitPromise(true) }))
	return out, err
}

var tempArtifacts = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "tryst-artifacts-") })

// artifactsDir is where screenshots go: $TRYST_ARTIFACTS (.ci/run sets it
// and keeps the folder), else a new folder under the system's temp
// directory, one per test binary.
func artifactsDir() (string, error) {
	if dir := os.Getenv("TRYST_ARTIFACTS"); dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	return tempArtifacts()
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// screenshot saves a full-page PNG of the page at its current viewport as
// name.png in the artifacts folder and returns its path.
func screenshot(ctx context.Context, name string) (string, error) {
	dir, err := artifactsDir()
	if err != nil {
		return "", err
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		return "", err
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(name, "_")+".png")
	return path, os.WriteFile(path, png, 0o644)
}

// emulate sets the viewport and the colour scheme (and reduced motion, so
// that screenshots do not catch an animation half way).
func emulate(v uiVariant) chromedp.Action {
	return chromedp.Tasks{
		emulation.SetDeviceMetricsOverride(v.w, v.h, 1, v.mobile),
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{
			{Name: "prefers-color-scheme", Value: v.scheme},
			{Name: "prefers-reduced-motion", Value: "reduce"},
		}),
	}
}

// checkScreen runs axe-core and saves a screenshot of what b shows now, in
// every variant, then puts the browser's own viewport and scheme back.
func checkScreen(t *testing.T, b *browser, screen string) {
	t.Helper()
	for _, v := range uiVariants {
		ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		err := chromedp.Run(ctx, emulate(v))
		var violations []axeViolation
		if err == nil {
			violations, err = runAxe(ctx)
		}
		var path string
		if err == nil {
			path, err = screenshot(ctx, fmt.Sprintf("%s-%s-%s-%s", t.Name(), b.name, screen, v))
		}
		cancel()
		if err != nil {
			t.Fatalf("%s %s %s: %v", b.name, screen, v, err)
		}
		t.Logf("%s %s %s: %d serious/critical axe violations; %s", b.name, screen, v, len(violations), path)
		for _, vi := range violations {
			t.Errorf("%s %s %s: %s", b.name, screen, v, vi)
		}
	}
	b.run(emulation.ClearDeviceMetricsOverride(), emulation.SetEmulatedMedia())
}

// fixtureScreen is one state of the DOM contract in testdata/ui-fixture.html.
type fixtureScreen struct {
	Name                string
	Sections            []string // the sections shown: start, share, password, resume, chat
	Room                bool     // a room exists: #room-state and #leave show
	State, StateText    string
	Path                string
	RTT                 int
	Hub                 string
	Alert, Action       string
	JoinCode, JoinError string
	Note                string // #password-note
	Copied, ShowInvite  bool
	Messages, Files     bool
	Drop                bool
}

func (s fixtureScreen) Shows(section string) bool { return slices.Contains(s.Sections, section) }

var fixtureScreens = []fixtureScreen{
	{Name: "start", Sections: []string{"start"}},
	{Name: "start-bad-code", Sections: []string{"start"}, JoinCode: "K7Q-MX2",
		JoinError: "That is not a room code: it has 18 letters and digits, like K7Q-MX2-P9R-TVW-4HN-C8D."},
	{Name: "invite", Sections: []string{"share", "password"}, Room: true, State: "waiting",
		StateText: "Waiting for the other person", Copied: true},
	{Name: "guest-password", Sections: []string{"password"}, Room: true, State: "idle", StateText: "Not connected"},
	{Name: "resume", Sections: []string{"resume"}, Room: true, State: "idle", StateText: "Not connected"},
	{Name: "waiting-chat", Sections: []string{"chat"}, Room: true, State: "waiting",
		StateText: "Waiting for the other person", ShowInvite: true},
	{Name: "invite-again", Sections: []string{"share", "chat"}, Room: true, State: "connecting",
		StateText: "Connecting…"},
	{Name: "connected", Sections: []string{"chat"}, Room: true, State: "connected", StateText: "Connected",
		Path: "direct", RTT: 12, Messages: true, Files: true},
	{Name: "reconnecting-relayed", Sections: []string{"chat"}, Room: true, State: "reconnecting",
		StateText: "Reconnecting…", Path: "relayed", RTT: 48, Hub: "Hub unreachable, retrying", Messages: true},
	{Name: "mismatch", Sections: []string{"password"}, Room: true, State: "mismatch", StateText: "Password mismatch",
		Alert: "Password mismatch: the other person typed a different password, or someone is trying to guess it. " +
			"Nothing was decrypted or sent. Failed attempts: 2 of 5; at 5 the room closes. Agree on the password again, then try it here.",
		Action: "Try another password", Note: "Failed attempts: 2 of 5. Agree on the password again with the other person, then connect."},
	{Name: "password-needed", Sections: []string{"password"}, Room: true, State: "idle", StateText: "Password needed",
		Note: "The other person needs a fresh key exchange: type the password you agreed on to reconnect."},
	{Name: "guess-limit", Sections: []string{"chat"}, Room: true, State: "ended",
		StateText: "The room was closed after 5 failed password attempts: the passwords differ, or someone was trying to guess the password.",
		Alert:     "The room was closed after 5 failed password attempts: the passwords differ, or someone was trying to guess the password. Nothing was decrypted or sent.",
		Action:    "Start a new room", Messages: true},
	{Name: "ended", Sections: []string{"chat"}, Room: true, State: "ended", StateText: "Room ended",
		Alert: "The room is gone: the hub no longer knows it.", Action: "Start a new room", Messages: true},
	{Name: "drop", Sections: []string{"chat"}, Room: true, State: "connected", StateText: "Connected",
		Path: "relayed", RTT: 31, Messages: true, Files: true, Drop: true},
}

// fixtureHandler serves the client and, under /ui-fixture/NAME, the
// fixture in state NAME, with the page's own security headers.
func fixtureHandler(t *testing.T) http.Handler {
	t.Helper()
	tmpl, err := template.ParseFiles("testdata/ui-fixture.html")
	if err != nil {
		t.Fatal(err)
	}
	page := Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/ui-fixture/")
		if !ok {
			page.ServeHTTP(w, r)
			return
		}
		i := slices.IndexFunc(fixtureScreens, func(s fixtureScreen) bool { return s.Name == name })
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, fixtureScreens[i]); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	})
}

// TestUIFixture checks the stylesheet on the DOM contract's markup in every
// state, including those a test cannot easily drive the client into
// (every file-card status, a room gone, a drop in progress).
func TestUIFixture(t *testing.T) {
	b := newBrowser(t, "fixture")
	srv := httptest.NewServer(fixtureHandler(t))
	t.Cleanup(srv.Close)
	for _, s := range fixtureScreens {
		b.run(chromedp.Navigate(srv.URL+"/ui-fixture/"+s.Name), chromedp.WaitReady("body", chromedp.ByQuery))
		var sheets int
		b.eval(`document.styleSheets.length`, &sheets)
		if sheets != 1 {
			t.Fatalf("%s: %d style sheets loaded, want style.css", s.Name, sheets)
		}
		if s.Shows("share") {
			// The client's own QR drawing (qr.js, a module from this
			// origin, so the CSP allows it), for a true picture.
			b.eval(`import("/qr.js").then(m => m.drawQR(document.getElementById("qr"),
				document.getElementById("share-link").value))`, nil)
		}
		checkScreen(t, b, s.Name)
	}
}

// TestUIScreens walks the client through every screen it has (start, an
// invalid code, the host's invite and password, the guest's password, the
// chat with messages and a file, the resume page) and checks each. It
// drives the page only through the DOM contract's ids.
func TestUIScreens(t *testing.T) {
	s := startStack(t)
	host := newBrowser(t, "host")
	host.run(chromedp.Navigate(s.url), chromedp.WaitVisible("#new-room", chromedp.ByID))
	checkScreen(t, host, "start")

	// A code that cannot be one: an error next to the field.
	host.run(chromedp.SendKeys("#join-code", "K7Q-MX2\n", chromedp.ByID))
	host.waitJS(`(() => { const e = document.getElementById("join-error");
		return !!(e && e.textContent.trim() && e.checkVisibility()); })()`)
	checkScreen(t, host, "start-bad-code")

	host.run(chromedp.Navigate(s.url), chromedp.WaitVisible("#new-room", chromedp.ByID),
		chromedp.Click("#new-room", chromedp.ByID), chromedp.WaitVisible("#password-input", chromedp.ByID))
	host.waitJS(`document.getElementById("share-link").value.includes("#")`)
	var link string
	host.run(chromedp.Value("#share-link", &link, chromedp.ByID))
	checkScreen(t, host, "invite")

	guest := newBrowser(t, "guest")
	guest.run(chromedp.Navigate(link), chromedp.WaitVisible("#password-input", chromedp.ByID))
	checkScreen(t, guest, "guest-password")

	// The host does not reconnect by itself, so that its reload below shows
	// the resume page.
	host.eval(`document.getElementById("auto-connect").checked = false`, nil)
	for _, b := range []*browser{host, guest} {
		b.run(chromedp.SendKeys("#password-input", "correct horse", chromedp.ByID), chromedp.Click("#connect", chromedp.ByID))
	}
	host.connected()
	guest.connected()
	host.say("Hi! Sending the photo now.")
	guest.waitMessage("Hi! Sending the photo now.")
	guest.say("שלום! Thanks.")
	host.waitMessage("שלום! Thanks.")
	file, _ := randomFile(t, "photo.jpg", 300<<10)
	host.sendFile(file)
	guest.waitJS(`document.querySelector('.file-card[data-dir="in"][data-status="verified"]') !== null`)
	host.waitJS(`document.querySelector('.file-card[data-dir="out"][data-status="verified"]') !== null`)
	checkScreen(t, host, "chat")
	checkScreen(t, guest, "chat")

	// Files dragged over the window (a synthetic drag: headless Chromium
	// has no pointer to drag with).
	host.eval(`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(["x"], "x.txt"));
		document.body.dispatchEvent(new DragEvent("dragenter", {bubbles: true, dataTransfer: dt})); })()`, nil)
	host.waitJS(`!document.getElementById("drop-overlay").hidden`)
	checkScreen(t, host, "drop")
	host.eval(`document.body.dispatchEvent(new DragEvent("dragleave", {bubbles: true}))`, nil)
	host.waitJS(`document.getElementById("drop-overlay").hidden`)

	host.run(chromedp.Reload(), chromedp.WaitVisible("#resume-btn", chromedp.ByID))
	checkScreen(t, host, "resume")
}

// TestVendoredFilesArePinned checks the third-party files against
// vendor.sha256: each listed file has its hash, and nothing under a vendor
// folder is unlisted.
func TestVendoredFilesArePinned(t *testing.T) {
	f, err := os.Open("vendor.sha256")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pinned := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 || len(fields[0]) != 64 {
			t.Fatalf("vendor.sha256:%d: want \"SHA256  PATH\", got %q", line, text)
		}
		if _, dup := pinned[fields[1]]; dup {
			t.Errorf("vendor.sha256:%d: %s listed twice", line, fields[1])
		}
		pinned[fields[1]] = fields[0]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pinned) == 0 {
		t.Fatal("vendor.sha256 lists no file")
	}
	for path, want := range pinned {
		data, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: SHA-256 %s, pinned %s (a vendored file must not be edited)", path, got, want)
		}
	}
	for _, dir := range []string{"static/vendor", "testdata/vendor"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if _, ok := pinned[filepath.ToSlash(path)]; !ok {
				t.Errorf("%s is not pinned in vendor.sha256", filepath.ToSlash(path))
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// TestUIScreensMismatch checks the alert the client shows both people when
// their passwords differ (with its next step on the gen 2 page).
func TestUIScreensMismatch(t *testing.T) {
	s := startStack(t)
	host, guest := newBrowser(t, "host"), newBrowser(t, "guest")
	host.run(chromedp.Navigate(s.url), chromedp.WaitVisible("#new-room", chromedp.ByID),
		chromedp.Click("#new-room", chromedp.ByID), chromedp.WaitVisible("#password-input", chromedp.ByID))
	host.waitJS(`document.getElementById("share-link").value.includes("#")`)
	var link string
	host.run(chromedp.Value("#share-link", &link, chromedp.ByID),
		chromedp.SendKeys("#password-input", "right", chromedp.ByID), chromedp.Click("#connect", chromedp.ByID))
	guest.run(chromedp.Navigate(link), chromedp.WaitVisible("#password-input", chromedp.ByID),
		chromedp.SendKeys("#password-input", "wrong", chromedp.ByID), chromedp.Click("#connect", chromedp.ByID))
	for _, b := range []*browser{host, guest} {
		b.waitJS(`!document.getElementById("alert").hidden && document.getElementById("alert").textContent.includes("Password mismatch")`)
		checkScreen(t, b, "mismatch")
	}
}
