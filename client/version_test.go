package client_test

import (
	"context"
	"encoding/base64"
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

// A peer that speaks an older protocol version (docs/PROTOCOL.md,
// "Versions"): its sealed blobs start with "v1.". It is not used, the user
// is told why, and nothing ends: the room waits for the other side to be
// updated.

// rawMember is a member of a room played by the test over the hub
// protocol, running the PAKE itself.
type rawMember struct {
	t   *testing.T
	ctx context.Context
	hc  *hubconn.Conn
	sig *e2e.Signaler
}

// newRawHost opens a room as a host played by the test; it returns the
// member and the room code.
// rawHostOnStack starts a stack and a raw host on it with a room, under a
// context that ends after timeout or with the test.
func rawHostOnStack(t *testing.T, timeout time.Duration) (*stack, *rawMember, string) {
	t.Helper()
	st := startStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	h, code := newRawHost(t, ctx, st.hubURL)
	return st, h, code
}

func newRawHost(t *testing.T, ctx context.Context, hubURL string) (*rawMember, string) {
	t.Helper()
	h := &rawMember{t: t, ctx: ctx, hc: dialRaw(t, ctx, hubURL)}
	h.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	return h, h.await(proto.TypeCreated).Room
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

// guestPAKE plays the guest's side of an exchange: it waits for the
// host's share, replies, and takes the epoch (confirmed once the host's
// sealed offer opens).
func (m *rawMember) guestPAKE(password, room string) {
	m.t.Helper()
	share, err := e2e.DecodePAKE(m.await(proto.TypeOffer).Data)
	if err != nil || share.Kind != e2e.PAKEShare {
		m.t.Fatalf("the host's first offer is not a PAKE share: %v", err)
	}
	ep, reply, err := e2e.Respond(password, room, share)
	if err != nil {
		m.t.Fatal(err)
	}
	if m.sig, err = e2e.NewSignaler(ep, room); err != nil {
		m.t.Fatal(err)
	}
	m.send(proto.Frame{Type: proto.TypeAnswer, Data: reply})
}

// hostPAKE plays the host's side: share, then the guest's reply.
func (m *rawMember) hostPAKE(password, room string) {
	m.t.Helper()
	exch, share, err := e2e.StartHost(password, room)
	if err != nil {
		m.t.Fatal(err)
	}
	m.send(proto.Frame{Type: proto.TypeOffer, Data: share})
	reply, err := e2e.DecodePAKE(m.await(proto.TypeAnswer).Data)
	if err != nil {
		m.t.Fatalf("the guest's answer to the share is not a PAKE message: %v", err)
	}
	ep, err := exch.Finish(reply)
	if err != nil {
		m.t.Fatalf("the guest's reply: %v", err)
	}
	if m.sig, err = e2e.NewSignaler(ep, room); err != nil {
		m.t.Fatal(err)
	}
}

// offerSDP is a real SDP offer, with a fingerprint, for a guest to answer.
func offerSDP(t *testing.T) string {
	t.Helper()
	pc, err := rtc.NewAPI(rtc.Options{LoopbackOnly: true}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.CreateDataChannel(proto.ControlLabel, nil); err != nil {
		t.Fatal(err)
	}
	sdp, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return sdp.SDP
}

// oldBlob is what a version-1 or -2 client seals: "v1." and its
// ciphertext, which nobody here can open.
func oldBlob() string {
	return "v1." + base64.RawURLEncoding.EncodeToString(e2e.NewNonce())
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

// waitNotice waits for the warning about an older peer and fails if the
// member connected or its session ended first.
func waitNotice(t *testing.T, m interface {
	WaitUntil(client.EventKind) ([]client.Event, client.Event)
}) {
	t.Helper()
	for {
		skipped, ev := m.WaitUntil(client.EventWarning)
		for _, e := range skipped {
			if e.Kind == client.EventConnected || e.Kind == client.EventPeerLeft {
				t.Fatalf("event %d (%q) before the notice about an older peer", e.Kind, e.Text)
			}
		}
		if ev.Text == client.NoticeOldPeer {
			return
		}
	}
}

// TestOldGuestTold: a host whose guest answers with an older version's
// blob tells its user, does not use the answer, counts no failure, and
// keeps the room: when the guest comes back (peer-back) it offers again.
func TestOldGuestTold(t *testing.T) {
	st := startStack(t, nil)
	const password = "hunter2"
	h := startMember(t, client.Config{Hub: st.hubURL, Password: password})
	code := h.WaitFor(client.EventRoom).Text

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g := &rawMember{t: t, ctx: ctx, hc: dialRaw(t, ctx, st.hubURL)}
	g.send(proto.Frame{Type: proto.TypeJoin, Room: code, Version: proto.ProtocolVersion})
	joined := g.await(proto.TypeJoined)
	g.guestPAKE(password, code)
	var offer struct {
		Nonce   []byte `json:"nonce"`
		Version *int   `json:"version"`
	}
	g.open("offer", e2e.Host, g.await(proto.TypeOffer).Data, &offer)
	if offer.Version == nil || *offer.Version != proto.ProtocolVersion {
		t.Errorf("the offer's version is %v, want %d", offer.Version, proto.ProtocolVersion)
	}
	g.send(proto.Frame{Type: proto.TypeAnswer, Data: oldBlob()})
	waitNotice(t, h)

	// Nothing ended: the guest comes back, and the host offers again,
	// under the same epoch (no new exchange, no failure).
	_ = g.hc.Close()
	g.hc = dialRaw(t, ctx, st.hubURL)
	g.send(proto.Frame{Type: proto.TypeResume, Token: joined.Token, Version: proto.ProtocolVersion})
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

// TestOldHostTold: a guest that gets an older version's offer tells its
// user and does not answer it; the exchange of an updated host that
// follows is the one it takes up, and its answer says version 3.
func TestOldHostTold(t *testing.T) {
	st := startStack(t, nil)
	const password = "hunter2"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, code := newRawHost(t, ctx, st.hubURL)
	h.send(proto.Frame{Type: proto.TypeOffer, Data: oldBlob()}) // waits in the mailbox

	g := startMember(t, client.Config{Hub: st.hubURL, Room: code, Password: password})
	waitNotice(t, g)
	h.hostPAKE(password, code)

	nonce := e2e.NewNonce()
	// A later version is spoken as 3.
	b, _ := json.Marshal(map[string]any{"sdp": offerSDP(t), "nonce": nonce, "version": proto.ProtocolVersion + 1})
	h.send(proto.Frame{Type: proto.TypeOffer, Data: h.sig.Seal("offer", e2e.Host, b)})
	var answer struct {
		OfferNonce []byte `json:"offer_nonce"`
		Version    int    `json:"version"`
	}
	h.open("answer", e2e.Guest, h.await(proto.TypeAnswer).Data, &answer)
	if string(answer.OfferNonce) != string(nonce) {
		t.Error("the guest did not answer the updated host's offer")
	}
	if answer.Version != proto.ProtocolVersion {
		t.Errorf("the answer's version is %d, want %d", answer.Version, proto.ProtocolVersion)
	}
}
