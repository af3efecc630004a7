package hub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/proto"
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
// report the hub accepts.
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
		MaxConnsPerIP: -1, RoomBurst: -1, MaxIdleRoomsPerIP: -1,
		MaxRooms: -1, CredentialBurst: -1, FailureRate: 1e6, FailureBurst: 1 << 30,
	})
	f.Fuzz(func(t *testing.T, msg []byte) {
		host, guest, _, _ := pair(t, th)
		before := testutil.ToFloat64(th.m.FailedConfirmations)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Either write may fail: the hub closes the host's connection
		// after a leave.
		_ = host.ws.Write(ctx, websocket.MessageText, msg)
		_ = host.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"candidate","data":"end of test"}`))

		fr, err := proto.DecodeFrame(msg)
		leave := err == nil && fr.Type == proto.TypeLeave
		for {
			g := guest.next()
			switch {
			case g.Type == proto.TypeCandidate && g.Data == "end of test":
				if leave {
					t.Fatal("the guest got the host's candidate after the host left")
				}
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
			break
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
