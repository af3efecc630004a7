package ristretto255

import (
	"bytes"
	"crypto/rand"
	"testing"

	gtank "github.com/gtank/ristretto255"
)

// The differential tests hold this package to github.com/gtank/ristretto255
// v0.1.2, the implementation package cpace used before it: its own field
// arithmetic and curve code, so an independent check.

// sameDecode decodes in with both and fails unless they agree on whether
// it is valid and, if so, on its encoding. It returns our element or nil.
func sameDecode(t *testing.T, in []byte) *Element {
	t.Helper()
	var g gtank.Element
	gErr := g.Decode(in)
	e, err := new(Element).SetCanonicalBytes(in)
	switch {
	case (err == nil) != (gErr == nil):
		t.Fatalf("decode %x: ours %v, gtank's %v", in, err, gErr)
	case err != nil:
		return nil
	}
	if got, want := e.Bytes(), g.Encode(nil); !bytes.Equal(got, want) || !bytes.Equal(got, in) {
		t.Fatalf("decode %x: re-encoded as %x here, %x by gtank", in, got, want)
	}
	return e
}

// sameMap derives an element from b with both and fails unless the
// encodings agree.
func sameMap(t *testing.T, b *[64]byte) *Element {
	t.Helper()
	e := new(Element).SetUniformBytes(b)
	if got, want := e.Bytes(), gtank.NewElement().FromUniformBytes(b[:]).Encode(nil); !bytes.Equal(got, want) {
		t.Fatalf("one-way map of %x: %x here, %x by gtank", b[:], got, want)
	}
	return e
}

// sameScalarMult multiplies p (our element, valid) by the scalar s with
// both, if s is canonical (they must agree on that), and fails unless the
// encodings agree.
func sameScalarMult(t *testing.T, s []byte, p *Element) {
	t.Helper()
	if len(s) != 32 {
		// gtank panics; we refuse.
		if _, err := NewScalar().SetCanonicalBytes(s); err == nil {
			t.Fatalf("a %d-byte scalar decoded", len(s))
		}
		return
	}
	var gs gtank.Scalar
	gErr := gs.Decode(s)
	ours, err := NewScalar().SetCanonicalBytes(s)
	switch {
	case (err == nil) != (gErr == nil):
		t.Fatalf("scalar %x: ours %v, gtank's %v", s, err, gErr)
	case err != nil:
		return
	}
	var gp gtank.Element
	if err := gp.Decode(p.Bytes()); err != nil {
		t.Fatal(err)
	}
	got := new(Element).ScalarMult(ours, p).Bytes()
	if want := gtank.NewElement().ScalarMult(&gs, &gp).Encode(nil); !bytes.Equal(got, want) {
		t.Fatalf("%x * %x: %x here, %x by gtank", s, p.Bytes(), got, want)
	}
}

func TestAgainstGtank(t *testing.T) {
	valid := 0
	for range 2000 {
		// Random 32 bytes: about one in eight is a valid encoding.
		var in [32]byte
		rand.Read(in[:])
		if sameDecode(t, in[:]) != nil {
			valid++
		}
		// A valid encoding with one bit flipped.
		var b [64]byte
		rand.Read(b[:])
		p := sameMap(t, &b)
		enc := p.Bytes()
		sameDecode(t, enc)
		var bit [1]byte
		rand.Read(bit[:])
		enc[bit[0]/8] ^= 1 << (bit[0] % 8)
		sameDecode(t, enc)
		// A scalar below 2^252, as CPace samples them, and one of any 32
		// bytes (mostly not canonical).
		var s [32]byte
		rand.Read(s[:])
		sameScalarMult(t, s[:], p)
		s[31] &= 0x0f
		sameScalarMult(t, s[:], p)
	}
	if valid < 100 {
		t.Errorf("only %d of 2000 random strings were valid encodings", valid)
	}
}

// FuzzAgainstGtank: arbitrary encodings, one-way map inputs and scalars give
// the same results here as with gtank/ristretto255.
func FuzzAgainstGtank(f *testing.F) {
	zero64 := make([]byte, 64)
	scalar := make([]byte, 32)
	scalar[0] = 7
	for _, enc := range generatorMultiples {
		f.Add(unhex(f, enc), zero64, scalar)
	}
	for _, g := range invalidEncodings {
		for _, enc := range g.enc {
			f.Add(unhex(f, enc), zero64, scalar)
		}
	}
	for _, v := range oneWayMap {
		f.Add(unhex(f, v.out), unhex(f, v.in), unhex(f, "ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"))
	}
	f.Fuzz(func(t *testing.T, enc, uniform, s []byte) {
		sameDecode(t, enc)
		var b [64]byte
		copy(b[:], uniform)
		p := sameMap(t, &b)
		sameScalarMult(t, s, p)
		if len(s) == 32 { // and below 2^252
			s[31] &= 0x0f
			sameScalarMult(t, s, p)
		}
	})
}
