// Package ristretto255 is the part of the ristretto255 group (RFC 9496) that
// package cpace needs, built on filippo.io/edwards25519: decoding and
// encoding elements, equality, the element derivation from 64 uniform bytes,
// and multiplication by a canonically encoded scalar.
//
// An Element holds one edwards25519 point, one of several that stand for
// the same element (they differ by a point of order 4 or less); only Equal
// and Bytes may look at it, never the point's own coordinates or encoding.
//
// Everything but decoding runs in constant time: field element selection
// instead of branches. Decoding returns early on an invalid encoding, which
// is public (a peer's share).
package ristretto255

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Constants of RFC 9496 section 4.1 (a = -1), as little-endian field
// element encodings; the tests check them against the RFC's decimal values
// and the relations that define them.
var (
	one            = new(field.Element).One()
	minusOne       = new(field.Element).Negate(one)
	d              = fe("a3785913ca4deb75abd841414d0a700098e879777940c78c73fe6f2bee6c0352") // D, -121665/121666
	sqrtM1         = fe("b0a00e4a271beec478e42fad0618432fa7d7fb3d99004d2b0bdfc14f8024832b") // SQRT_M1
	sqrtADMinusOne = fe("1b2e7b49a0f6977ebd54781b0c8e9daffdd1f531c9fc3c0fac48832bbf316937") // SQRT_AD_MINUS_ONE
	invSqrtAMinusD = fe("ea405d80aafdc899be72415a17162f9d40d801fe917bc216a2fcafcf05896c78") // INVSQRT_A_MINUS_D
	oneMinusDSq    = fe("76c15f94c1097ce20f355ecd38a1812ce4df70beddab9499d7e0b3b2a8729002") // ONE_MINUS_D_SQ
	dMinusOneSq    = fe("204ded44aa5aad3199191eb02c4a9ed2eb4e9b522fd3dc4c41226cf67ab36859") // D_MINUS_ONE_SQ
)

// fe reads a constant of the table above. A typo there would give zero
// (or a wrong value), which the tests of the constants catch.
func fe(h string) *field.Element {
	b, _ := hex.DecodeString(h)
	e, err := new(field.Element).SetBytes(b)
	if err != nil {
		return new(field.Element)
	}
	return e
}

var errInvalidEncoding = errors.New("ristretto255: invalid element encoding")

// Element is an element of the ristretto255 group. The zero value is not an
// element; it may only receive one (SetCanonicalBytes, SetUniformBytes,
// ScalarMult, Zero).
type Element struct {
	p edwards25519.Point
}

// NewIdentityElement returns the identity element.
func NewIdentityElement() *Element {
	return new(Element).Zero()
}

// Zero sets e to the identity element, overwriting all of its coordinates
// (for wiping a secret element), and returns e.
func (e *Element) Zero() *Element {
	e.p.Set(edwards25519.NewIdentityPoint())
	return e
}

// SetCanonicalBytes sets e to the element that in encodes (RFC 9496 section
// 4.3.1) and returns e. It fails for anything but the 32-byte canonical
// encoding of an element, leaving e unchanged. It returns early on invalid
// input: use it for public encodings.
func (e *Element) SetCanonicalBytes(in []byte) (*Element, error) {
	// 1. s, read little-endian, must be 32 bytes and below p. SetBytes
	// ignores the top bit and reduces values from p up, so only the
	// canonical encoding survives the round trip.
	if len(in) != 32 {
		return nil, errInvalidEncoding
	}
	var s field.Element
	if _, err := s.SetBytes(in); err != nil || !bytes.Equal(s.Bytes(), in) {
		return nil, errInvalidEncoding
	}
	// 2. s must be non-negative.
	if s.IsNegative() == 1 {
		return nil, errInvalidEncoding
	}
	// 3. The RFC's steps, each line's comment the pseudocode it computes.
	var ss, u1, u2, u2Sqr, v, tmp, invSqrt, denX, denY, x, y, t field.Element
	// ss = s^2; u1 = 1 - ss; u2 = 1 + ss; u2_sqr = u2^2
	ss.Square(&s)
	u1.Subtract(one, &ss)
	u2.Add(one, &ss)
	u2Sqr.Square(&u2)
	// v = -(D * u1^2) - u2_sqr
	v.Square(&u1).Multiply(d, &v).Negate(&v).Subtract(&v, &u2Sqr)
	// (was_square, invsqrt) = SQRT_RATIO_M1(1, v * u2_sqr), section 4.2
	_, wasSquare := invSqrt.SqrtRatio(one, tmp.Multiply(&v, &u2Sqr))
	// den_x = invsqrt * u2; den_y = invsqrt * den_x * v
	denX.Multiply(&invSqrt, &u2)
	denY.Multiply(&invSqrt, &denX).Multiply(&denY, &v)
	// x = CT_ABS(2 * s * den_x); y = u1 * den_y; t = x * y
	x.Add(&s, &s).Multiply(&x, &denX).Absolute(&x)
	y.Multiply(&u1, &denY)
	t.Multiply(&x, &y)
	// 4. Fail if was_square is false, t is negative, or y = 0.
	var zero field.Element
	if wasSquare&(1^t.IsNegative())&(1^y.Equal(&zero)) != 1 {
		return nil, errInvalidEncoding
	}
	// (x, y, 1, t) is on the curve by construction; edwards25519 checks
	// it again.
	if _, err := e.p.SetExtendedCoordinates(&x, &y, one, &t); err != nil {
		return nil, errInvalidEncoding
	}
	return e, nil
}

