package hub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
)

var (
	hubKey   = []byte("hub-key-for-tests-0123456789abcdef")
	otherKey = []byte("another-hub-key-0123456789abcdef")
)

// restartHub stops th the way a crash does for the in-memory store (every
// member cut, every room lost) and starts a fresh hub with cfg, one second
// later on clock.
func restartHub(t *testing.T, th *testHub, clock *testclock.Clock, cfg hub.Config) *testHub {
	t.Helper()
	th.srv.Close()
	if err := th.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	cfg.Now = clock.Now
	return startHub(t, cfg)
}

func (th *testHub) recreated() float64 { return testutil.ToFloat64(th.m.RoomsRecreated) }

// pairKeepingTokens pairs a host and a guest and returns the host's token
// from peer-joined (which says the room has a guest) besides created and
// joined.
func pairKeepingTokens(t *testing.T, th *testHub) (created, joined, peerJoined proto.Frame) {
	t.Helper()
	host := dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created = host.expect(proto.TypeCreated)
	guest := dial(t, th.url, nil)
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	joined = guest.expect(proto.TypeJoined)
	peerJoined = host.expect(proto.TypePeerJoined)
	if peerJoined.Token == "" || peerJoined.Token == created.Token {
		t.Fatalf("peer-joined carries no fresh token: %+v", peerJoined)
	}
	return created, joined, peerJoined
}

// A paired room survives a restart of a hub with the same key: both members
// come back with their tokens, in either order, signal through the hub, and
// the code no longer opens the room to anybody else.
func TestRoomSurvivesRestart(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := hub.Config{HubKeys: [][]byte{hubKey}, Now: clock.Now}
	th := startHub(t, cfg)
	created, joined, peerJoined := pairKeepingTokens(t, th)

	th = restartHub(t, th, clock, cfg)
	host := dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeResume, Token: peerJoined.Token, Version: proto.ProtocolVersion})
	r := host.expect(proto.TypeResumed)
	if r.Room != created.Room || r.Role != "host" || r.Peer == nil || *r.Peer || r.Token == "" {
		t.Fatalf("host resumed: %+v", r)
	}
	if got := th.recreated(); got != 1 {
		t.Errorf("rooms recreated = %v, want 1", got)
	}
	// The hub lost the mailbox with the room: the host offers again.
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "offer-after-restart"})

	// The guest joined before the restart: its slot is reserved for its
	// token, not open to the code.
	stranger := dial(t, th.url, nil)
	stranger.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	stranger.expectError(proto.CodeRoomFull)

	guest := dial(t, th.url, nil)
	guest.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
	g := guest.expect(proto.TypeResumed)
	if g.Room != created.Room || g.Role != "guest" || g.Peer == nil || !*g.Peer {
		t.Fatalf("guest resumed: %+v", g)
	}
	if f := guest.expect(proto.TypeOffer); f.Data != "offer-after-restart" {
		t.Errorf("offer %q", f.Data)
	}
	if back := host.expect(proto.TypePeerBack); back.Token == "" {
		t.Error("peer-back carries no token")
	}
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "cand"})
	if f := host.expect(proto.TypeCandidate); f.Data != "cand" {
		t.Errorf("candidate %q", f.Data)
	}
	if got := th.recreated(); got != 1 {
		t.Errorf("rooms recreated = %v, want 1 (the guest found it)", got)
	}

	// The re-issued tokens survive the next restart as well; this time
	// the guest comes first and the host's slot waits for it.
	th = restartHub(t, th, clock, cfg)
	guest = dial(t, th.url, nil)
	guest.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: g.Token})
	guest.expect(proto.TypeResumed)
	stranger = dial(t, th.url, nil)
	stranger.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	stranger.expectError(proto.CodeRoomFull)
	host = dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: r.Token})
	if h := host.expect(proto.TypeResumed); !*h.Peer || h.Role != "host" {
		t.Errorf("host resumed: %+v", h)
	}
	guest.expect(proto.TypePeerBack)
}

