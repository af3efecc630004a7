package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// chatFrame is a chat payload (docs/PROTOCOL.md, "Data channel messages").
func chatFrame(id uint64, text string) []byte {
	b, _ := json.Marshal(struct {
		ID   uint64 `json:"id"`
		Text string `json:"text"`
		TS   int64  `json:"ts"`
	}{id, text, 1})
	return b
}

// TestLiveTamperReplayReorder sends forged frames over a real data channel:
// a replayed, a reordered and a modified one. Each is rejected (its text is
// never shown), the connection is dropped and rebuilt with fresh keys, and
// the chat goes on.
func TestLiveTamperReplayReorder(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, client.Config{}, client.Config{})
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)

	type sealer = func(ch int, typ byte, payload []byte) client.RawFrame
	const ctl = proto.ControlChannel
	attacks := map[string]func(seal sealer) []client.RawFrame{
		// Pings, so that the one legitimate copy changes no chat state.
		"replayed": func(seal sealer) []client.RawFrame {
			f := seal(ctl, proto.MsgPing, []byte(`{"t":1}`))
			return []client.RawFrame{f, {Channel: ctl, Frame: bytes.Clone(f.Frame)}}
		},
		"reordered": func(seal sealer) []client.RawFrame {
			a := seal(ctl, proto.MsgChat, chatFrame(2000, "first"))
			b := seal(ctl, proto.MsgChat, chatFrame(2001, "second"))
			return []client.RawFrame{b, a}
		},
		"modified": func(seal sealer) []client.RawFrame {
			f := seal(ctl, proto.MsgChat, chatFrame(3000, "tampered"))
			f.Frame[len(f.Frame)-20] ^= 1
			return []client.RawFrame{f}
		},
		// A frame sealed for bulk, sent on control: out of control's
		// sequence, and under bulk's nonce.
		"cross-channel": func(seal sealer) []client.RawFrame {
			f := seal(proto.BulkChannel, proto.MsgChat, chatFrame(4000, "crossed"))
			f.Channel = ctl
			return []client.RawFrame{f}
		},
	}
	for _, name := range []string{"replayed", "reordered", "modified", "cross-channel"} {
		t.Logf("attack %s", name)
		h.Client.SendRaw(t, attacks[name])
		for {
			ev := g.WaitFor(client.EventWarning)
			if bytes.Contains([]byte(ev.Text), []byte("rejected")) {
				break
			}
		}
		g.WaitFor(client.EventConnected) // rebuilt with fresh keys
		h.Client.Send("after " + name)
		for {
			ev := g.WaitFor(client.EventChat)
			if ev.Text == "tampered" || ev.Text == "first" || ev.Text == "second" || ev.Text == "crossed" {
				t.Fatalf("%s: a forged or out-of-order frame was shown: %q", name, ev.Text)
			}
			if ev.Text == "after "+name {
				break
			}
		}
	}
}

// TestAnswerWithoutFingerprintRefused: a guest that answers with an SDP
// carrying no a=fingerprint cannot have its keys bound to its DTLS
// certificate, so the host refuses that answer, says so, and offers again
// instead of connecting.
func TestAnswerWithoutFingerprintRefused(t *testing.T) {
	st := startStack(t, nil)
	const password = "hunter2"
	h := startMember(t, client.Config{Hub: st.hubURL, Password: password})
	code := h.WaitFor(client.EventRoom).Text

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hc, _, err := hubconn.Dial(ctx, "ws"+strings.TrimPrefix(st.hubURL, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if err := hc.Send(ctx, proto.Frame{Type: proto.TypeJoin, Room: code, Version: proto.ProtocolVersion}); err != nil {
		t.Fatal(err)
	}
	g := &rawMember{t: t, ctx: ctx, hc: hc}
	g.guestPAKE(password, code)
	sig := g.sig
	offer, err := hc.Await(ctx, proto.TypeOffer)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := sig.Open("offer", e2e.Host, offer.Data)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Nonce []byte `json:"nonce"`
	}
	if err := json.Unmarshal(pt, &o); err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(map[string]any{
		"sdp":         "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n",
		"nonce":       e2e.NewNonce(),
		"offer_nonce": o.Nonce,
		"version":     proto.ProtocolVersion,
	})
	if err := hc.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: sig.Seal("answer", e2e.Guest, answer)}); err != nil {
		t.Fatal(err)
	}
	for {
		skipped, ev := h.WaitUntil(client.EventWarning)
		for _, e := range skipped {
			if e.Kind == client.EventConnected {
				t.Fatal("the host connected with an answer that has no DTLS fingerprint")
			}
		}
		if strings.Contains(ev.Text, "without a DTLS fingerprint") {
			break
		}
	}
	// The attempt ended: the host offers again.
	if _, err := hc.Await(ctx, proto.TypeOffer); err != nil {
		t.Fatalf("no new offer after the refused answer: %v", err)
	}
}
