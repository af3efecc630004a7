package client_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// A peer that speaks protocol version 1 (docs/PROTOCOL.md, "Versions"): its
// offer or answer has no "version". It is not used, the user is told why,
// and nothing ends: the room waits for the other side to be updated.

// rawMember is a member of a room played by the test over the hub
// protocol, with the room's signaling key.
type rawMember struct {
	t   *testing.T
	ctx context.Context
	hc  *hubconn.Conn
	sig *e2e.Signaler
}

func dialRaw(t *testing.T, ctx context.Context, hubURL string) *hubconn.Conn {
	t.Helper()
	hc, _, err := hubconn.Dial(ctx, "ws"+strings.TrimPrefix(hubURL, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hc.Close() })
	return hc
}

func (m *rawMember) send(f proto.Frame) {
	m.t.Helper()
	if err := m.hc.Send(m.ctx, f); err != nil {
		m.t.Fatal(err)
	}
}

func (m *rawMember) await(typ string) proto.Frame {
	m.t.Helper()
	f, err := m.hc.Await(m.ctx, typ)
	if err != nil {
		m.t.Fatalf("waiting for %s: %v", typ, err)
	}
	return f
}

func (m *rawMember) keys(password, room string) {
	m.t.Helper()
	master, err := e2e.MasterWithIterations(password, room, client.FastKeyIterations)
	if err != nil {
		m.t.Fatal(err)
	}
	if m.sig, err = e2e.NewSignaler(master, room); err != nil {
		m.t.Fatal(err)
	}
}

// open opens a sealed blob of kind from the other role into v.
func (m *rawMember) open(kind string, from e2e.Role, blob string, v any) {
	m.t.Helper()
	pt, err := m.sig.Open(kind, from, blob)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := json.Unmarshal(pt, v); err != nil {
		m.t.Fatal(err)
	}
}

// waitNotice waits for the warning about a version-1 peer and fails if the
// member connected or its session ended first.
func waitNotice(t *testing.T, m interface {
	WaitUntil(client.EventKind) ([]client.Event, client.Event)
}) {
	t.Helper()
	for {
		skipped, ev := m.WaitUntil(client.EventWarning)
		for _, e := range skipped {
			if e.Kind == client.EventConnected || e.Kind == client.EventPeerLeft {
				t.Fatalf("event %d (%q) before the notice about a version-1 peer", e.Kind, e.Text)
			}
		}
		if ev.Text == client.NoticeOldPeer {
			return
		}
	}
}

// TestVersion1GuestTold: a host whose guest answers without a version
// tells its user, does not use the answer, and keeps the room: when the
// guest comes back (peer-back) it offers again.
func TestVersion1GuestTold(t *testing.T) {
	st := startStack(t, nil)
	const password = "hunter2"
	h := startMember(t, client.Config{Hub: st.hubURL, Password: password})
	code := h.WaitFor(client.EventRoom).Text

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g := &rawMember{t: t, ctx: ctx, hc: dialRaw(t, ctx, st.hubURL)}
	g.keys(password, code)
	g.send(proto.Frame{Type: proto.TypeJoin, Room: code, Version: 1})
	joined := g.await(proto.TypeJoined)
	var offer struct {
		Nonce   []byte `json:"nonce"`
		Version *int   `json:"version"`
	}
	g.open("offer", e2e.Host, g.await(proto.TypeOffer).Data, &offer)
	if offer.Version == nil || *offer.Version != proto.ProtocolVersion {
		t.Errorf("the offer's version is %v, want %d", offer.Version, proto.ProtocolVersion)
	}
	// What a version-1 guest answers: no version member.
	answer, _ := json.Marshal(map[string]any{
		"sdp":         "v=0\r\na=fingerprint:sha-256 0A:1B\r\n",
		"nonce":       e2e.NewNonce(),
		"offer_nonce": offer.Nonce,
	})
	g.send(proto.Frame{Type: proto.TypeAnswer, Data: g.sig.Seal("answer", e2e.Guest, answer)})
	waitNotice(t, h)

	// Nothing ended: the guest comes back, and the host offers again.
	_ = g.hc.Close()
	g.hc = dialRaw(t, ctx, st.hubURL)
	g.send(proto.Frame{Type: proto.TypeResume, Token: joined.Token, Version: 1})
	g.await(proto.TypeResumed)
	var again struct {
		Nonce []byte `json:"nonce"`
	}
	g.open("offer", e2e.Host, g.await(proto.TypeOffer).Data, &again)
	if string(again.Nonce) == string(offer.Nonce) {
		t.Error("the offer after peer-back is the old one")
	}
	if h.Client.Status().Room != code {
		t.Errorf("the host's room is %q, want %q", h.Client.Status().Room, code)
	}
}

// TestVersion1HostTold: a guest that gets an offer without a version tells
// its user and does not answer it; the next offer, from an updated host, is
// the one it answers.
func TestVersion1HostTold(t *testing.T) {
	st := startStack(t, nil)
	const password = "hunter2"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := &rawMember{t: t, ctx: ctx, hc: dialRaw(t, ctx, st.hubURL)}
	h.send(proto.Frame{Type: proto.TypeCreate, Version: 1})
	code := h.await(proto.TypeCreated).Room
	h.keys(password, code)

	// A real SDP offer, with a fingerprint, for the guest to answer.
	pc, err := rtc.NewAPI(rtc.Options{LoopbackOnly: true}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.CreateDataChannel(proto.ControlLabel, nil); err != nil {
		t.Fatal(err)
	}
	sdp, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	offer := func(version int) []byte {
		nonce := e2e.NewNonce()
		m := map[string]any{"sdp": sdp.SDP, "nonce": nonce}
		if version != 0 {
			m["version"] = version
		}
		b, _ := json.Marshal(m)
		h.send(proto.Frame{Type: proto.TypeOffer, Data: h.sig.Seal("offer", e2e.Host, b)})
		return nonce
	}
	offer(0) // a version-1 host's offer, waiting in the mailbox

	g := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: password})
	waitNotice(t, g)
	// A later version is spoken as 2.
	want := offer(3)
	var answer struct {
		OfferNonce []byte `json:"offer_nonce"`
		Version    int    `json:"version"`
	}
	h.open("answer", e2e.Guest, h.await(proto.TypeAnswer).Data, &answer)
	if string(answer.OfferNonce) != string(want) {
		t.Error("the guest answered the offer without a version")
	}
	if answer.Version != proto.ProtocolVersion {
		t.Errorf("the answer's version is %d, want %d", answer.Version, proto.ProtocolVersion)
	}
}
