package ristretto255

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// The test vectors of RFC 9496 appendix A for ristretto255 (A.1 to A.3).
// The RFC's own text was out of reach when they were typed in; they are
// copied from implementations that quote it (and its draft-03, which has
// the same vectors), and cross-checked: A.1, A.2 and A.3's first seven
// outputs are those of gtank/ristretto255 v0.1.2's tests, A.3's first seven
// inputs are SHA-512 of the lines below (TestOneWayMap checks it), and
// A.3's last four agree across several independent implementations' tests.

// A.1: the encodings of 0*B to 15*B, B the generator.
var generatorMultiples = [16]string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
	"6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
	"94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
	"da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
	"e882b131016b52c1d3337080187cf768423efccbb517bb495ab812c4160ff44e",
	"f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df403",
	"44f53520926ec81fbd5a387845beb7df85a96a24ece18738bdcfa6a7822a176d",
	"903293d8f2287ebe10e2374dc1a53e0bc887e592699f02d077d5263cdd55601c",
	"02622ace8f7303a31cafc63f8fc48fdc16e1c8c8d234b2f0d6685282a9076031",
	"20706fd788b2720a1ed2a5dad4952b01f413bcf0e7564de8cdc816689e2db95f",
	"bce83f8ba5dd2fa572864c24ba1810f9522bc6004afe95877ac73241cafdab42",
	"e4549ee16b9aa03099ca208c67adafcafa4c3f3e4e5303de6026e3ca8ff84460",
	"aa52e000df2e16f55fb1032fc33bc42742dad6bd5a8fc0be0167436c5948501f",
	"46376b80f409b29dc2b5f6f0c52591990896e5716f41477cd30085ab7f10301e",
	"e0c418f7c8d9c4cdd7395b93ea124f3ad99021bb681dfc3302a9d99a2e53e64e",
}

