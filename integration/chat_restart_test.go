package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// chatProcess is a running `tryst chat`, its standard input a pipe that
// the test types into.
type chatProcess struct {
	*peerProcess
	in io.WriteCloser
}

// startChat runs `tryst chat` with args, as startPeer runs send and
// receive, with a pipe for standard input.
func startChat(t *testing.T, name string, args ...string) *chatProcess {
	t.Helper()
	p, in := startProcess(t, name, true, append([]string{"chat"}, args...))
	return &chatProcess{peerProcess: p, in: in}
}

// say types messages first…last, "from N" each.
func (c *chatProcess) say(from string, first, last int) {
	c.t.Helper()
	for i := first; i <= last; i++ {
		if _, err := fmt.Fprintf(c.in, "%s %d\n", from, i); err != nil {
			c.t.Fatalf("%s: typing: %v", c.name, err)
		}
	}
}

// lineAfter waits for a line containing substr at index from or later; it
// returns the index of the line.
func (c *chatProcess) lineAfter(ctx context.Context, from int, substr string) int {
	c.t.Helper()
	_, i, err := c.out.wait(ctx, from, func(l string) bool { return strings.Contains(l, substr) })
	if err != nil {
		c.t.Fatalf("%s: no line with %q: %v\n%s", c.name, substr, err, c.out.String())
	}
	return i
}

// count returns how many lines the process has written so far.
func (c *chatProcess) count() int {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return len(c.out.all)
}

// shown returns the messages the process has shown from the other side.
func (c *chatProcess) shown() []string {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	var got []string
	for _, l := range c.out.all {
		if _, text, ok := strings.Cut(l, "] peer: "); ok {
			got = append(got, text)
		}
	}
	return got
}

// waitShown waits until the process shows "from last", then checks that it
// has shown from's first…last exactly, in order: none lost, none twice.
func (c *chatProcess) waitShown(ctx context.Context, from string, first, last int) {
	c.t.Helper()
	c.lineAfter(ctx, 0, fmt.Sprintf("] peer: %s %d", from, last))
	var got []string
	for _, m := range c.shown() {
		if strings.HasPrefix(m, from+" ") {
			got = append(got, m)
		}
	}
	var want []string
	for i := first; i <= last; i++ {
		want = append(want, fmt.Sprintf("%s %d", from, i))
	}
	if !slices.Equal(got, want) {
		c.t.Fatalf("%s showed %d messages %q, want %d %q", c.name, len(got), got, len(want), want)
	}
}

// TestChatRestartHub: `tryst chat` host and guest processes chatting
// directly through `tryst serve --state-dir`, which is killed (SIGKILL)
// and started again on the same port with the same state directory. The
// chat goes on while the hub is away and after it is back, and both say
// that they are back at the hub, which has recreated the room from their
// resume tokens. Then a step that needs the room: the guest process is
// killed too and `tryst chat --room CODE` run again with its state
// directory; it comes back with its stored token through the restarted hub
// and the chat goes on. Every message typed is shown once, in order.
func TestChatRestartHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	state := filepath.Join(dir, "serve-state")
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeLoopbackAddr(t)
	serve := startServe(t, nil, "--listen", listen, "--state-dir", state)
	hubURL := serve.Addrs.Hub
	args := func(state string, rest ...string) []string {
		return append([]string{"--hub", hubURL, "--ice-loopback", "--password-file", pw, "--state-dir", state}, rest...)
	}

	host := startChat(t, "host", args(t.TempDir())...)
	code, _, _ := strings.Cut(strings.TrimPrefix(host.line(ctx, "* room code: "), "* room code: "), " ")
	guestState := t.TempDir()
	guest := startChat(t, "guest", args(guestState, "--room", code)...)
	for _, p := range []*chatProcess{host, guest} {
		p.line(ctx, "* connected: direct")
	}
	host.say("host", 1, 10)
	guest.say("guest", 1, 10)
	guest.waitShown(ctx, "host", 1, 10)
	host.waitShown(ctx, "guest", 1, 10)

	if err := serve.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = serve.cmd.Wait()
	host.say("host", 11, 20)
	guest.say("guest", 11, 20)
	for _, p := range []*chatProcess{host, guest} {
		p.line(ctx, "lost the connection to the hub; still connected to the other side")
	}
	guest.waitShown(ctx, "host", 1, 20)
	host.waitShown(ctx, "guest", 1, 20)

	again := startServe(t, nil, "--listen", listen, "--state-dir", state)
	if again.Addrs.Hub != hubURL {
		t.Fatalf("restarted on %s, was %s", again.Addrs.Hub, hubURL)
	}
	host.say("host", 21, 30)
	guest.say("guest", 21, 30)
	for _, p := range []*chatProcess{host, guest} {
		p.line(ctx, "* reconnected to the hub")
	}
	guest.waitShown(ctx, "host", 1, 30)
	host.waitShown(ctx, "guest", 1, 30)
	for _, p := range []*chatProcess{host, guest} {
		if s := p.out.String(); strings.Contains(s, "* connection lost") || strings.Contains(s, "no longer knows") {
			t.Errorf("%s: the chat was interrupted by the restart:\n%s", p.name, s)
		}
	}
	t.Logf("across the hub's restart: 30 messages each way, each shown once, in order")

	// The room is needed again: the guest dies and its rerun resumes with
	// the token it stored, through the restarted hub, and the two connect
	// again.
	hostMark := host.count()
	if err := guest.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	guest.exited(ctx)
	rerun := startChat(t, "guest again", args(guestState, "--room", code)...)
	rerun.line(ctx, "* back in room "+code+", where the earlier run left off")
	rerun.line(ctx, "* connected: direct")
	host.lineAfter(ctx, hostMark, "* connected: direct")
	host.say("host", 31, 40)
	rerun.say("guest", 31, 40)
	rerun.waitShown(ctx, "host", 31, 40)
	// The rerun numbers its chat messages above the ids its first run
	// reserved in the state file: the host, which showed that run's 30,
	// shows these too (a reused id would be taken for a duplicate).
	host.waitShown(ctx, "guest", 1, 40)
	t.Logf("after the guest's rerun: 10 more messages each way, each shown once, in order")

	// The rerun leaves at the end of its input; the host is told.
	rerun.in.Close()
	if code := rerun.exited(ctx); code != 0 {
		t.Errorf("the rerun exited %d", code)
	}
	host.line(ctx, "the other side left")
	if code := host.exited(ctx); code != 0 {
		t.Errorf("host exited %d", code)
	}
}
