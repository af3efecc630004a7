package web

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The defects of issue 14, each with a Chromium test, reading the page
// through its DOM contract only.

// TestBrowserFilesQueue: several files chosen at once queue, and each ends
// verified on both sides; a 3 MB file then a 40 MB one, browser to
// browser, with no exception on either page (the first generation threw a
// TypeError after such a file and never said verified). The round trip
// shown while a larger file moves stays low: pings go on the control
// channel, not behind the file data.
func TestBrowserFilesQueue(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url, false)
	small, sumSmall := randomFile(t, "small.bin", 3<<20)
	big, sumBig := randomFile(t, "big.bin", 40<<20)
	start := time.Now()
	b.sendFile(small, big)
	// While the big file is being sent, sample the round trip the sender
	// shows (the keepalive's, every 5 s) until it is verified.
	var samples []int
	seen := map[string]bool{}
	var sending time.Duration
	for {
		var st struct {
			Status string `json:"status"`
			MS     string `json:"ms"`
		}
		b.eval(`(() => { const c = `+cardJS("out", "big.bin")+`, r = document.getElementById("rtt");
			return {status: c ? c.dataset.status : "", ms: r.dataset.ms || ""}; })()`, &st)
		if st.Status == "failed" || st.Status == "refused" || st.Status == "verified" {
			break
		}
		if st.Status == "sending" {
			if sending == 0 {
				sending = time.Since(start)
			}
			if st.MS != "" && !seen[st.MS] {
				seen[st.MS] = true
				ms, _ := strconv.Atoi(st.MS)
				samples = append(samples, ms)
			}
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("the files did not go in 3 minutes (state: %s)", b.stateLine())
		}
		time.Sleep(100 * time.Millisecond) // sampling, not synchronisation
	}
	elapsed := time.Since(start)
	if got := a.receivedSHA("small.bin"); got != sumSmall {
		t.Errorf("small.bin: SHA-256 %s, want %s", got, sumSmall)
	}
	if got := a.receivedSHA("big.bin"); got != sumBig {
		t.Errorf("big.bin: SHA-256 %s, want %s", got, sumBig)
	}
	b.waitSent("small.bin")
	b.waitSent("big.bin")
	t.Logf("3 MB + 40 MB browser to browser in %v (%.1f MB/s, hashing included); RTT samples while sending: %v ms",
		elapsed.Round(time.Millisecond), float64(43<<20)/1e6/elapsed.Seconds(), samples)
	a.shot("files")
	b.shot("files")
	// Loose, for a shared CI machine where the round trip grows with the
	// data in flight and the load: some keepalive must come back in under
	// 200 ms while the file moves (the first generation showed 233–667 ms,
	// every ping queued behind file data). docs/BENCHMARKS.md has measured
	// figures.
	if len(samples) > 0 && slices.Min(samples) >= 200 {
		t.Errorf("RTT during a transfer %v ms, want some < 200", samples)
	}
	for _, br := range []*browser{a, b} {
		if p := br.problems(); len(p) > 0 {
			t.Errorf("%s logged errors: %q", br.name, p)
		}
	}
}

// TestBrowserMismatchTryAgain: a password mismatch offers "Try another
// password", which asks again in the same room, saying how many attempts
// failed; with the right one (the guest's need, then a fresh exchange) the
// two connect.
func TestBrowserMismatchTryAgain(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "right", false)
	b.join(link, "wrong", false)
	for _, br := range []*browser{a, b} {
		br.waitJS(mismatchJS(1))
	}
	b.run(chromedp.Click("#alert-action", chromedp.ByID), chromedp.WaitVisible("#password-input", chromedp.ByID))
	b.waitJS(`document.getElementById("password-note").textContent.includes("Failed attempts: 1 of 5")`)
	var hash string
	b.eval(`location.hash`, &hash)
	if "#"+hash[1:] != link[strings.Index(link, "#"):] {
		t.Errorf("the retry left the room: hash %q, link %q", hash, link)
	}
	b.password("right", false)
	a.connected()
	b.connected()
	var alerts string
	a.eval(alertJS, &alerts)
	if alerts != "" {
		t.Errorf("host still shows the alert %q once connected", alerts)
	}
	b.say("second try")
	a.waitMessage("second try")
	b.shot("after-retry")
}

