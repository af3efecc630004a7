package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// Inputs shared by the tests below; the published test vectors are read
// from docs/PROTOCOL.md by spec_test.go.
const (
	tvRoom    = "K7Q-MX2-P9R-TVW-4HN-C8D"
	tvFPHost  = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9"
	tvFPGuest = "sha-256 F9:E8:D7:C6:B5:A4:93:82:71:60:5F:4E:3D:2C:1B:0A:F9:E8:D7:C6:B5:A4:93:82:71:60:5F:4E:3D:2C:1B:0A"
)

func tvNonce(b byte) []byte { return bytes.Repeat([]byte{b}, NonceSize) }

// fastMaster stands for the master secret of an epoch whose exchange used
// password: tests of what derives from the master need no exchange.
func fastMaster(t testing.TB, password string) []byte {
	t.Helper()
	m := sha256.Sum256([]byte("test master|" + password))
	return m[:]
}

// tvSID is the sid of the epochs of these tests.
var tvSID = bytes.Repeat([]byte{0x5a}, SIDSize)

func fastEpoch(t testing.TB, password string) *Epoch {
	t.Helper()
	return &Epoch{SID: tvSID, Master: fastMaster(t, password)}
}

func pair(t testing.TB, hostPass, guestPass string) (*Session, *Session) {
	t.Helper()
	h, err := NewSession(fastMaster(t, hostPass), Host, tvNonce(1), tvNonce(2), tvFPHost, tvFPGuest)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewSession(fastMaster(t, guestPass), Guest, tvNonce(1), tvNonce(2), tvFPHost, tvFPGuest)
	if err != nil {
		t.Fatal(err)
	}
	return h, g
}

func TestSessionRoundTripAndConfirmation(t *testing.T) {
	t.Parallel()
	h, g := pair(t, "pw", "pw")
	if err := g.CheckConfirmation(h.Confirmation(Host)); err != nil {
		t.Fatalf("guest rejects host confirmation: %v", err)
	}
	if err := h.CheckConfirmation(g.Confirmation(Guest)); err != nil {
		t.Fatalf("host rejects guest confirmation: %v", err)
	}
	// A side's own confirmation reflected back is refused.
	if err := h.CheckConfirmation(h.Confirmation(Host)); !errors.Is(err, ErrMismatch) {
		t.Error("reflected confirmation accepted")
	}
	for i := range 3 {
		typ, pt, err := g.Channel(0).Open(h.Channel(0).Seal(byte(i+2), []byte("to guest")))
		if err != nil || typ != byte(i+2) || string(pt) != "to guest" {
			t.Fatalf("h->g %d: %v %q", i, err, pt)
		}
		if _, pt, err := h.Channel(0).Open(g.Channel(0).Seal(3, []byte("to host"))); err != nil || string(pt) != "to host" {
			t.Fatalf("g->h %d: %v", i, err)
		}
	}
}

func TestWrongPasswordIsMismatch(t *testing.T) {
	t.Parallel()
	h, g := pair(t, "right", "wrong")
	if err := g.CheckConfirmation(h.Confirmation(Host)); !errors.Is(err, ErrMismatch) {
		t.Errorf("confirmation: %v", err)
	}
	if _, _, err := g.Channel(0).Open(h.Channel(0).Seal(2, []byte("x"))); !errors.Is(err, ErrMismatch) {
		t.Errorf("open: %v", err)
	}
	s1, _ := NewSignaler(fastEpoch(t, "right"), tvRoom)
	s2, _ := NewSignaler(fastEpoch(t, "wrong"), tvRoom)
	if _, err := s2.Open("offer", Host, s1.Seal("offer", Host, []byte("sdp"))); !errors.Is(err, ErrMismatch) {
		t.Errorf("signal open: %v", err)
	}
}

func TestTamperReplayReorderRejected(t *testing.T) {
	t.Parallel()
	h, g := pair(t, "pw", "pw")
	f0 := h.Channel(0).Seal(2, []byte("zero"))
	f1 := h.Channel(0).Seal(2, []byte("one"))
	f2 := h.Channel(0).Seal(2, []byte("two"))

	// Reordered: frame 1 before frame 0.
	if _, _, err := g.Channel(0).Open(f1); !errors.Is(err, ErrReplay) {
		t.Errorf("reordered frame: %v", err)
	}
	// Modified: each byte of frame 0 flipped in turn (header, body, tag).
	for i := range f0 {
		bad := bytes.Clone(f0)
		bad[i] ^= 0x40
		if _, _, err := g.Channel(0).Open(bad); err == nil {
			t.Fatalf("frame with byte %d modified accepted", i)
		}
	}
	// The untouched frame still opens: failures did not advance the state.
	if _, pt, err := g.Channel(0).Open(f0); err != nil || string(pt) != "zero" {
		t.Fatalf("frame 0 after rejections: %v", err)
	}
	// Replayed.
	if _, _, err := g.Channel(0).Open(f0); !errors.Is(err, ErrReplay) {
		t.Errorf("replayed frame: %v", err)
	}
	// A frame with its type changed fails (the type is authenticated).
	retyped := bytes.Clone(f1)
	retyped[1] = 9
	if _, _, err := g.Channel(0).Open(retyped); !errors.Is(err, ErrMismatch) {
		t.Errorf("retyped frame: %v", err)
	}
	g.Channel(0).Open(f1)
	g.Channel(0).Open(f2)
	// A frame reflected back to its sender does not open.
	if _, _, err := h.Channel(0).Open(h.Channel(0).Seal(2, nil)); err == nil {
		t.Error("reflected frame accepted")
	}
}

