package cpace

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tryst-chat/tryst/client/internal/ristretto255"
)

// side is one party's inputs.
type side struct {
	prs, ci, sid, ad string
}

// exchange runs Start on both sides and Finish on both with each other's
// messages, roles a and b, and returns both keys.
func exchange(t *testing.T, a, b side, roleA, roleB Role) (iskA, iskB []byte) {
	t.Helper()
	stA, shareA, err := Start([]byte(a.prs), []byte(a.ci), []byte(a.sid), []byte(a.ad), nil)
	if err != nil {
		t.Fatal(err)
	}
	stB, shareB, err := Start([]byte(b.prs), []byte(b.ci), []byte(b.sid), []byte(b.ad), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(shareA) != ShareSize || len(shareB) != ShareSize {
		t.Fatalf("share sizes %d, %d; want %d", len(shareA), len(shareB), ShareSize)
	}
	if iskA, err = stA.Finish(shareB, []byte(b.ad), roleA); err != nil {
		t.Fatal(err)
	}
	if iskB, err = stB.Finish(shareA, []byte(a.ad), roleB); err != nil {
		t.Fatal(err)
	}
	if len(iskA) != ISKSize || len(iskB) != ISKSize {
		t.Fatalf("ISK sizes %d, %d; want %d", len(iskA), len(iskB), ISKSize)
	}
	return iskA, iskB
}

var settings = []struct {
	name         string
	roleA, roleB Role
}{
	{"initiator-responder", Initiator, Responder},
	{"symmetric", Symmetric, Symmetric},
}

func TestSameInputsAgree(t *testing.T) {
	a := side{prs: "correct horse", ci: "A|B", sid: "0123456789abcdef", ad: "ADa"}
	b := side{prs: "correct horse", ci: "A|B", sid: "0123456789abcdef", ad: "ADb"}
	for _, s := range settings {
		iskA, iskB := exchange(t, a, b, s.roleA, s.roleB)
		if !bytes.Equal(iskA, iskB) {
			t.Errorf("%s: the two sides' keys differ", s.name)
		}
		// Fresh scalars: a second run gives a new key.
		again, _ := exchange(t, a, b, s.roleA, s.roleB)
		if bytes.Equal(iskA, again) {
			t.Errorf("%s: two exchanges gave the same key", s.name)
		}
	}
	// Empty optional inputs are allowed.
	empty := side{prs: "pw"}
	iskA, iskB := exchange(t, empty, empty, Initiator, Responder)
	if !bytes.Equal(iskA, iskB) {
		t.Error("empty CI, sid and AD: the two sides' keys differ")
	}
}

// A mismatch in any input the two sides must share gives different keys,
// and no error: CPace does not tell a wrong password from a right one.
func TestMismatchedInputsDisagree(t *testing.T) {
	a := side{prs: "correct horse", ci: "A|B", sid: "0123456789abcdef", ad: "ADa"}
	b := side{prs: "correct horse", ci: "A|B", sid: "0123456789abcdef", ad: "ADb"}
	for _, tc := range []struct {
		name string
		edit func(*side)
	}{
		{"PRS", func(s *side) { s.prs = "correct horsf" }},
		{"CI", func(s *side) { s.ci = "B|A" }},
		{"sid", func(s *side) { s.sid = "0123456789abcdeF" }},
	} {
		for _, s := range settings {
			b2 := b
			tc.edit(&b2)
			iskA, iskB := exchange(t, a, b2, s.roleA, s.roleB)
			if bytes.Equal(iskA, iskB) {
				t.Errorf("%s, %s differs: the keys agree", s.name, tc.name)
			}
		}
	}

	// AD as the peer received it differs from what was sent (tampered in
	// transit): B's view of ADa is not A's.
	for _, s := range settings {
		stA, shareA, err := Start([]byte(a.prs), []byte(a.ci), []byte(a.sid), []byte(a.ad), nil)
		if err != nil {
			t.Fatal(err)
		}
		stB, shareB, err := Start([]byte(b.prs), []byte(b.ci), []byte(b.sid), []byte(b.ad), nil)
		if err != nil {
			t.Fatal(err)
		}
		iskA, err := stA.Finish(shareB, []byte(b.ad), s.roleA)
		if err != nil {
			t.Fatal(err)
		}
		iskB, err := stB.Finish(shareA, []byte("ADx"), s.roleB)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(iskA, iskB) {
			t.Errorf("%s, ADa tampered: the keys agree", s.name)
		}
	}

	// Both sides claiming the same role order the transcript differently.
	iskA, iskB := exchange(t, a, b, Initiator, Initiator)
	if bytes.Equal(iskA, iskB) {
		t.Error("both initiators: the keys agree")
	}
}

// A share from another session (same password, another sid) does not let
// its sender, or anyone replaying it, share a key with this one.
func TestShareFromAnotherSession(t *testing.T) {
	const prs, ci = "correct horse", "A|B"
	stA1, _, err := Start([]byte(prs), []byte(ci), []byte("session-1-sid"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stB1, shareB1, err := Start([]byte(prs), []byte(ci), []byte("session-1-sid"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stA2, shareA2, err := Start([]byte(prs), []byte(ci), []byte("session-2-sid"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stB2, shareB2, err := Start([]byte(prs), []byte(ci), []byte("session-2-sid"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A1 is given session 2's share instead of B1's.
	iskA1, err := stA1.Finish(shareB2, nil, Initiator)
	if err != nil {
		t.Fatal(err)
	}
	// B2 answers A2 as usual.
	iskB2, err := stB2.Finish(shareA2, nil, Responder)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(iskA1, iskB2) {
		t.Error("A1 fed B2's share agrees with B2")
	}
	if _, err := stA2.Finish(shareB1, nil, Initiator); err != nil {
		t.Fatal(err)
	}
	iskB1, err := stB1.Finish(shareA2, nil, Responder)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(iskA1, iskB1) {
		t.Error("A1 and B1 agree though neither saw the other's share")
	}
}

// badShares are peer shares Finish must reject (draft section 9: weak or
// invalid points introduced into a protocol run abort it).
var badShares = map[string]string{
	// draft-irtf-cfrg-cpace-21 appendix B.3.11.
	"Y_i1, not an encoding": "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c",
	"Y_i2, the identity":    "0000000000000000000000000000000000000000000000000000000000000000",
	// RFC 9496 appendix A.2, one or two of each kind of bad encoding.
	"non-canonical field encoding 1": "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"non-canonical field encoding 2": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"non-canonical field encoding 3": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"negative field element 1":       "0100000000000000000000000000000000000000000000000000000000000000",
	"negative field element 2":       "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"non-square x^2":                 "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
	"negative xy":                    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
	"s = -1, y = 0":                  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	// Wrong lengths.
	"empty":                 "",
	"31 bytes":              "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b91",
	"33 bytes (Ya and one)": "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b915700",
}

func TestFinishRejectsInvalidShares(t *testing.T) {
	for name, share := range badShares {
		for _, role := range []Role{Initiator, Responder, Symmetric} {
			st, _, err := Start([]byte("pw"), nil, []byte("sid"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			y := st.y
			isk, err := st.Finish(unhex(t, share), nil, role)
			if !errors.Is(err, ErrInvalidShare) || isk != nil {
				t.Errorf("%s, role %d: Finish = %x, %v; want ErrInvalidShare", name, role, isk, err)
			}
			// The exchange is over: the scalar is gone and zeroed.
			if st.y != nil || y.Equal(ristretto255.NewScalar()) != 1 {
				t.Errorf("%s: the scalar survived a failed Finish", name)
			}
		}
	}
}

func TestFinishIsSingleUse(t *testing.T) {
	st, _, err := Start([]byte("pw"), nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, peer, err := Start([]byte("pw"), nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An unknown role is refused before the state is spent.
	if _, err := st.Finish(peer, nil, Role(0)); err == nil || errors.Is(err, ErrInvalidShare) {
		t.Fatalf("role 0: %v", err)
	}
	y := st.y
	if _, err := st.Finish(peer, nil, Symmetric); err != nil {
		t.Fatal(err)
	}
	if y.Equal(ristretto255.NewScalar()) != 1 {
		t.Error("the secret scalar is not zeroed after Finish")
	}
	if _, err := st.Finish(peer, nil, Symmetric); err == nil {
		t.Error("a second Finish on one state succeeded")
	}
}

// Start keeps its own copies: the caller may reuse its buffers.
func TestStartCopiesInputs(t *testing.T) {
	sid, ad := []byte("0123456789abcdef"), []byte("ADa")
	stA, shareA, err := Start([]byte("pw"), nil, sid, ad, nil)
	if err != nil {
		t.Fatal(err)
	}
	stB, shareB, err := Start([]byte("pw"), nil, []byte("0123456789abcdef"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sid[0], ad[0] = 'x', 'x'
	shareA[0] ^= 1
	iskA, err := stA.Finish(shareB, nil, Initiator)
	if err != nil {
		t.Fatal(err)
	}
	shareA[0] ^= 1
	iskB, err := stB.Finish(shareA, []byte("ADa"), Responder)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iskA, iskB) {
		t.Error("changing the caller's buffers after Start changed the key")
	}
}

func TestStartRandomSource(t *testing.T) {
	boom := errors.New("boom")
	if _, _, err := Start([]byte("pw"), nil, nil, nil, iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("failing reader: %v", err)
	}
	if _, _, err := Start([]byte("pw"), nil, nil, nil, strings.NewReader("short")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short reader: %v", err)
	}
	// Only the top four bits set: cleared to a zero scalar, refused.
	zero := append(make([]byte, 31), 0xf0)
	if _, _, err := Start([]byte("pw"), nil, nil, nil, bytes.NewReader(zero)); err == nil {
		t.Error("a zero scalar was accepted")
	}
	// The bits above 252 are cleared, as the draft recommends.
	ones := bytes.Repeat([]byte{0xff}, 32)
	y, err := sampleScalar(bytes.NewReader(ones))
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte{0xff}, 31), 0x0f)
	if got := y.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("sampled %x from all ones, want %x", got, want)
	}
}