// TestBrowserInviteAgain: the host's invite (link and QR) can be shown
// again after typing the password, until the guest joins.
func TestBrowserInviteAgain(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, "pw", false)
	a.waitJS(`!document.getElementById("chat").hidden && !document.getElementById("show-invite").hidden`)
	a.run(chromedp.Click("#show-invite", chromedp.ByID), chromedp.WaitVisible("#share-link", chromedp.ByID))
	var again string
	a.run(chromedp.Value("#share-link", &again, chromedp.ByID))
	if again != link {
		t.Errorf("invite shown again with %q, want %q", again, link)
	}
	a.shot("invite-again")
	// Copy says it copied (headless Chromium may refuse the clipboard:
	// then the page says so instead).
	a.run(chromedp.Click("#copy-link", chromedp.ByID))
	a.waitJS(`["Link copied", "Could not copy; select the link and copy it"].includes(document.getElementById("copy-status").textContent)`)
	b.join(link, "pw", false)
	a.connected()
	b.connected()
	a.waitJS(`document.getElementById("show-invite").hidden && document.getElementById("share").hidden`)
}

// TestBrowserPageDetails: the first page has no Leave; a mistyped room code
// is refused under its field before any key exchange; reconnecting on
// reload is on by default and "Relay only" off; one password typed is one
// PAKE exchange, and no PBKDF2; text fields and messages follow the
// direction of their text; a message of white space only is not sent.
func TestBrowserPageDetails(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	b.instrument()
	b.run(chromedp.Navigate(st.url), chromedp.WaitVisible("#new-room", chromedp.ByID))
	var first struct {
		Leave bool `json:"leave"`
		State bool `json:"state"`
	}
	b.eval(`({leave: document.getElementById("leave").hidden, state: document.getElementById("room-state").hidden})`, &first)
	if !first.Leave || !first.State {
		t.Errorf("first page: Leave hidden %v, room state hidden %v; want both hidden", first.Leave, first.State)
	}
	b.run(chromedp.SendKeys("#join-code", "K7Q-MX2-P9R\n", chromedp.ByID))
	b.waitJS(`!document.getElementById("join-error").hidden && document.getElementById("join-error").textContent.includes("18 letters")`)
	var after struct {
		Hash     string `json:"hash"`
		PAKE     string `json:"pake"`
		Password bool   `json:"password"`
	}
	b.eval(`({hash: location.hash, pake: document.documentElement.dataset.pake || "0", password: document.getElementById("password").hidden})`, &after)
	if after.Hash != "" || after.PAKE != "0" || !after.Password {
		t.Errorf("a mistyped code went on: %+v", after)
	}
	b.shot("mistyped")

	link := a.create(st.url)
	var defaults struct {
		Auto  bool `json:"auto"`
		Relay bool `json:"relay"`
	}
	a.eval(`({auto: document.getElementById("auto-connect").checked, relay: document.getElementById("relay-only").checked})`, &defaults)
	if !defaults.Auto || defaults.Relay {
		t.Errorf("defaults: reconnect on reload %v, relay only %v; want on, off", defaults.Auto, defaults.Relay)
	}
	a.password("pw", false)
	b.join(link, "pw", false)
	a.connected()
	b.connected()
	var kdf struct {
		PAKE   string `json:"pake"`
		PBKDF2 string `json:"pbkdf2"`
	}
	b.eval(`({pake: document.documentElement.dataset.pake || "0", pbkdf2: document.documentElement.dataset.kdf || "0"})`, &kdf)
	if kdf.PAKE != "1" || kdf.PBKDF2 != "0" {
		t.Errorf("%s PAKE exchanges and %s PBKDF2 derivations for one password, want 1 and 0", kdf.PAKE, kdf.PBKDF2)
	}

	// White space only: Send stays disabled and Enter sends nothing.
	b.run(chromedp.SendKeys("#message", "   \t  ", chromedp.ByID))
	var disabled bool
	b.eval(`document.getElementById("send").disabled`, &disabled)
	if !disabled {
		t.Error("Send enabled for a message of white space only")
	}
	b.run(chromedp.SendKeys("#message", "\n", chromedp.ByID))
	var cleared bool
	b.eval(`(() => { const m = document.getElementById("message"); m.value = ""; m.dispatchEvent(new Event("input")); return true; })()`, &cleared)
	b.say("שלום")
	a.waitMessage("שלום")
	var got struct {
		Peer []string `json:"peer"`
		Me   []string `json:"me"`
		Dir  []string `json:"dir"`
	}
	a.eval(`({peer: [...document.querySelectorAll("#messages li.peer .text")].map(e => e.textContent),
		me: [], dir: [...document.querySelectorAll("#messages li .text")].map(e => e.dir).concat([document.getElementById("message").dir])})`, &got)
	if len(got.Peer) != 1 {
		t.Errorf("the host shows %q from the guest, want only the Hebrew message", got.Peer)
	}
	for _, d := range got.Dir {
		if d != "auto" {
			t.Errorf("dir %q on a message or the message field, want auto", d)
		}
	}
	b.eval(`({peer: [], me: [...document.querySelectorAll("#messages li.me .text")].map(e => e.textContent), dir: []})`, &got)
	if len(got.Me) != 1 {
		t.Errorf("the guest shows %q as sent, want only the Hebrew message", got.Me)
	}
	a.shot("rtl")

	// "Relay only" belongs to one room: a new room starts without it.
	c := newBrowser(t, "third")
	c.create(st.url)
	c.run(chromedp.Click("#relay-only", chromedp.ByID))
	c.password("x", false)
	c.waitJS(`!document.getElementById("chat").hidden`)
	c.run(chromedp.Click("#leave", chromedp.ByID))
	c.waitJS(`document.readyState === "complete" && document.getElementById("start")?.hidden === false`)
	c.create(st.url)
	var relay bool
	c.eval(`document.getElementById("relay-only").checked`, &relay)
	if relay {
		t.Error(`"Relay only" carried over to a new room`)
	}
}

