package hub_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/hub/storetest"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// dialFrom connects to th from the loopback address src (127.0.0.2: a
// second client address on one machine, as the hub sees it on the socket).
func dialFrom(t *testing.T, th *testHub, src string) *client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, th.url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Skipf("cannot connect from %s (not a local address on this system): %v", src, err)
	}
	c := &client{t: t, ws: ws, hc: hubconn.New(ws, nil)}
	t.Cleanup(func() { _ = c.hc.Close() })
	return c
}

// The abuse loop of issue 12 (open, create, a 60 KB offer, close without
// leave, again) from one address is bounded by the hub's own counts, while
// a client at another address still pairs.
func TestAbuseLoopIsBounded(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Unix(1_800_000_000, 0)) // frozen: nothing refills or expires
	// Without the credential budget (as behind a proxy, or without TURN):
	// the room limits must hold on their own.
	th := startHub(t, hub.Config{Now: clock.Now, CredentialBurst: -1})
	offer := strings.Repeat("o", 60_000)
	const loops = 100
	created := 0
	refused := map[string]int{}
	for range loops {
		c := dial(t, th.url, nil)
		c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
		f := c.next()
		switch f.Type {
		case proto.TypeCreated:
			created++
			c.send(proto.Frame{Type: proto.TypeOffer, Data: offer})
			// Wait for the offer to be handled before dropping the
			// connection, as a client that wrote it would have.
			c.send(proto.Frame{Type: "sync"})
			c.expectError(proto.CodeUnknownType)
		case proto.TypeError:
			if f.RetryAfter <= 0 {
				t.Errorf("refusal without retry_after: %+v", f)
			}
			refused[f.Code]++
		default:
			t.Fatalf("create answered %+v", f)
		}
		_ = c.hc.Close() // no leave
	}
	rooms := testutil.ToFloat64(th.m.Rooms)
	mailbox := testutil.ToFloat64(th.m.MailboxBytes)
	t.Logf("abuse loop: %d creates, %d rooms made, refusals %v; %v rooms and %v mailbox bytes kept",
		loops, created, refused, rooms, mailbox)
	// The idle-room cap is 16; a create may race the previous
	// connection's detach, so one more room may slip in.
	if rooms > 17 || created > 17 {
		t.Errorf("%v rooms kept (%d made) from one address, want at most 17", rooms, created)
	}
	if mailbox > 17*60_000 {
		t.Errorf("%v mailbox bytes kept from one address", mailbox)
	}
	if refused[proto.CodeRateLimited] != loops-created {
		t.Errorf("refusals %v, want %d rate_limited", refused, loops-created)
	}
	if th.rejections("idle_rooms") == 0 || th.rejections("room_rate") == 0 {
		t.Errorf("idle_rooms %v, room_rate %v: want both counted", th.rejections("idle_rooms"), th.rejections("room_rate"))
	}

	// Honest clients at another address pair as usual.
	host := dialFrom(t, th, "127.0.0.2")
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	room := host.expect(proto.TypeCreated).Room
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "offer"})
	guest := dialFrom(t, th, "127.0.0.2")
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: room})
	guest.expect(proto.TypeJoined)
	if f := guest.expect(proto.TypeOffer); f.Data != "offer" {
		t.Errorf("offer %q", f.Data)
	}
	host.expect(proto.TypePeerJoined)
	guest.send(proto.Frame{Type: proto.TypeAnswer, Data: "answer"})
	if f := host.expect(proto.TypeAnswer); f.Data != "answer" {
		t.Errorf("answer %q", f.Data)
	}
}

// The node-wide budgets of rooms and mailbox bytes refuse with hub_full,
// and nothing is lost: the client is told, and the room stays.
func TestNodeBudgets(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.WithClientAddrForTest(hub.Config{MaxRooms: 3, MaxMailboxBytes: 100_000}))
	var hosts []*client
	for i := range 3 {
		c := dial(t, th.url, from("192.0.2."+string(rune('1'+i))))
		c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
		c.expect(proto.TypeCreated)
		hosts = append(hosts, c)
	}
	c := dial(t, th.url, from("192.0.2.9"))
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	if f := c.expectError(proto.CodeHubFull); f.RetryAfter <= 0 {
		t.Errorf("hub_full without retry_after: %+v", f)
	}
	hosts[0].send(proto.Frame{Type: proto.TypeOffer, Data: strings.Repeat("a", 60_000)})
	hosts[0].send(proto.Frame{Type: "sync"}) // handled in order: the offer is stored
	hosts[0].expectError(proto.CodeUnknownType)
	hosts[1].send(proto.Frame{Type: proto.TypeOffer, Data: strings.Repeat("b", 60_000)})
	hosts[1].expectError(proto.CodeHubFull)
	// A smaller offer replacing the stored one fits.
	hosts[0].send(proto.Frame{Type: proto.TypeOffer, Data: "small"})
	hosts[0].send(proto.Frame{Type: "sync"})
	hosts[0].expectError(proto.CodeUnknownType)
	hosts[1].send(proto.Frame{Type: proto.TypeOffer, Data: strings.Repeat("b", 60_000)})
	hosts[1].send(proto.Frame{Type: "sync"})
	hosts[1].expectError(proto.CodeUnknownType)
	if got := testutil.ToFloat64(th.m.MailboxBytes); got != 60_005 {
		t.Errorf("mailbox bytes %v, want 60005", got)
	}
	if th.rejections("rooms_total") != 1 || th.rejections("mailbox_bytes") != 1 {
		t.Errorf("rooms_total %v, mailbox_bytes %v, want 1 each", th.rejections("rooms_total"), th.rejections("mailbox_bytes"))
	}
}

// A room nobody joined expires after UnpairedRoomTTL once its host is
// gone, which is longer than any reconnect backoff; a paired room keeps
// the room TTL.
func TestUnpairedRoomExpiresSooner(t *testing.T) {
	t.Parallel()
	if hub.MinUnpairedRoomTTL < 2*time.Minute || hub.MinUnpairedRoomTTL <= proto.ReconnectBackoffMax {
		t.Fatalf("MinUnpairedRoomTTL %v: want at least 2 min and above the reconnect backoff %v",
			hub.MinUnpairedRoomTTL, proto.ReconnectBackoffMax)
	}
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	mem := hub.NewMemStoreWithLimits(30*time.Minute, clock.Now,
		hub.StoreLimits{UnpairedTTL: hub.MinUnpairedRoomTTL})
	ns := storetest.Watch(mem)
	t.Cleanup(func() { mem.Close() })
	th := startHub(t, hub.Config{Store: ns, Now: clock.Now})

	lonely := dial(t, th.url, nil)
	lonely.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	unpaired := lonely.expect(proto.TypeCreated)
	_ = lonely.hc.Close()
	ns.WaitDetached(t)
	host, guest, paired, _ := pair(t, th)
	_ = host.hc.Close()
	ns.WaitDetached(t)
	_ = guest.hc.Close()
	ns.WaitDetached(t)

	clock.Advance(hub.MinUnpairedRoomTTL - time.Second)
	mem.Sweep()
	if mem.Len() != 2 {
		t.Fatalf("%d rooms before the unpaired TTL, want 2", mem.Len())
	}
	clock.Advance(time.Second)
	mem.Sweep()
	c := dial(t, th.url, nil)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: unpaired.Token})
	c.expectError(proto.CodeNoSuchRoom)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: paired.Token})
	c.expect(proto.TypeResumed)
}
