package ristretto255

import "testing"

// The operations cpace uses. (Against gtank/ristretto255 v0.1.2, which
// cpace used before, when this package replaced it: the map 6.9 against
// 7.8 µs, decode and encode 6.6 against 8.3 µs, scalar multiplication 39.5
// against 41.8 µs; docs/BENCHMARKS.md has the figures per exchange.)

func BenchmarkSetUniformBytes(b *testing.B) {
	in := [64]byte(unhex(b, oneWayMap[0].in))
	for b.Loop() {
		if _, err := new(Element).SetUniformBytes(&in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEncode(b *testing.B) {
	enc := unhex(b, generatorMultiples[5])
	for b.Loop() {
		e, err := new(Element).SetCanonicalBytes(enc)
		if err != nil {
			b.Fatal(err)
		}
		e.Bytes()
	}
}

func BenchmarkScalarMult(b *testing.B) {
	s := unhex(b, "da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08")
	enc := unhex(b, generatorMultiples[5])
	y, _ := NewScalar().SetCanonicalBytes(s)
	p, _ := new(Element).SetCanonicalBytes(enc)
	for b.Loop() {
		new(Element).ScalarMult(y, p)
	}
}