// TestBrowserReopenedTab: the guest opens the room in a new tab of the
// same browser (same link, same password); what it sends there continues
// the numbering, so the host shows every message exactly once.
func TestBrowserReopenedTab(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url, false)
	link := ""
	a.eval(`document.getElementById("share-link").value`, &link)
	for i := 1; i <= 3; i++ {
		b.say(fmt.Sprintf("from guest #%d", i))
	}
	a.waitMessage("from guest #3")

	b2 := b.tab("guest-tab")
	b2.run(chromedp.Navigate(link))
	// A new tab has no key (it stays with the tab that typed the password):
	// it offers to reconnect and asks for the password.
	b2.run(chromedp.WaitVisible("#resume-btn", chromedp.ByID), chromedp.Click("#resume-btn", chromedp.ByID))
	b2.password("pw", false)
	b2.connected()
	// The first tab steps aside.
	b.waitJS(stateJS + ` === "ended" && ` + alertJS + `.includes("another tab")`)
	for i := 4; i <= 6; i++ {
		b2.say(fmt.Sprintf("from guest #%d", i))
	}
	a.waitMessage("from guest #6")
	var got []string
	a.eval(`[...document.querySelectorAll("#messages li.peer .text")].map(e => e.textContent)`, &got)
	want := []string{}
	for i := 1; i <= 6; i++ {
		want = append(want, fmt.Sprintf("from guest #%d", i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("host shows %q, want %q", got, want)
	}
	b2.say("and the host hears it")
	a.waitMessage("and the host hears it")
	a.say("to the new tab")
	b2.waitMessage("to the new tab")
}

// TestBrowserReloadMidFile: the receiving page reloads at half of a 50 MB
// file (48 MiB); it reconnects by itself and the file completes from what
// it had flushed: its card never goes below that, and the sender resumes
// there rather than from 0, so the first half is not sent again.
func TestBrowserReloadMidFile(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url, false)
	const size = 48 << 20
	path, sum := randomFile(t, "resume.bin", size)
	a.sendFile(path)
	card := cardJS("in", "resume.bin")
	b.waitJS(fmt.Sprintf(`(() => { const c = %s; return !!c && Number(c.dataset.done || 0) >= %d; })()`, card, size/2))
	var flushed int
	b.eval(`Number(`+card+`.dataset.done)`, &flushed)
	b.run(chromedp.Reload())
	// Once the page is back, its card starts from what was flushed.
	b.waitJS(`document.readyState === "complete" && !!` + card)
	var shown int
	b.eval(`Number(`+card+`.dataset.done || 0)`, &shown)
	if shown < flushed || flushed >= size {
		t.Errorf("after the reload the card shows %d bytes, before it %d (of %d)", shown, flushed, size)
	}
	if got := b.receivedSHA("resume.bin"); got != sum {
		t.Errorf("SHA-256 %s, want %s", got, sum)
	}
	a.waitSent("resume.bin")
	var resumedAt int
	a.eval(`Number(`+cardJS("out", "resume.bin")+`.dataset.resumedAt || 0)`, &resumedAt)
	if resumedAt < flushed {
		t.Errorf("the sender resumed at %d, below the %d bytes the receiver had flushed", resumedAt, flushed)
	}
	t.Logf("reloaded at %d of %d bytes; the sender resumed at %d", flushed, size, resumedAt)
}