// Bytes returns the 32-byte canonical encoding of e (RFC 9496 section 4.3.2).
func (e *Element) Bytes() []byte {
	x0, y0, z0, t0 := e.p.ExtendedCoordinates()
	var u1, u2, tmp, invSqrt, den1, den2, zInv, ix0, iy0, enchanted, x, y, denInv, s field.Element
	// u1 = (z0 + y0) * (z0 - y0); u2 = x0 * y0
	u1.Add(z0, y0).Multiply(&u1, tmp.Subtract(z0, y0))
	u2.Multiply(x0, y0)
	// (_, invsqrt) = SQRT_RATIO_M1(1, u1 * u2^2), always square
	invSqrt.SqrtRatio(one, tmp.Square(&u2).Multiply(&u1, &tmp))
	// den1 = invsqrt * u1; den2 = invsqrt * u2; z_inv = den1 * den2 * t0
	den1.Multiply(&invSqrt, &u1)
	den2.Multiply(&invSqrt, &u2)
	zInv.Multiply(&den1, &den2).Multiply(&zInv, t0)
	// ix0 = x0 * SQRT_M1; iy0 = y0 * SQRT_M1
	ix0.Multiply(x0, sqrtM1)
	iy0.Multiply(y0, sqrtM1)
	// enchanted_denominator = den1 * INVSQRT_A_MINUS_D
	enchanted.Multiply(&den1, invSqrtAMinusD)
	// rotate = IS_NEGATIVE(t0 * z_inv)
	rotate := tmp.Multiply(t0, &zInv).IsNegative()
	// x = CT_SELECT(iy0 IF rotate ELSE x0); y = CT_SELECT(ix0 IF rotate ELSE y0)
	x.Select(&iy0, x0, rotate)
	y.Select(&ix0, y0, rotate)
	// z = z0; den_inv = CT_SELECT(enchanted_denominator IF rotate ELSE den2)
	denInv.Select(&enchanted, &den2, rotate)
	// y = CT_NEG(y, IS_NEGATIVE(x * z_inv))
	y.Select(tmp.Negate(&y), &y, s.Multiply(&x, &zInv).IsNegative())
	// s = CT_ABS(den_inv * (z - y))
	s.Subtract(z0, &y).Multiply(&denInv, &s).Absolute(&s)
	return s.Bytes()
}

// Equal returns 1 if e and u are the same element, 0 otherwise (RFC 9496
// section 4.3.3: x1 * y2 == y1 * x2 or y1 * y2 == x1 * x2).
func (e *Element) Equal(u *Element) int {
	x1, y1, _, _ := e.p.ExtendedCoordinates()
	x2, y2, _, _ := u.p.ExtendedCoordinates()
	var l, r field.Element
	eq := l.Multiply(x1, y2).Equal(r.Multiply(y1, x2))
	return eq | l.Multiply(y1, y2).Equal(r.Multiply(x1, x2))
}

// IsIdentity returns 1 if e is the identity element, 0 otherwise.
func (e *Element) IsIdentity() int {
	return e.Equal(NewIdentityElement())
}