// TestChannelsAreSeparate: each channel has its own sequences, and a frame
// of one channel does not open on another, though both start at sequence 0
// under the same direction key (the channel number is in the nonce).
func TestChannelsAreSeparate(t *testing.T) {
	t.Parallel()
	h, g := pair(t, "pw", "pw")
	c0 := h.Channel(0).Seal(2, []byte("control"))
	b0 := h.Channel(1).Seal(8, []byte("bulk"))
	if bytes.Equal(c0[:10], b0[:10]) || !bytes.Equal(c0[2:10], b0[2:10]) {
		t.Fatalf("headers %x and %x: both should carry sequence 0", c0[:10], b0[:10])
	}
	if _, _, err := g.Channel(1).Open(c0); !errors.Is(err, ErrMismatch) {
		t.Errorf("a control frame opened on bulk: %v", err)
	}
	if _, _, err := g.Channel(0).Open(b0); !errors.Is(err, ErrMismatch) {
		t.Errorf("a bulk frame opened on control: %v", err)
	}
	// The failures advanced nothing: both open on their own channel.
	if typ, pt, err := g.Channel(1).Open(b0); err != nil || typ != 8 || string(pt) != "bulk" {
		t.Errorf("bulk frame: %d %q %v", typ, pt, err)
	}
	if typ, pt, err := g.Channel(0).Open(c0); err != nil || typ != 2 || string(pt) != "control" {
		t.Errorf("control frame: %d %q %v", typ, pt, err)
	}
	// Sequences go on per channel, and Channel returns the same channel.
	b1 := h.Channel(1).Seal(10, nil)
	if seq := b1[2:10]; !bytes.Equal(seq, []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("second bulk frame has sequence %x", seq)
	}
	if _, _, err := g.Channel(1).Open(b1); err != nil {
		t.Errorf("second bulk frame: %v", err)
	}
	if c1 := h.Channel(0).Seal(2, nil); !bytes.Equal(c1[2:10], []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("second control frame has sequence %x", c1[2:10])
	}
}

func TestFreshKeysPerConnection(t *testing.T) {
	t.Parallel()
	m := fastMaster(t, "pw")
	a, _ := NewSession(m, Host, NewNonce(), NewNonce(), tvFPHost, tvFPGuest)
	b, _ := NewSession(m, Host, NewNonce(), NewNonce(), tvFPHost, tvFPGuest)
	if bytes.Equal(a.Channel(0).Seal(2, []byte("same")), b.Channel(0).Seal(2, []byte("same"))) {
		t.Fatal("two connections produced the same ciphertext for the same first frame")
	}
	// Different DTLS fingerprints (a hub in the middle) give different keys.
	c, _ := NewSession(m, Guest, tvNonce(1), tvNonce(2), tvFPHost, tvFPGuest)
	mitm, _ := NewSession(m, Host, tvNonce(1), tvNonce(2), "sha-256 00:11", tvFPGuest)
	if err := c.CheckConfirmation(mitm.Confirmation(Host)); !errors.Is(err, ErrMismatch) {
		t.Error("confirmation passed across different fingerprints")
	}
}

func TestSignalBindsKindAndDirection(t *testing.T) {
	t.Parallel()
	m := fastEpoch(t, "pw")
	s, _ := NewSignaler(m, tvRoom)
	other, _ := NewSignaler(m, "222-222-222-222-222-222")
	blob := s.Seal("offer", Host, []byte("sdp"))
	if pt, err := s.Open("offer", Host, blob); err != nil || string(pt) != "sdp" {
		t.Fatalf("open: %v", err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"as answer":  func() ([]byte, error) { return s.Open("answer", Host, blob) },
		"from guest": func() ([]byte, error) { return s.Open("offer", Guest, blob) },
		"other room": func() ([]byte, error) { return other.Open("offer", Host, blob) },
		"no version": func() ([]byte, error) { return s.Open("offer", Host, strings.TrimPrefix(blob, "s3.")) },
		"old prefix": func() ([]byte, error) { return s.Open("offer", Host, "v1."+strings.TrimPrefix(blob, "s3.")) },
		"truncated":  func() ([]byte, error) { return s.Open("offer", Host, blob[:20]) },
		"plain SDP":  func() ([]byte, error) { return s.Open("offer", Host, "v=0\r\no=- 1 1 IN IP4 0.0.0.0") },
	} {
		if _, err := open(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	t.Parallel()
	if got := NormalizeFingerprint(" SHA-256 ab:cd:ef "); got != "sha-256 AB:CD:EF" {
		t.Errorf("got %q", got)
	}
}

func FuzzOpenFrame(f *testing.F) {
	h, _ := pair(f, "pw", "pw")
	f.Add(h.Channel(0).Seal(2, []byte("hello")))
	f.Add([]byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, g := pair(t, "pw", "pw")
		typ, pt, err := g.Channel(0).Open(b)
		if err == nil && (typ != 2 || string(pt) != "hello") {
			t.Fatalf("forged frame accepted: type %d %q", typ, pt)
		}
	})
}

func FuzzOpenSignal(f *testing.F) {
	s, _ := NewSignaler(fastEpoch(f, "pw"), tvRoom)
	good := s.Seal("offer", Host, []byte("sdp"))
	f.Add(good)
	f.Add("s3.")
	f.Add("v1.AAAA")
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, blob string) {
		pt, err := s.Open("offer", Host, blob)
		if err == nil && string(pt) != "sdp" {
			t.Fatalf("forged blob accepted: %q", pt)
		}
	})
}
