package hub_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

func FuzzVerifyAccessToken(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	good, _ := hub.MintAccessToken(secret, "alice", time.Minute, now)
	for _, s := range []string{good, "a.b.c", "", "....", good + "x", strings.Replace(good, "J", "K", 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if err := hub.VerifyAccessToken([][]byte{secret}, tok, now); err == nil && tok != good {
			// Only a correctly signed token can pass; with base64's
			// non-canonical trailing bits a few spellings of the same
			// bytes exist, so compare what they decode to.
			if canon(tok) != canon(good) {
				t.Fatalf("forged token accepted: %q", tok)
			}
		}
	})
}

func canon(tok string) string {
	parts := strings.Split(tok, ".")
	var out []string
	for _, p := range parts {
		b, err := b64.DecodeString(p)
		if err != nil {
			return tok
		}
		out = append(out, string(b))
	}
	return strings.Join(out, ".")
}

// FuzzMemberFrame sends whatever a member of a paired room may send to a
// real hub, then a candidate, and checks what the other member gets: only
// frames meant for clients (never a report), the room-closed code exactly
// when a leave says guess_limit, and one failed confirmation counted per
// report the hub accepts. A pair serves until a frame ends its room or its
// host's connection: a pair per input would use up loopback's ephemeral
// ports (TIME_WAIT) within seconds.
func FuzzMemberFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"report","reason":"failed_confirmation"}`, `{"type":"report"}`, `{"type":"report","reason":"x"}`,
		`{"type":"report","reason":"failed_confirmation","data":"d"}`, `{"type":"REPORT","reason":"failed_confirmation"}`,
		`{"type":"leave","reason":"guess_limit"}`, `{"type":"leave"}`, `{"type":"leave","reason":"guess_limit "}`,
		`{"type":"leave","reason":null}`, `{"type":"leave","Reason":"guess_limit"}`, `{"type":"leave","code":"guess_limit"}`,
		`{"type":"candidate","data":"c"}`, `{"type":"offer","data":"o"}`, `{"type":"answer","data":"a"}`,
		`{"type":"create","version":3}`, `{"type":"join","room":"x","version":2}`, `{"type":"x"}`, `{`, `[]`,
	} {
		f.Add([]byte(s))
	}
	th := startHub(f, hub.Config{
		MessageRate: 1e9, RelayBytesRate: 1e12, MaxConnsPerIP: -1, RoomBurst: -1, MaxIdleRoomsPerIP: -1,
		MaxRooms: -1, CredentialBurst: -1, FailureRate: 1e6, FailureBurst: 1 << 30,
	})
	var open []*hubconn.Conn
	f.Cleanup(func() {
		for _, hc := range open {
			_ = hc.Close()
		}
	})
	dial := func(t *testing.T) *client {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, th.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := &client{t: t, ws: ws, hc: hubconn.New(ws, &hubconn.Options{Buffer: 1024})}
		open = append(open, c.hc)
		return c
	}
	var host, guest *client
	n := 0
	f.Fuzz(func(t *testing.T, msg []byte) {
		if host == nil {
			host, guest = dial(t), dial(t)
			host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
			created := host.expect(proto.TypeCreated)
			guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
			guest.expect(proto.TypeJoined)
			host.expect(proto.TypePeerJoined)
		}
		host.t, guest.t = t, t
		n++
		hostEnd, guestEnd := fmt.Sprintf("x-end-%d", n), fmt.Sprintf("end of input %d", n)
		before := testutil.ToFloat64(th.m.FailedConfirmations)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The writes after msg fail once the hub has closed the host's
		// connection (after a leave, or a frame too big). The hub answers
		// the unknown type once it has handled msg, and relays the
		// candidate after whatever msg made it send the guest.
		_ = host.ws.Write(ctx, websocket.MessageText, msg)
		_ = host.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"`+hostEnd+`"}`))
		_ = host.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"candidate","data":"`+guestEnd+`"}`))

		hostOpen := false
		for {
			h, err := host.hc.Next(ctx)
			if err != nil {
				break // the hub closed the host's connection
			}
			if h.Type == proto.TypeError && strings.Contains(h.Message, hostEnd) {
				hostOpen = true
				break
			}
		}
		fr, err := proto.DecodeFrame(msg)
		leave := err == nil && fr.Type == proto.TypeLeave
		roomOpen := true
		for roomOpen {
			g := guest.next()
			switch {
			case g.Type == proto.TypeCandidate && g.Data == guestEnd:
				if leave {
					t.Fatal("the guest got the host's candidate after the host left")
				}
				roomOpen = false
				continue
			case g.Type == proto.TypeRoomClosed:
				if !leave {
					t.Fatalf("room-closed after %q", msg)
				}
				if guessLimit := fr.Reason == proto.ClosedGuessLimit; (g.Code == proto.ClosedGuessLimit) != guessLimit ||
					(g.Code == "" && g.Reason != "host left") {
					t.Fatalf("leave %q: room-closed with code %q, reason %q", msg, g.Code, g.Reason)
				}
			case g.Type == proto.TypePeerLeft: // the hub cut the host (a frame too big)
			case g.Type == proto.TypeOffer || g.Type == proto.TypeCandidate:
				continue
			default:
				t.Fatalf("after %q the guest got %+v", msg, g)
			}
			hostOpen = false // the room is gone, or its host: a new pair
			break
		}
		if !hostOpen {
			_ = host.hc.Close()
			_ = guest.hc.Close()
			host, guest = nil, nil
		}
		want := before
		if err == nil && fr.Type == proto.TypeReport && fr.Reason == proto.ReportFailedConfirmation {
			want++
		}
		if got := testutil.ToFloat64(th.m.FailedConfirmations); got != want {
			t.Fatalf("after %q, %v failed confirmations counted, want %v", msg, got, want)
		}
	})
}
