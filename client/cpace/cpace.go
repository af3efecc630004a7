// Package cpace implements CPace, the balanced password-authenticated key
// exchange (PAKE) of the IRTF draft draft-irtf-cfrg-cpace, with its
// CPACE-RISTR255-SHA512 cipher suite: the ristretto255 group (RFC 9496) and
// SHA-512. The text followed is revision 21 of the draft (the rendering
// draft-irtf-cfrg-cpace-21 in the draft's repository, dated 23 April 2026);
// this package's tests reproduce its appendix A and B.3 test vectors.
//
// Each side sends one message, its share Y (32 bytes) and its associated
// data AD, and derives the intermediate session key ISK from what it
// received. Someone who sees or relays both messages learns nothing that
// lets them test password guesses offline: an active attacker gets one guess
// per exchange it takes part in.
//
// The caller supplies:
//
//   - PRS, the password-related string, secret, the same on both sides. The
//     draft leaves its derivation to the application (for example a
//     password-based KDF over the password encoded per RFC 8265).
//   - CI, the channel identifier, the same on both sides and never sent:
//     party identities and roles belong here (draft section 10.1). May be
//     empty.
//   - sid, the session identifier, public, the same on both sides and unique
//     per exchange (at least 8 bytes recommended, for example random bytes
//     from both parties). May be empty, at the cost of the draft's
//     composability guarantees.
//   - AD, associated data, sent in clear next to the share; ISK agrees only
//     if both sides saw the same ADa and ADb. May be empty.
//
// ISK is an intermediate key: the caller feeds it into a KDF (HKDF, say)
// before using it, and should confirm it explicitly (draft section 10.4),
// since two sides with different passwords simply derive different keys;
// CPace itself reports no mismatch. The Diffie-Hellman point K is never
// exposed: it would allow offline guessing (draft section 10.3).
package cpace

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/tryst-chat/tryst/client/internal/ristretto255"
)

const (
	// ShareSize is the length of a share Y on the wire.
	ShareSize = 32
	// ISKSize is the length of the intermediate session key.
	ISKSize = sha512.Size

	// dsi is G_Ristretto255.DSI, the suite's domain-separation identifier.
	dsi = "CPaceRistretto255"
	// sInBytes is H.s_in_bytes, SHA-512's input block size: the generator
	// string pads DSI and PRS to fill it, so the hashing time does not
	// depend on a short password's length.
	sInBytes = sha512.BlockSize
)

// ErrInvalidShare: the peer's share is not the encoding of a ristretto255
// element other than the identity. The draft says to abort; a caller may
// treat it as a misbehaving peer rather than a wrong password.
var ErrInvalidShare = errors.New("cpace: invalid peer share")

// Role says how the transcript orders the two messages (draft section 6.3).
type Role int

const (
	// Initiator (party A) sent its message first: transcript_ir with its own
	// share and AD first.
	Initiator Role = iota + 1
	// Responder (party B) answered: transcript_ir with the peer's share
	// and AD first.
	Responder
	// Symmetric is for sides that may both speak first: transcript_oc, the
	// ordered concatenation. The draft (section 10.1) requires that ADa and
	// ADb then be unique, for example by including random bytes; otherwise
	// use the initiator-responder roles.
	Symmetric
)

// State is one side's exchange between Start and Finish. It is single use,
// and not safe for concurrent use.
type State struct {
	y     *ristretto255.Scalar // secret; nil once Finish has run
	share []byte               // our Y
	ad    []byte               // our AD
	sid   []byte
}

// Start begins an exchange: it samples the secret scalar y from rand
// (crypto/rand when nil) and returns the state to Finish with and the share
// Y = y*g to send along with ad, where g is derived from prs, ci and sid.
func Start(prs, ci, sid, ad []byte, rand io.Reader) (*State, []byte, error) {
	y, err := sampleScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	return start(prs, ci, sid, ad, y)
}

// start is Start with a given scalar, which the state takes over; tests
// reproduce the draft's vectors with it.
func start(prs, ci, sid, ad []byte, y *ristretto255.Scalar) (*State, []byte, error) {
	g, err := calculateGenerator(prs, ci, sid)
	if err != nil {
		return nil, nil, fmt.Errorf("cpace: %w", err)
	}
	yg := new(ristretto255.Element).ScalarMult(y, g)
	share := yg.Bytes()
	// g alone lets one test password guesses offline; drop it.
	g.Zero()
	yg.Zero()
	st := &State{
		y:     y,
		share: share,
		ad:    bytes.Clone(ad),
		sid:   bytes.Clone(sid),
	}
	return st, bytes.Clone(share), nil
}

// Finish completes the exchange with the peer's share and AD and returns
// the 64-byte ISK. An invalid share gives an error wrapping ErrInvalidShare.
// Finish consumes the state whether or not it succeeds (the draft aborts the
// exchange on an invalid share, and a scalar must never be reused); the
// secret scalar is zeroed.
func (s *State) Finish(peerShare, peerAD []byte, role Role) ([]byte, error) {
	if role != Initiator && role != Responder && role != Symmetric {
		return nil, fmt.Errorf("cpace: unknown role %d", role)
	}
	if s.y == nil {
		return nil, errors.New("cpace: Finish called twice on one state")
	}
	y := s.y
	s.y = nil
	defer y.Zero()

	k, err := scalarMultVfy(y, peerShare)
	if err != nil {
		return nil, err
	}
	defer clear(k)

	var tr []byte
	switch role {
	case Initiator:
		tr = transcriptIR(s.share, s.ad, peerShare, peerAD)
	case Responder:
		tr = transcriptIR(peerShare, peerAD, s.share, s.ad)
	case Symmetric:
		tr = transcriptOC(s.share, s.ad, peerShare, peerAD)
	}
	return deriveISK(s.sid, k, tr), nil
}