// A token the hub cannot verify, or too old to recreate a room, gets the
// same no_such_room as an unknown room, counted by why.
func TestRestartRefusesBadTokens(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := hub.Config{HubKeys: [][]byte{hubKey}, Now: clock.Now}
	th := startHub(t, cfg)
	_, joined, peerJoined := pairKeepingTokens(t, th)

	// Another key: nothing verifies.
	other := restartHub(t, th, clock, hub.Config{HubKeys: [][]byte{otherKey}})
	c := dial(t, other.url, nil)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: peerJoined.Token})
	c.expectError(proto.CodeNoSuchRoom)
	if got := other.rejections(metrics.RejectBadToken); got != 1 {
		t.Errorf("bad_token rejections = %v, want 1", got)
	}

	// Tampered: one character changed anywhere.
	th = restartHub(t, other, clock, cfg)
	tok := joined.Token
	for _, i := range []int{0, 3, 20, 40, len(tok) - 1} {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		c := dial(t, th.url, nil)
		c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: string(b)})
		c.expectError(proto.CodeNoSuchRoom)
	}
	for _, bad := range []string{"bogus", tok + "A", tok[:len(tok)-1], strings.Repeat("A", len(tok))} {
		c := dial(t, th.url, nil)
		c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: bad})
		c.expectError(proto.CodeNoSuchRoom)
	}
	if got := th.rejections(metrics.RejectBadToken); got != 9 {
		t.Errorf("bad_token rejections = %v, want 9", got)
	}
	if got := th.recreated(); got != 0 {
		t.Errorf("rooms recreated = %v, want 0", got)
	}

	// Too old: past ResumeTokenMaxAge (24 h by default).
	clock.Advance(24 * time.Hour)
	c = dial(t, th.url, nil)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
	c.expectError(proto.CodeNoSuchRoom)
	if got := th.rejections(metrics.RejectExpiredToken); got != 1 {
		t.Errorf("expired_token rejections = %v, want 1", got)
	}
}

// Key rotation: a hub whose keys list a new key first and the old one
// after recreates rooms from tokens of either, and issues tokens with the
// new one.
func TestRestartWithRotatedKeys(t *testing.T) {
	t.Parallel()
	clock := newClock()
	th := startHub(t, hub.Config{HubKeys: [][]byte{hubKey}, Now: clock.Now})
	_, joined, _ := pairKeepingTokens(t, th)
	rotated := [][]byte{otherKey, hubKey}
	th = restartHub(t, th, clock, hub.Config{HubKeys: rotated})
	c := dial(t, th.url, nil)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
	r := c.expect(proto.TypeResumed)
	if _, _, _, err := hub.ParseResumeTokenForTest([][]byte{otherKey}, r.Token); err != nil {
		t.Errorf("the re-issued token is not signed with the new key: %v", err)
	}
	if _, _, _, err := hub.ParseResumeTokenForTest([][]byte{hubKey}, r.Token); err == nil {
		t.Error("the re-issued token verifies with the old key")
	}
}

// The guest's slot after a restart: open to the code when the host's token
// says nobody had joined, and then, if somebody had after all (a host
// that did not keep the token of peer-joined), taken back by the guest
// that joined first; the one who joined after the restart is out for good.
func TestRestartGuestSlot(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := hub.Config{HubKeys: [][]byte{hubKey}, Now: clock.Now}

	t.Run("unpaired room opens to the code", func(t *testing.T) {
		th := startHub(t, cfg)
		host := dial(t, th.url, nil)
		host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
		created := host.expect(proto.TypeCreated)
		th = restartHub(t, th, clock, cfg)
		host = dial(t, th.url, nil)
		host.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
		host.expect(proto.TypeResumed)
		guest := dial(t, th.url, nil)
		guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
		guest.expect(proto.TypeJoined)
		host.expect(proto.TypePeerJoined)
		other := dial(t, th.url, nil)
		other.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
		other.expectError(proto.CodeRoomFull)
	})

	t.Run("earlier guest takes its slot back", func(t *testing.T) {
		th := startHub(t, cfg)
		created, joined, _ := pairKeepingTokens(t, th)
		th = restartHub(t, th, clock, cfg)
		host := dial(t, th.url, nil)
		host.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token}) // stale: says unpaired
		host.expect(proto.TypeResumed)
		late := dial(t, th.url, nil)
		late.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
		lateJoined := late.expect(proto.TypeJoined)
		host.expect(proto.TypePeerJoined)

		guest := dial(t, th.url, nil)
		guest.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
		if g := guest.expect(proto.TypeResumed); g.Role != "guest" || !*g.Peer {
			t.Fatalf("guest resumed: %+v", g)
		}
		host.expect(proto.TypePeerBack)
		if code := late.closed(); code != 1008 {
			t.Errorf("the late joiner's connection closed with %v, want 1008", code)
		}
		again := dial(t, th.url, nil)
		again.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: lateJoined.Token})
		again.expectError(proto.CodeNoSuchRoom)
		// The earlier guest keeps its slot against the late one's token.
		guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "still here"})
		if f := host.expect(proto.TypeCandidate); f.Data != "still here" {
			t.Errorf("candidate %q", f.Data)
		}
	})

	t.Run("the host's slot waits for the host", func(t *testing.T) {
		th := startHub(t, cfg)
		created, joined, _ := pairKeepingTokens(t, th)
		th = restartHub(t, th, clock, cfg)
		guest := dial(t, th.url, nil)
		guest.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
		guest.expect(proto.TypeResumed)
		stranger := dial(t, th.url, nil)
		stranger.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
		stranger.expectError(proto.CodeRoomFull)
		host := dial(t, th.url, nil)
		host.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
		if h := host.expect(proto.TypeResumed); !*h.Peer {
			t.Errorf("host resumed: %+v", h)
		}
	})
}