// TestBrowserHistory: the chat survives a reload, sealed in IndexedDB
// (not in clear), and is gone after "Leave and forget".
func TestBrowserHistory(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url, false)
	a.say("kept across reloads")
	b.waitMessage("kept across reloads")
	b.say("the answer too")
	a.waitMessage("the answer too")
	if kept := a.storedText(); strings.Contains(kept, "kept across reloads") || strings.Contains(kept, "the answer too") {
		t.Errorf("the history is stored in clear: %q", kept)
	}
	a.run(chromedp.Reload())
	a.waitJS(`document.readyState === "complete" && [...document.querySelectorAll("#messages li.me .text")].some(e => e.textContent === "kept across reloads")`)
	a.waitMessage("the answer too")
	a.connected()
	var n int
	a.eval(`document.querySelectorAll("#messages li.peer").length`, &n)
	if n != 1 {
		t.Errorf("after the reload the host shows %d messages from the guest, want 1", n)
	}
	a.run(chromedp.Click("#leave", chromedp.ByID))
	a.waitJS(`document.readyState === "complete" && document.getElementById("start")?.hidden === false`)
	a.eval(`document.querySelectorAll("#messages li").length`, &n)
	if kept := a.storedText(); n != 0 || strings.Contains(kept, " history ") {
		t.Errorf("after leaving: %d messages shown, stored %q", n, kept)
	}
}