// sampleScalar is G.sample_scalar as the draft recommends for ristretto255
// (section 8.3): 32 random bytes with the bits above group_size_bits (252)
// cleared, read as a little-endian integer. Below 2^252 it is always less
// than the group order, so it decodes canonically without reduction.
func sampleScalar(r io.Reader) (*ristretto255.Scalar, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	defer clear(b[:])
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("cpace: reading a random scalar: %w", err)
	}
	b[31] &= 0x0f
	y, err := ristretto255.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		// Unreachable: every value below 2^252 is canonical.
		return nil, fmt.Errorf("cpace: decoding a random scalar: %w", err)
	}
	// Zero (probability 2^-252 from a working source) would make our share
	// the identity, which the peer must reject; a source that yields it is
	// broken.
	if y.Equal(ristretto255.NewScalar()) == 1 {
		return nil, errors.New("cpace: the random source gave a zero scalar")
	}
	return y, nil
}

// calculateGenerator is G.calculate_generator (draft section 8.3): SHA-512
// of the generator string, mapped to the group by ristretto255's
// element derivation from 64 uniform bytes (RFC 9496 section 4.3.4).
func calculateGenerator(prs, ci, sid []byte) (*ristretto255.Element, error) {
	gs := generatorString([]byte(dsi), prs, ci, sid, sInBytes)
	h := sha512.Sum512(gs)
	g, err := new(ristretto255.Element).SetUniformBytes(&h)
	// Both hold the password; wipe them.
	clear(gs)
	clear(h[:])
	return g, err
}

// scalarMultVfy is G.scalar_mult_vfy followed by the draft's abort check:
// where the draft returns the identity G.I and then aborts (an undecodable
// X, or y*X = G.I), this returns an error wrapping ErrInvalidShare.
// Otherwise it returns the encoding of K = y*X.
func scalarMultVfy(y *ristretto255.Scalar, x []byte) ([]byte, error) {
	if len(x) != ShareSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidShare, len(x), ShareSize)
	}
	// SetCanonicalBytes accepts only canonical encodings (RFC 9496 section
	// 4.3.1).
	e, err := new(ristretto255.Element).SetCanonicalBytes(x)
	if err != nil {
		return nil, fmt.Errorf("%w: not a ristretto255 encoding", ErrInvalidShare)
	}
	k := new(ristretto255.Element).ScalarMult(y, e)
	defer k.Zero()
	// ristretto255 has prime order, so y*X is the identity only when X is
	// (y is never zero).
	if k.IsIdentity() == 1 {
		return nil, fmt.Errorf("%w: the identity element", ErrInvalidShare)
	}
	return k.Bytes(), nil
}

// deriveISK is ISK = H.hash(lv_cat(G.DSI || b"_ISK", sid, K) || transcript)
// (draft section 7.2).
func deriveISK(sid, k, transcript []byte) []byte {
	h := sha512.New()
	h.Write(lvCat([]byte(dsi+"_ISK"), sid, k))
	h.Write(transcript)
	return h.Sum(make([]byte, 0, ISKSize))
}

// generatorString is the draft's generator_string (appendix A.2):
// lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid), the zero padding filling
// the hash's first input block after DSI and PRS.
func generatorString(dsi, prs, ci, sid []byte, sInBytes int) []byte {
	zpad := max(0, sInBytes-1-prependLenSize(prs)-prependLenSize(dsi))
	return lvCat(dsi, prs, make([]byte, zpad), ci, sid)
}

// lvCat is the draft's lv_cat (appendix A.1.3): each argument preceded by
// its length in LEB128, which is exactly encoding/binary's unsigned varint.
func lvCat(args ...[]byte) []byte {
	n := 0
	for _, a := range args {
		n += prependLenSize(a)
	}
	out := make([]byte, 0, n)
	for _, a := range args {
		out = binary.AppendUvarint(out, uint64(len(a)))
		out = append(out, a...)
	}
	return out
}

// prependLenSize is len(prepend_len(a)).
func prependLenSize(a []byte) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], uint64(len(a))) + len(a)
}

// oCat is the draft's o_cat (appendix A.3.2): b"oc", then the
// lexicographically larger string, then the other. bytes.Compare orders
// as the draft's lexiographically_larger does (a proper prefix is smaller).
func oCat(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		a, b = b, a
	}
	out := make([]byte, 0, 2+len(a)+len(b))
	out = append(out, "oc"...)
	out = append(out, a...)
	return append(out, b...)
}

// transcriptIR is the initiator-responder transcript (appendix A.3.4).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// transcriptOC is the symmetric-setting transcript (appendix A.3.6).
func transcriptOC(ya, ada, yb, adb []byte) []byte {
	return oCat(lvCat(ya, ada), lvCat(yb, adb))
}
