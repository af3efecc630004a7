package e2e

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/client/cpace"
)

// exchange runs one PAKE between a host and a guest with their passwords
// and returns both sides' outcomes.
func exchange(t *testing.T, hostPass, guestPass, room string) (host, guest *Epoch, hostErr error) {
	t.Helper()
	h, share, err := StartHost(hostPass, room)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodePAKE(share)
	if err != nil || m.Kind != PAKEShare {
		t.Fatalf("share %q: %v", share, err)
	}
	guest, reply, err := Respond(guestPass, room, m)
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodePAKE(reply)
	if err != nil || r.Kind != PAKEReply {
		t.Fatalf("reply %q: %v", reply, err)
	}
	host, hostErr = h.Finish(r)
	return host, guest, hostErr
}

func TestPAKEAgrees(t *testing.T) {
	t.Parallel()
	host, guest, err := exchange(t, "pw", "pw", tvRoom)
	if err != nil {
		t.Fatalf("the host refuses a matching reply: %v", err)
	}
	if !bytes.Equal(host.Master, guest.Master) || !bytes.Equal(host.SID, guest.SID) {
		t.Fatal("the two sides' epochs differ")
	}
	// The epoch works: an offer sealed by the host opens at the guest.
	hs, _ := NewSignaler(host, tvRoom)
	gs, _ := NewSignaler(guest, tvRoom)
	if pt, err := gs.Open("offer", Host, hs.Seal("offer", Host, []byte("sdp"))); err != nil || string(pt) != "sdp" {
		t.Fatalf("sealed offer: %q %v", pt, err)
	}
	// Every exchange gives a fresh epoch, even with the same password.
	again, _, err := exchange(t, "pw", "pw", tvRoom)
	if err != nil || bytes.Equal(again.Master, host.Master) || bytes.Equal(again.SID, host.SID) {
		t.Fatalf("a second exchange gave the same epoch (%v)", err)
	}
}

func TestPAKEMismatch(t *testing.T) {
	t.Parallel()
	for name, c := range map[string][3]string{
		"password":       {"right", "wrong", tvRoom},
		"one more space": {"pw", "pw ", tvRoom},
		"case":           {"Password", "password", tvRoom},
	} {
		if _, _, err := exchange(t, c[0], c[1], c[2]); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: the host accepts the reply: %v", name, err)
		}
	}
	// The room code is bound (CI): the same password in another room.
	h, share, _ := StartHost("pw", tvRoom)
	m, _ := DecodePAKE(share)
	_, reply, _ := Respond("pw", "222-222-222-222-222-222", m)
	r, _ := DecodePAKE(reply)
	if _, err := h.Finish(r); !errors.Is(err, ErrMismatch) {
		t.Errorf("another room's reply accepted: %v", err)
	}
}

func TestPAKEHostFinishRules(t *testing.T) {
	t.Parallel()
	h, share, _ := StartHost("pw", tvRoom)
	m, _ := DecodePAKE(share)
	_, reply, _ := Respond("pw", tvRoom, m)
	r, _ := DecodePAKE(reply)

	// A reply to another exchange, or of another kind, is not this one's
	// and does not use the exchange up.
	other := r
	other.SID = bytes.Repeat([]byte{1}, SIDSize)
	if _, err := h.Finish(other); !errors.Is(err, ErrMalformed) {
		t.Errorf("reply to another sid: %v", err)
	}
	// A modified confirmation is a mismatch, and uses the exchange up:
	// the right reply afterwards is refused too (one guess per exchange).
	bad := r
	bad.Confirm = bytes.Clone(r.Confirm)
	bad.Confirm[0] ^= 1
	if _, err := h.Finish(bad); !errors.Is(err, ErrMismatch) {
		t.Fatalf("bad confirmation: %v", err)
	}
	if _, err := h.Finish(r); err == nil {
		t.Error("an exchange finished twice")
	}

	// An invalid share (the identity) is a mismatch on either side.
	h2, share2, _ := StartHost("pw", tvRoom)
	m2, _ := DecodePAKE(share2)
	ident := PAKEMessage{Kind: PAKEReply, SID: m2.SID, Share: make([]byte, cpace.ShareSize), Confirm: make([]byte, ConfirmSize)}
	if _, err := h2.Finish(ident); !errors.Is(err, ErrMismatch) || !errors.Is(err, cpace.ErrInvalidShare) {
		t.Errorf("identity share at the host: %v", err)
	}
	m2.Share = make([]byte, cpace.ShareSize)
	if _, _, err := Respond("pw", tvRoom, m2); !errors.Is(err, ErrMismatch) {
		t.Errorf("identity share at the guest: %v", err)
	}
	if _, _, err := StartHost("", tvRoom); err == nil {
		t.Error("empty password accepted")
	}
}