// TestBrowserNothingOnWindow: the page adds no global of its own to
// window (the first generation put its whole state there, room key
// included), and nothing either page stores holds the password or lets
// anyone test it offline.
func TestBrowserNothingOnWindow(t *testing.T) {
	st := startStack(t)
	const pw = "p@ss w0rd! 8c1f"
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.host(st.url, pw, false)
	b.join(link, pw, false)
	a.connected()
	b.connected()
	a.say("hello")
	b.waitMessage("hello")
	const names = `Object.getOwnPropertyNames(window).sort()`
	var app, blank []string
	a.eval(names, &app)
	// A page of the same origin without the client: a file it serves that
	// is not HTML.
	c := newBrowser(t, "blank")
	c.run(chromedp.Navigate(st.url + "/protocol.js"))
	c.eval(names, &blank)
	var extra []string
	for _, n := range app {
		if !slices.Contains(blank, n) {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		t.Errorf("the page adds to window: %q", extra)
	}
	for _, br := range []*browser{a, b} {
		if kept := br.storedText(); strings.Contains(kept, pw) || strings.Contains(kept, fmt.Sprintf("%x", pw)) {
			t.Errorf("%s stores the password: %q", br.name, kept)
		}
		noOfflineTest(t, br, pw, roomOf(link))
	}
}

// TestBrowserSenderReloadResumes: the sending page reloads mid-file; once
// the same file is chosen again (same name, size and modification time) it
// keeps its id, so the receiver resumes it from what it had rather than
// from 0.
func TestBrowserSenderReloadResumes(t *testing.T) {
	st := startStack(t)
	a, b := connectedPages(t, st.url, false)
	const size = 40 << 20
	path, sum := randomFile(t, "again.bin", size)
	a.sendFile(path)
	card := cardJS("in", "again.bin")
	b.waitJS(fmt.Sprintf(`(() => { const c = %s; return !!c && Number(c.dataset.done || 0) >= %d; })()`, card, size/2))
	var had int
	b.eval(`Number(`+card+`.dataset.done)`, &had)
	a.run(chromedp.Reload())
	a.connected()
	// The reloaded page shows the unfinished file and what to do about it.
	a.waitJS(`(() => { const c = ` + cardJS("out", "again.bin") + `; return !!c && c.dataset.status === "waiting" && ` +
		`c.querySelector(".detail").textContent.includes("Choose this file again"); })()`)
	a.sendFile(path)
	if got := b.receivedSHA("again.bin"); got != sum {
		t.Errorf("SHA-256 %s, want %s", got, sum)
	}
	a.waitSent("again.bin")
	var resumedAt int
	a.eval(`Number(`+cardJS("out", "again.bin")+`.dataset.resumedAt || 0)`, &resumedAt)
	if resumedAt < had {
		t.Errorf("the file chosen again resumed at %d, below the %d bytes the receiver had", resumedAt, had)
	}
	var cards int
	b.eval(`document.querySelectorAll('#transfers .file-card[data-dir="in"]').length`, &cards)
	if cards != 1 {
		t.Errorf("the receiver shows %d incoming cards, want 1 (the same file)", cards)
	}
	t.Logf("sender reloaded with %d of %d bytes at the receiver; resumed at %d", had, size, resumedAt)
}

// TestBrowserBulkWorkerAndPage: file data goes through the store worker
// where the browser can hand it the bulk channel (Chromium can), and
// through the page where it cannot (?bulk=page stands in for such a
// browser); the two interoperate, both ways: the host keeps file data on
// its page, the guest in its worker.
func TestBrowserBulkWorkerAndPage(t *testing.T) {
	st := startStack(t)
	a, b := newBrowser(t, "host"), newBrowser(t, "guest")
	link := a.create(st.url + "/?bulk=page")
	a.password("pw", false)
	b.join(strings.Replace(link, "?bulk=page", "", 1), "pw", false)
	a.connected()
	b.connected()
	for _, c := range []struct {
		br   *browser
		want string
	}{{a, "page"}, {b, "worker"}} {
		var got string
		c.br.eval(`document.body.dataset.bulk || ""`, &got)
		if got != c.want {
			t.Errorf("%s handles file data in the %q, want the %q", c.br.name, got, c.want)
		}
	}
	toGuest, sumG := randomFile(t, "to-guest.bin", 5<<20+3)
	toHost, sumH := randomFile(t, "to-host.bin", 3<<20+5)
	a.sendFile(toGuest)
	b.sendFile(toHost)
	if got := b.receivedSHA("to-guest.bin"); got != sumG {
		t.Errorf("guest received SHA-256 %s, want %s", got, sumG)
	}
	if got := a.receivedSHA("to-host.bin"); got != sumH {
		t.Errorf("host received SHA-256 %s, want %s", got, sumH)
	}
	a.waitSent("to-guest.bin")
	b.waitSent("to-host.bin")
}