// SetUniformBytes sets e to the element derived from 64 uniformly random
// bytes (RFC 9496 section 4.3.4), the one-way map: MAP of the low 255 bits
// of each half, taken mod p, and the two points added. It returns e; the
// error, were edwards25519 ever to refuse a mapped point, cannot happen.
func (e *Element) SetUniformBytes(b *[64]byte) (*Element, error) {
	var r0, r1 field.Element
	r0.SetBytes(b[:32]) // ignores the top bit and reduces mod p, as the RFC says
	r1.SetBytes(b[32:])
	var p1, p2 edwards25519.Point
	if err := mapToPoint(&p1, &r0); err != nil {
		return nil, err
	}
	if err := mapToPoint(&p2, &r1); err != nil {
		return nil, err
	}
	e.p.Add(&p1, &p2)
	return e, nil
}

// mapToPoint sets p to MAP(t), RFC 9496 section 4.3.4's Elligator map.
func mapToPoint(p *edwards25519.Point, t *field.Element) error {
	var r, u, v, tmp, s, sPrime, c, n, ss, w0, w1, w2, w3, x, y, z, tt field.Element
	// r = SQRT_M1 * t^2; u = (r + 1) * ONE_MINUS_D_SQ
	r.Square(t).Multiply(sqrtM1, &r)
	u.Add(&r, one).Multiply(&u, oneMinusDSq)
	// v = (-1 - r*D) * (r + D)
	v.Multiply(&r, d).Subtract(minusOne, &v).Multiply(&v, tmp.Add(&r, d))
	// (was_square, s) = SQRT_RATIO_M1(u, v)
	_, wasSquare := s.SqrtRatio(&u, &v)
	// s_prime = -CT_ABS(s*t); s = CT_SELECT(s IF was_square ELSE s_prime)
	sPrime.Multiply(&s, t).Absolute(&sPrime).Negate(&sPrime)
	s.Select(&s, &sPrime, wasSquare)
	// c = CT_SELECT(-1 IF was_square ELSE r)
	c.Select(minusOne, &r, wasSquare)
	// N = c * (r - 1) * D_MINUS_ONE_SQ - v
	n.Subtract(&r, one).Multiply(&c, &n).Multiply(&n, dMinusOneSq).Subtract(&n, &v)
	// w0 = 2 * s * v; w1 = N * SQRT_AD_MINUS_ONE; w2 = 1 - s^2; w3 = 1 + s^2
	w0.Add(&s, &s).Multiply(&w0, &v)
	w1.Multiply(&n, sqrtADMinusOne)
	ss.Square(&s)
	w2.Subtract(one, &ss)
	w3.Add(one, &ss)
	// return (w0*w3, w2*w1, w1*w3, w0*w2)
	x.Multiply(&w0, &w3)
	y.Multiply(&w2, &w1)
	z.Multiply(&w1, &w3)
	tt.Multiply(&w0, &w2)
	if _, err := p.SetExtendedCoordinates(&x, &y, &z, &tt); err != nil {
		// MAP is defined on every field element, and its result is a
		// curve point, so this cannot happen; edwards25519 checks it again.
		return fmt.Errorf("ristretto255: internal error: MAP gave a point off the curve: %w", err)
	}
	return nil
}

// ScalarMult sets e = s * p and returns e, in constant time.
func (e *Element) ScalarMult(s *Scalar, p *Element) *Element {
	e.p.ScalarMult(&s.s, &p.p)
	return e
}

// Scalar is an integer modulo the group order
// l = 2^252 + 27742317777372353535851937790883648493. The zero value is 0.
type Scalar struct {
	s edwards25519.Scalar
}

// NewScalar returns the scalar 0.
func NewScalar() *Scalar {
	return new(Scalar)
}

// SetCanonicalBytes sets s to the 32-byte little-endian integer x, which must
// be below l (the scalar field of RFC 9496 section 4.4, edwards25519's), and
// returns s. Otherwise it fails and leaves s unchanged.
func (s *Scalar) SetCanonicalBytes(x []byte) (*Scalar, error) {
	if _, err := s.s.SetCanonicalBytes(x); err != nil {
		return nil, errors.New("ristretto255: invalid scalar encoding")
	}
	return s, nil
}

// Bytes returns the 32-byte little-endian encoding of s.
func (s *Scalar) Bytes() []byte {
	return s.s.Bytes()
}

// Equal returns 1 if s and t are equal, 0 otherwise.
func (s *Scalar) Equal(t *Scalar) int {
	return s.s.Equal(&t.s)
}

// Zero sets s to 0, overwriting it (for wiping a secret scalar), and
// returns s.
func (s *Scalar) Zero() *Scalar {
	s.s = edwards25519.Scalar{}
	return s
}