// A room this hub held and lost (left, or expired) stays gone: only a token
// from before the hub started recreates a room.
func TestLeftRoomIsNotRecreated(t *testing.T) {
	t.Parallel()
	clock := newClock()
	th := startHub(t, hub.Config{HubKeys: [][]byte{hubKey}, Now: clock.Now})
	host, guest, created, _ := pair(t, th)
	guest.send(proto.Frame{Type: proto.TypeLeave})
	host.expect(proto.TypeRoomClosed)
	c := dial(t, th.url, nil)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
	c.expectError(proto.CodeNoSuchRoom)
	if got := th.recreated(); got != 0 {
		t.Errorf("rooms recreated = %v, want 0", got)
	}
}

// Without HubKeys, every hub has its own random key: rooms do not survive.
func TestNoHubKeyNoRestart(t *testing.T) {
	t.Parallel()
	clock := newClock()
	th := startHub(t, hub.Config{Now: clock.Now})
	_, joined, _ := pairKeepingTokens(t, th)
	th = restartHub(t, th, clock, hub.Config{})
	c := dial(t, th.url, nil)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
	c.expectError(proto.CodeNoSuchRoom)
}

func TestHubKeysValidated(t *testing.T) {
	if _, err := hub.New(hub.Config{HubKeys: [][]byte{[]byte("short")}}); err == nil {
		t.Error("a 5-byte hub key was accepted")
	}
	if _, err := hub.New(hub.Config{RoomTTL: 48 * time.Hour, ResumeTokenMaxAge: time.Hour}); err == nil {
		t.Error("a resume token max age below the room TTL was accepted")
	}
	keys, err := hub.ParseHubKeys(append(hub.NewHubKey(), "\n# old\n"+string(hubKey)+"\n"...))
	if err != nil || len(keys) != 2 || len(keys[0]) != 44 {
		t.Errorf("ParseHubKeys: %d keys, %v", len(keys), err)
	}
	if _, err := hub.ParseHubKeys([]byte("# nothing\n")); err != hub.ErrNoHubKey {
		t.Errorf("ParseHubKeys of no key: %v", err)
	}
}

func TestResumeTokenRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_123)
	m := hub.Member{Room: "K7Q-MX2-P9R-TVW-4HN-C8D", Role: hub.Host, Since: 1_799_999_999_000, Nonce: 0xfeedface01234567}
	tok := hub.MintResumeTokenForTest([][]byte{hubKey}, m, false, now)
	if len(tok) != hub.TokenChars || hub.TokenChars != 82 {
		t.Errorf("token of %d characters, TokenChars %d", len(tok), hub.TokenChars)
	}
	got, paired, issued, err := hub.ParseResumeTokenForTest([][]byte{otherKey, hubKey}, tok)
	if err != nil || got != m || paired || !issued.Equal(now) {
		t.Errorf("parse: %+v paired %v issued %v: %v", got, paired, issued, err)
	}
	g := m
	g.Role = hub.Guest
	if _, paired, _, _ := hub.ParseResumeTokenForTest([][]byte{hubKey}, hub.MintResumeTokenForTest([][]byte{hubKey}, g, false, now)); !paired {
		t.Error("a guest token is always paired")
	}
}

func FuzzResumeToken(f *testing.F) {
	keys := [][]byte{hubKey}
	m := hub.Member{Room: "K7Q-MX2-P9R-TVW-4HN-C8D", Role: hub.Guest, Since: 1, Nonce: 2}
	good := hub.MintResumeTokenForTest(keys, m, true, time.UnixMilli(1_800_000_000_000))
	for _, s := range []string{good, "", "A", strings.Repeat("A", hub.TokenChars), good[:81] + "B", "=" + good[1:], strings.Repeat("_", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _, _, err := hub.ParseResumeTokenForTest(keys, s)
		if err == nil && (s != good || got != m) {
			t.Fatalf("forged token accepted: %q", s)
		}
	})
}