// A.2: invalid encodings, by the RFC's groups.
var invalidEncodings = []struct {
	why string
	enc []string
}{
	{"non-canonical field encoding", []string{
		"00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	}},
	{"negative field element", []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
		"c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
		"c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
		"47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
		"f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
		"87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
	}},
	{"non-square x^2", []string{
		"26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
		"4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
		"de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
		"bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
		"2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
		"f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
		"8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
		"2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
	}},
	{"negative x * y", []string{
		"3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
		"a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
		"d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
		"8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
		"32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
		"227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
		"5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
		"445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
	}},
	{"s = -1, which gives y = 0", []string{
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	}},
}

// A.3: element derivation from 64 uniform bytes. The first seven inputs
// are SHA-512 of the lines in oneWayMapLines (the form an earlier draft
// gave them in); the last four all give the same element, since each half
// is read as its low 255 bits mod p.
var oneWayMap = []struct{ in, out string }{
	{
		"5d1be09e3d0c82fc538112490e35701979d99e06ca3e2b5b54bffe8b4dc772c1" +
			"4d98b696a1bbfb5ca32c436cc61c16563790306c79eaca7705668b47dffe5bb6",
		"3066f82a1a747d45120d1740f14358531a8f04bbffe6a819f86dfe50f44a0a46",
	},
	{
		"f116b34b8f17ceb56e8732a60d913dd10cce47a6d53bee9204be8b44f6678b27" +
			"0102a56902e2488c46120e9276cfe54638286b9e4b3cdb470b542d46c2068d38",
		"f26e5b6f7d362d2d2a94c5d0e7602cb4773c95a2e5c31a64f133189fa76ed61b",
	},
	{
		"8422e1bbdaab52938b81fd602effb6f89110e1e57208ad12d9ad767e2e25510c" +
			"27140775f9337088b982d83d7fcf0b2fa1edffe51952cbe7365e95c86eaf325c",
		"006ccd2a9e6867e6a2c5cea83d3302cc9de128dd2a9a57dd8ee7b9d7ffe02826",
	},
	{
		"ac22415129b61427bf464e17baee8db65940c233b98afce8d17c57beeb7876c2" +
			"150d15af1cb1fb824bbd14955f2b57d08d388aab431a391cfc33d5bafb5dbbaf",
		"f8f0c87cf237953c5890aec3998169005dae3eca1fbb04548c635953c817f92a",
	},
	{
		"165d697a1ef3d5cf3c38565beefcf88c0f282b8e7dbd28544c483432f1cec767" +
			"5debea8ebb4e5fe7d6f6e5db15f15587ac4d4d4a1de7191e0c1ca6664abcc413",
		"ae81e7dedf20a497e10c304a765c1767a42d6e06029758d2d7e8ef7cc4c41179",
	},
	{
		"a836e6c9a9ca9f1e8d486273ad56a78c70cf18f0ce10abb1c7172ddd605d7fd2" +
			"979854f47ae1ccf204a33102095b4200e5befc0465accc263175485f0e17ea5c",
		"e2705652ff9f5e44d3e841bf1c251cf7dddb77d140870d1ab2ed64f1a9ce8628",
	},
	{
		"2cdc11eaeb95daf01189417cdddbf95952993aa9cb9c640eb5058d09702c7462" +
			"2c9965a697a3b345ec24ee56335b556e677b30e6f90ac77d781064f866a3c982",
		"80bd07262511cdde4863f8a7434cef696750681cb9510eea557088f76d9e5065",
	},
	{
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" +
			"1200000000000000000000000000000000000000000000000000000000000000",
		"304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
	},
	{
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" +
			"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
	},
	{
		"0000000000000000000000000000000000000000000000000000000000000080" +
			"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
	},
	{
		"0000000000000000000000000000000000000000000000000000000000000000" +
			"1200000000000000000000000000000000000000000000000000000000000080",
		"304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
	},
}

var oneWayMapLines = []string{
	"Ristretto is traditionally a short shot of espresso coffee",
	"made with the normal amount of ground coffee but extracted with",
	"about half the amount of water in the same amount of time",
	"by using a finer grind.",
	"This produces a concentrated shot of coffee per volume.",
	"Just pulling a normal shot short will produce a weaker shot",
	"and is not a Ristretto as some believe.",
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func generator() *Element {
	e := new(Element)
	e.p.Set(edwards25519.NewGeneratorPoint())
	return e
}

func scalarOf(t testing.TB, k uint64) *Scalar {
	t.Helper()
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], k)
	s, err := NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomScalar is 32 random bytes with the top four bits cleared, below
// the group order (as CPace samples them).
func randomScalar(t testing.TB) *Scalar {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	b[31] &= 0x0f
	s, err := NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomElement() *Element {
	var b [64]byte
	rand.Read(b[:])
	e, err := new(Element).SetUniformBytes(&b)
	if err != nil {
		panic(err) // a test helper; the map is total
	}
	return e
}

// The constants are the RFC's (section 4.1, in decimal there) and satisfy
// the relations that define them.
func TestConstants(t *testing.T) {
	p, _ := new(big.Int).SetString("57896044618658097711785492504343953926634992332820282019728792003956564819949", 10)
	for _, c := range []struct {
		name string
		fe   *field.Element
		dec  string
	}{
		{"D", d, "37095705934669439343138083508754565189542113879843219016388785533085940283555"},
		{"SQRT_M1", sqrtM1, "19681161376707505956807079304988542015446066515923890162744021073123829784752"},
		{"SQRT_AD_MINUS_ONE", sqrtADMinusOne, "25063068953384623474111414158702152701244531502492656460079210482610430750235"},
		{"INVSQRT_A_MINUS_D", invSqrtAMinusD, "54469307008909316920995813868745141605393597292927456921205312896311721017578"},
		{"ONE_MINUS_D_SQ", oneMinusDSq, "1159843021668779879193775521855586647937357759715417654439879720876111806838"},
		{"D_MINUS_ONE_SQ", dMinusOneSq, "40440834346308536858101042469323190826248399146238708352240133220865137265952"},
	} {
		want, _ := new(big.Int).SetString(c.dec, 10)
		le := c.fe.Bytes()
		for i := range 16 {
			le[i], le[31-i] = le[31-i], le[i]
		}
		if got := new(big.Int).SetBytes(le); got.Cmp(want) != 0 || got.Cmp(p) >= 0 {
			t.Errorf("%s = %v, want %v", c.name, got, want)
		}
	}
	var x, y field.Element
	// D = -121665/121666
	x.Mult32(d, 121666).Add(&x, y.Mult32(one, 121665))
	check := func(name string, ok bool) {
		if !ok {
			t.Errorf("%s does not hold", name)
		}
	}
	var zero field.Element
	check("121666 * D + 121665 = 0", x.Equal(&zero) == 1)
	check("SQRT_M1^2 = -1", x.Square(sqrtM1).Equal(minusOne) == 1)
	// a = -1: SQRT_AD_MINUS_ONE^2 = -D - 1
	check("SQRT_AD_MINUS_ONE^2 = a*D - 1", x.Square(sqrtADMinusOne).Equal(y.Negate(d).Subtract(&y, one)) == 1)
	// INVSQRT_A_MINUS_D^2 * (-1 - D) = 1
	check("INVSQRT_A_MINUS_D^2 * (a - D) = 1", x.Square(invSqrtAMinusD).Multiply(&x, y.Subtract(minusOne, d)).Equal(one) == 1)
	check("ONE_MINUS_D_SQ = 1 - D^2", x.Square(d).Subtract(one, &x).Equal(oneMinusDSq) == 1)
	check("D_MINUS_ONE_SQ = (D - 1)^2", x.Subtract(d, one).Square(&x).Equal(dMinusOneSq) == 1)
}

// RFC 9496 A.1: each encoding decodes, re-encodes to itself, is k*B computed
// both by repeated addition and by ScalarMult, and no two are equal.
func TestGeneratorMultiples(t *testing.T) {
	b := generator()
	sum := NewIdentityElement()
	var decoded [16]*Element
	for k, enc := range generatorMultiples {
		in := unhex(t, enc)
		e, err := new(Element).SetCanonicalBytes(in)
		if err != nil {
			t.Fatalf("%d*B: %v", k, err)
		}
		decoded[k] = e
		if got := e.Bytes(); !bytes.Equal(got, in) {
			t.Errorf("%d*B re-encodes as %x", k, got)
		}
		if got := sum.Bytes(); !bytes.Equal(got, in) {
			t.Errorf("%d*B by addition encodes as %x", k, got)
		}
		if e.Equal(sum) != 1 || sum.Equal(e) != 1 {
			t.Errorf("%d*B decoded is not %d*B by addition", k, k)
		}
		kB := new(Element).ScalarMult(scalarOf(t, uint64(k)), b)
		if got := kB.Bytes(); !bytes.Equal(got, in) {
			t.Errorf("%d*B by ScalarMult encodes as %x", k, got)
		}
		if got, want := e.IsIdentity(), boolInt(k == 0); got != want {
			t.Errorf("%d*B: IsIdentity = %d", k, got)
		}
		sum.p.Add(&sum.p, &b.p)
	}
	for i := range decoded {
		for j := range decoded {
			if got, want := decoded[i].Equal(decoded[j]), boolInt(i == j); got != want {
				t.Errorf("%d*B == %d*B: %d", i, j, got)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// RFC 9496 A.2, and wrong lengths.
func TestInvalidEncodings(t *testing.T) {
	n := 0
	for _, g := range invalidEncodings {
		for _, enc := range g.enc {
			n++
			before := generator()
			e := generator()
			if got, err := e.SetCanonicalBytes(unhex(t, enc)); err == nil || got != nil {
				t.Errorf("%s: %s decoded", g.why, enc)
			}
			if e.Equal(before) != 1 {
				t.Errorf("%s: a failed decode changed the receiver", g.why)
			}
		}
	}
	if n != 29 {
		t.Errorf("%d invalid encodings, the RFC lists 29", n)
	}
	b := unhex(t, generatorMultiples[1])
	for _, in := range [][]byte{nil, b[:31], append(b, 0), make([]byte, 64)} {
		if _, err := new(Element).SetCanonicalBytes(in); err == nil {
			t.Errorf("%d bytes decoded", len(in))
		}
	}
	// The top bit set on a valid encoding: non-canonical.
	b[31] |= 0x80
	if _, err := new(Element).SetCanonicalBytes(b); err == nil {
		t.Error("B with the top bit set decoded")
	}
}

// RFC 9496 A.3.
func TestOneWayMap(t *testing.T) {
	for i, line := range oneWayMapLines {
		if h := sha512.Sum512([]byte(line)); hex.EncodeToString(h[:]) != oneWayMap[i].in {
			t.Errorf("input %d is not SHA-512(%q)", i, line)
		}
	}
	var same *Element
	for i, v := range oneWayMap {
		in := [64]byte(unhex(t, v.in))
		e, err := new(Element).SetUniformBytes(&in)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(e.Bytes()); got != v.out {
			t.Errorf("#%d: got %s, want %s", i, got, v.out)
		}
		if i >= 7 {
			if same != nil && e.Equal(same) != 1 {
				t.Errorf("#%d is not equal to #7", i)
			}
			same = e
		}
	}
}

// decode(encode(P)) == P for random elements and multiples, and the
// encoding is the same again.
func TestRoundTrip(t *testing.T) {
	for range 200 {
		for _, p := range []*Element{randomElement(), new(Element).ScalarMult(randomScalar(t), generator())} {
			enc := p.Bytes()
			q, err := new(Element).SetCanonicalBytes(enc)
			if err != nil {
				t.Fatalf("%x: %v", enc, err)
			}
			if q.Equal(p) != 1 || p.Equal(q) != 1 {
				t.Fatalf("%x decodes to another element", enc)
			}
			if again := q.Bytes(); !bytes.Equal(again, enc) {
				t.Fatalf("%x re-encodes as %x", enc, again)
			}
		}
	}
}

// An element's representatives differ by the 4-torsion points: P, P+T2,
// P+T4 and P-T4 (T2 = (0, -1), T4 = (i, 0)) are one element, with one
// encoding, and those points alone are the identity.
func TestRepresentatives(t *testing.T) {
	var zero field.Element
	torsion := func(x, y *field.Element) *Element {
		e := new(Element)
		if _, err := e.p.SetExtendedCoordinates(x, y, one, &zero); err != nil {
			t.Fatal(err)
		}
		return e
	}
	t2 := torsion(&zero, minusOne)
	t4 := torsion(sqrtM1, &zero)
	t4n := torsion(new(field.Element).Negate(sqrtM1), &zero)
	for _, tp := range []*Element{t2, t4, t4n} {
		if tp.IsIdentity() != 1 || !bytes.Equal(tp.Bytes(), make([]byte, 32)) {
			t.Errorf("a 4-torsion point is not the identity")
		}
	}
	for range 50 {
		p := randomElement()
		enc := p.Bytes()
		for i, tp := range []*Element{t2, t4, t4n} {
			q := new(Element)
			q.p.Add(&p.p, &tp.p)
			if q.p.Equal(&p.p) == 1 {
				t.Fatal("adding a torsion point changed nothing")
			}
			if q.Equal(p) != 1 || p.Equal(q) != 1 {
				t.Errorf("torsion %d: P and P+T differ", i)
			}
			if got := q.Bytes(); !bytes.Equal(got, enc) {
				t.Errorf("torsion %d: P+T encodes as %x, P as %x", i, got, enc)
			}
		}
		if p.IsIdentity() == 1 || p.Equal(randomElement()) == 1 {
			t.Error("random elements equal the identity or each other")
		}
	}
}

func TestScalar(t *testing.T) {
	// l - 1 is the largest canonical scalar; l and above fail.
	lMinus1 := unhex(t, "ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	l := unhex(t, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	s, err := NewScalar().SetCanonicalBytes(lMinus1)
	if err != nil || !bytes.Equal(s.Bytes(), lMinus1) {
		t.Fatalf("l-1: %v", err)
	}
	for _, in := range [][]byte{l, bytes.Repeat([]byte{0xff}, 32), lMinus1[:31], append(lMinus1, 0)} {
		before := *s
		if got, err := s.SetCanonicalBytes(in); err == nil || got != nil {
			t.Errorf("%x decoded", in)
		}
		if s.Equal(&before) != 1 {
			t.Errorf("a failed decode changed the scalar")
		}
	}
	// (l-1)*B = -B.
	neg := new(Element).ScalarMult(s, generator())
	neg.p.Add(&neg.p, &generator().p)
	if neg.IsIdentity() != 1 {
		t.Error("(l-1)*B + B is not the identity")
	}
	if s.Zero(); s.Equal(NewScalar()) != 1 || !bytes.Equal(s.Bytes(), make([]byte, 32)) {
		t.Error("Zero left a non-zero scalar")
	}
	if new(Element).ScalarMult(s, generator()).IsIdentity() != 1 {
		t.Error("0*B is not the identity")
	}
}

func TestZero(t *testing.T) {
	e := randomElement()
	e.Zero()
	x, y, z, tt := e.p.ExtendedCoordinates()
	var zero field.Element
	if x.Equal(&zero) != 1 || y.Equal(one) != 1 || z.Equal(one) != 1 || tt.Equal(&zero) != 1 {
		t.Error("Zero left other coordinates than (0, 1, 1, 0)")
	}
	if e.IsIdentity() != 1 || !bytes.Equal(e.Bytes(), make([]byte, 32)) {
		t.Error("Zero did not give the identity")
	}
}
