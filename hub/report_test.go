package hub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
)

func report() proto.Frame {
	return proto.Frame{Type: proto.TypeReport, Reason: proto.ReportFailedConfirmation}
}

// A report needs a room, and a reason the hub knows; neither refusal is
// counted as a failed confirmation, and the connection stays open.
func TestReportRefused(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	c := dial(t, th.url, nil)
	c.send(report())
	if f := c.expectError(proto.CodeBadRequest); f.Message != "report needs a room: send create, join or resume first" {
		t.Errorf("report without a room: %q", f.Message)
	}
	host, _, _, _ := pair(t, th)
	for _, reason := range []string{"", "wrong_password", "Failed_Confirmation"} {
		host.send(proto.Frame{Type: proto.TypeReport, Reason: reason})
		host.expectError(proto.CodeBadRequest)
	}
	host.send(proto.Frame{Type: proto.TypeCandidate, Data: "still open"})
	if got := testutil.ToFloat64(th.m.FailedConfirmations); got != 0 {
		t.Errorf("failed confirmations = %v, want 0", got)
	}
	if got := th.rejections("bad_request"); got != 4 {
		t.Errorf("bad_request rejections = %v, want 4", got)
	}
}

// Reports from the host about its guest: each charges the guest's address
// a failed attempt, so the guest reconnecting to try again is throttled
// like a brute-forcer, and each takes one of the room's 5 tokens, so that
// once they are spent nobody joins the room until one refills (a minute).
// The guest's client never sees a report; the host's address is not
// charged; other rooms are not affected.
func TestReportsThrottle(t *testing.T) {
	t.Parallel()
	clock := newClock() // frozen until Advance: nothing refills by itself
	th := startHub(t, hub.WithClientAddrForTest(hub.Config{
		Now: clock.Now, FailureBurst: 4, FailureRate: rate.Every(time.Hour), RoomBurst: -1, MaxIdleRoomsPerIP: -1,
	}))
	const hostAddr, guestAddr, otherAddr = "192.0.2.1", "198.51.100.7", "203.0.113.9"
	host := dial(t, th.url, from(hostAddr))
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created := host.expect(proto.TypeCreated)
	guest := dial(t, th.url, from(guestAddr))
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	joined := guest.expect(proto.TypeJoined)
	host.expect(proto.TypePeerJoined)

	for range 4 {
		host.send(report())
	}
	// Nothing is answered; the candidate is the next thing the guest
	// gets, and the reports were handled before it.
	host.send(proto.Frame{Type: proto.TypeCandidate, Data: "c"})
	if f := guest.expect(proto.TypeCandidate); f.Data != "c" {
		t.Fatalf("guest got %+v, want the candidate", f)
	}
	if got := testutil.ToFloat64(th.m.FailedConfirmations); got != 4 {
		t.Errorf("tryst_hub_failed_confirmations_total = %v, want 4", got)
	}
	if got := testutil.ToFloat64(th.m.Messages.WithLabelValues(proto.TypeReport)); got != 4 {
		t.Errorf("report messages = %v, want 4", got)
	}

	// The guest's address has spent its 4 failed attempts: its resume
	// from a new connection is throttled, and so is any join from there.
	for _, f := range []proto.Frame{
		{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token},
		{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room},
	} {
		c := dial(t, th.url, from(guestAddr))
		c.send(f)
		c.expectError(proto.CodeThrottled)
		if code := c.closed(); code != websocket.StatusPolicyViolation {
			t.Errorf("%s from the reported address closed with %v, want 1008", f.Type, code)
		}
	}
	if got := th.rejections("brute_force"); got != 2 {
		t.Errorf("brute_force rejections = %v, want 2", got)
	}
	// The reporter's address was not charged: its wrong code is answered.
	c := dial(t, th.url, from(hostAddr))
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "ZZZ-ZZZ-ZZZ-ZZZ-ZZZ-ZZZ"})
	c.expectError(proto.CodeNoSuchRoom)

	// One token left in the room: a join gets as far as room_full.
	c = dial(t, th.url, from(otherAddr))
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	c.expectError(proto.CodeRoomFull)
	// The fifth report (this time from the guest) spends the room's
	// burst: joins into it are throttled and the connection closed, by
	// code in any spelling, without charging the joiner's address.
	guest.send(report())
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "c"})
	host.expect(proto.TypeCandidate)
	for _, room := range []string{created.Room, " " + strings.ToLower(strings.ReplaceAll(created.Room, "-", " ")) + " "} {
		c = dial(t, th.url, from(otherAddr))
		c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: room})
		if f := c.expectError(proto.CodeThrottled); f.Message != "too many failed password attempts in this room; wait a few minutes" {
			t.Errorf("throttled join: %q", f.Message)
		}
		if code := c.closed(); code != websocket.StatusPolicyViolation {
			t.Errorf("join into the reported room closed with %v, want 1008", code)
		}
	}
	if got := th.rejections(metrics.RejectRoomGuesses); got != 2 {
		t.Errorf("room_guesses rejections = %v, want 2", got)
	}
	// The guest's report charged the host's address: of its 4 failed
	// attempts, the wrong code above took one and the report another.
	c = dial(t, th.url, from(hostAddr))
	for range 2 {
		c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "ZZZ-ZZZ-ZZZ-ZZZ-ZZZ-ZZZ"})
		c.expectError(proto.CodeNoSuchRoom)
	}
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "ZZZ-ZZZ-ZZZ-ZZZ-ZZZ-ZZZ"})
	c.expectError(proto.CodeThrottled)

	// Other rooms are not throttled.
	h2 := dial(t, th.url, from(otherAddr))
	h2.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	other := h2.expect(proto.TypeCreated)
	g2 := dial(t, th.url, from(otherAddr))
	g2.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: other.Room})
	g2.expect(proto.TypeJoined)

	// A minute later the room has a token again: the join is answered.
	clock.Advance(time.Minute)
	c = dial(t, th.url, from(otherAddr))
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	c.expectError(proto.CodeRoomFull)
}
