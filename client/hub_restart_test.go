package client_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/teststack"
)

// chatLog follows one member's events for a test that waits for hub and
// connection events while chat goes on: it keeps every message shown on
// the way, so that none is lost to a wait for something else.
type chatLog struct {
	t    *testing.T
	name string
	m    *clienttest.Member
	got  []string       // the chat messages shown, in order
	seen []client.Event // every event taken
}

func (l *chatLog) keep(evs ...client.Event) {
	for _, ev := range evs {
		l.seen = append(l.seen, ev)
		if ev.Kind == client.EventChat {
			l.got = append(l.got, ev.Text)
		}
	}
}

// waitFor waits for an event of kind whose text contains want.
func (l *chatLog) waitFor(kind client.EventKind, want string) client.Event {
	l.t.Helper()
	for {
		skipped, ev := l.m.WaitUntil(kind)
		l.keep(skipped...)
		l.keep(ev)
		if strings.Contains(ev.Text, want) {
			return ev
		}
	}
}

// waitChats waits until n messages have been shown, then checks that they
// are exactly from's 1…n, in order: none lost, none shown twice.
func (l *chatLog) waitChats(from string, n int) {
	l.t.Helper()
	for len(l.got) < n {
		l.waitFor(client.EventChat, "")
	}
	want := numbered(from, 1, n)
	if !slices.Equal(l.got, want) {
		l.t.Fatalf("%s was shown %d messages %q, want %d %q", l.name, len(l.got), l.got, n, want)
	}
}

// failed returns the events since index from that say the connection to
// the other side ended.
func (l *chatLog) failed(from int) []client.Event {
	var bad []client.Event
	for _, ev := range l.seen[from:] {
		if ev.Kind == client.EventDisconnected || ev.Kind == client.EventPeerLeft {
			bad = append(bad, ev)
		}
	}
	return bad
}

func numbered(from string, first, last int) []string {
	var s []string
	for i := first; i <= last; i++ {
		s = append(s, fmt.Sprintf("%s %d", from, i))
	}
	return s
}

// chatRange sends messages first…last from each side, alternating.
func chatRange(t *testing.T, h, g *clienttest.Member, first, last int) {
	t.Helper()
	for i := first; i <= last; i++ {
		for _, m := range []struct {
			c    *client.Client
			from string
		}{{h.Client, "host"}, {g.Client, "guest"}} {
			if err := m.c.Send(fmt.Sprintf("%s %d", m.from, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestHubRestartDuringChat: two members chat over a direct connection
// while the hub is killed and a new hub process, with the same hub key,
// starts on its address. Chat goes on throughout: each side shows all of
// the other's 50 messages, sent before, during and after the restart,
// once each and in order, and neither connection drops. Both members say
// that they are back at the hub, which has recreated the room from their
// resume tokens; then the direct connection is cut, a step that needs the
// room: the members signal again through the restarted hub, connect, and
// the chat goes on, still without a message lost or repeated.
//
// The negative control, a restarted hub with another key (which forgets
// the room, so that a cut connection ends both sessions with
// client.ErrNoSuchRoom), is the end of TestResilHubOutage.
func TestHubRestartDuringChat(t *testing.T) {
	key := [][]byte{hub.NewHubKey()}
	old := startStack(t, nil)
	if err := old.Hub.SetHubKeys(key); err != nil {
		t.Fatal(err)
	}
	px := startHubProxy(t, old.URL)
	h := startMember(t, client.Config{Hub: px.url(), Password: "pw"})
	code := h.WaitFor(client.EventRoom).Text
	g := startMember(t, client.Config{Hub: px.url(), Password: "pw", Room: code})
	host := &chatLog{t: t, name: "the host", m: h}
	guest := &chatLog{t: t, name: "the guest", m: g}
	for _, l := range []*chatLog{host, guest} {
		if ev := l.waitFor(client.EventConnected, ""); !strings.HasPrefix(ev.Path, "direct") {
			t.Fatalf("%s: path %q, want direct", l.name, ev.Path)
		}
	}
	mark := map[*chatLog]int{host: len(host.seen), guest: len(guest.seen)}

	chatRange(t, h, g, 1, 10)
	// The hub goes, as with kill -9: every connection cut, dials refused.
	px.down()
	if err := old.Hub.Close(); err != nil {
		t.Fatal(err)
	}
	chatRange(t, h, g, 11, 20)
	for _, l := range []*chatLog{host, guest} {
		l.waitFor(client.EventHub, "still connected to the other side")
	}
	chatRange(t, h, g, 21, 25)

	// A new hub on the same address, with the same key.
	restarted := teststack.Start(t, teststack.Options{})
	if err := restarted.Hub.SetHubKeys(key); err != nil {
		t.Fatal(err)
	}
	px.setBackend(restarted.URL)
	px.up()
	chatRange(t, h, g, 26, 40)
	for _, l := range []*chatLog{host, guest} {
		l.waitFor(client.EventHub, "reconnected to the hub")
		if s := l.m.Client.Status(); !s.Connected || !s.Hub || s.Room != code {
			t.Errorf("%s: status once back at the restarted hub: %+v", l.name, s)
		}
	}
	chatRange(t, h, g, 41, 50)
	guest.waitChats("host", 50)
	host.waitChats("guest", 50)
	for _, l := range []*chatLog{host, guest} {
		if bad := l.failed(mark[l]); len(bad) > 0 {
			t.Errorf("%s: the connection dropped across the restart: %+v", l.name, bad)
		}
	}
	t.Logf("across the restart: 50 messages each way, each shown once, in order")

	// A step that needs the room: the direct connection fails, and only
	// the restarted hub can carry the new offer and answer.
	h.Client.DropPeer()
	chatRange(t, h, g, 51, 55)
	for _, l := range []*chatLog{host, guest} {
		l.waitFor(client.EventConnected, "")
	}
	chatRange(t, h, g, 56, 60)
	guest.waitChats("host", 60)
	host.waitChats("guest", 60)
	for _, l := range []*chatLog{host, guest} {
		if s := l.m.Client.Status(); !s.Connected || !s.Hub || s.Room != code {
			t.Errorf("%s: status after reconnecting through the restarted hub: %+v", l.name, s)
		}
	}
	t.Logf("after a reconnect through the restarted hub: 60 messages each way, each shown once, in order")
}