func TestDecodePAKE(t *testing.T) {
	t.Parallel()
	sid := bytes.Repeat([]byte{7}, SIDSize)
	share := bytes.Repeat([]byte{9}, cpace.ShareSize)
	good := []PAKEMessage{
		{Kind: PAKEShare, SID: sid, Share: share},
		{Kind: PAKEReply, SID: sid, Share: share, Confirm: bytes.Repeat([]byte{3}, ConfirmSize)},
		{Kind: PAKEFailed, SID: sid},
		{Kind: PAKENeed, SID: sid},
	}
	for _, m := range good {
		s := m.Encode()
		if !IsPAKE(s) {
			t.Errorf("%q is not recognised as a PAKE message", s)
		}
		got, err := DecodePAKE(s)
		if err != nil || got.Encode() != s {
			t.Errorf("kind %d: %v", m.Kind, err)
		}
	}
	enc := func(b []byte) string { return "c3." + base64.RawURLEncoding.EncodeToString(b) }
	for name, s := range map[string]string{
		"empty":              "",
		"sealed blob":        "s3.AAAA",
		"old blob":           "v1.AAAA",
		"padding":            good[2].Encode() + "=",
		"not base64url":      "c3.!!!!",
		"no sid":             enc([]byte{1}),
		"short share":        enc(append(append([]byte{1}, sid...), share[:31]...)),
		"long share":         enc(append(append([]byte{1}, sid...), append(share, 0)...)),
		"reply without conf": enc(append(append([]byte{2}, sid...), share...)),
		"failed with body":   enc(append(append([]byte{3}, sid...), 0)),
		"unknown kind":       enc(append([]byte{5}, sid...)),
		"kind 0":             enc(append([]byte{0}, sid...)),
		"non-canonical tail": strings.TrimSuffix(good[2].Encode(), "k") + "l",
	} {
		if _, err := DecodePAKE(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%q): %v", name, s, err)
		}
	}
	if !AnyEpoch(make([]byte, SIDSize)) || AnyEpoch(sid) {
		t.Error("AnyEpoch")
	}
	if m, _ := DecodePAKE(NeedMessage(nil)); !AnyEpoch(m.SID) {
		t.Error("NeedMessage(nil) does not name any epoch")
	}
}

func TestBlobOutcomes(t *testing.T) {
	t.Parallel()
	ep := fastEpoch(t, "pw")
	s, _ := NewSignaler(ep, tvRoom)
	blob := s.Seal("answer", Guest, []byte("x"))
	if sid, err := BlobSID(blob); err != nil || !bytes.Equal(sid, tvSID) {
		t.Fatalf("BlobSID: %x %v", sid, err)
	}
	other, _ := NewSignaler(&Epoch{SID: bytes.Repeat([]byte{1}, SIDSize), Master: ep.Master}, tvRoom)
	if _, err := other.Open("answer", Guest, blob); !errors.Is(err, ErrOtherEpoch) {
		t.Errorf("another epoch: %v", err)
	}
	wrong, _ := NewSignaler(&Epoch{SID: tvSID, Master: fastMaster(t, "other")}, tvRoom)
	if _, err := wrong.Open("answer", Guest, blob); !errors.Is(err, ErrMismatch) {
		t.Errorf("same sid, other key: %v", err)
	}
	// A version-2 blob ("v1." + nonce ‖ ciphertext) is told apart.
	if _, err := s.Open("answer", Guest, "v1.AAECAwQFBgcICQoLntoSlGuriVkCIC0kaGv-32VYANQ6A4zAtf8miEo"); !errors.Is(err, ErrOldPeer) {
		t.Errorf("old blob: %v", err)
	}
	if _, err := BlobSID("v1.AAAA"); !errors.Is(err, ErrOldPeer) {
		t.Errorf("BlobSID of an old blob: %v", err)
	}
	for _, bad := range []string{"", "s3.", "s3." + strings.Repeat("A", 58), "c3.AAAA", blob + "="} {
		if _, err := s.Open("answer", Guest, bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := NewSignaler(&Epoch{SID: []byte{1}, Master: ep.Master}, tvRoom); err == nil {
		t.Error("an epoch with a short sid accepted")
	}
}

func FuzzDecodePAKE(f *testing.F) {
	h, share, _ := StartHost("pw", tvRoom)
	m, _ := DecodePAKE(share)
	_, reply, _ := Respond("pw", tvRoom, m)
	for _, s := range []string{share, reply, FailedMessage(h.SID), NeedMessage(nil), "c3.", "c3.AQ", "s3.AA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := DecodePAKE(s)
		if err != nil {
			return
		}
		if m.Encode() != s {
			t.Fatalf("%q decodes and re-encodes as %q", s, m.Encode())
		}
		// Whatever decodes is safe to hand to the exchange: no panic, and
		// a reply that is not the real one is refused.
		if m.Kind == PAKEShare {
			if _, _, err := Respond("pw", tvRoom, m); err != nil && !errors.Is(err, ErrMismatch) {
				t.Fatalf("Respond: %v", err)
			}
		}
		if m.Kind == PAKEReply && s != reply {
			h, _, _ := StartHost("pw", tvRoom)
			m.SID = h.SID
			if _, err := h.Finish(m); err == nil {
				t.Fatal("a forged reply was accepted")
			}
		}
	})
}
