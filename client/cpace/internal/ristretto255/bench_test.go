package ristretto255

import (
	"testing"

	gtank "github.com/gtank/ristretto255"
)

// The operations cpace uses, here and in gtank/ristretto255 v0.1.2.

func BenchmarkSetUniformBytes(b *testing.B) {
	in := [64]byte(unhex(b, oneWayMap[0].in))
	b.Run("here", func(b *testing.B) {
		for b.Loop() {
			new(Element).SetUniformBytes(&in)
		}
	})
	b.Run("gtank", func(b *testing.B) {
		for b.Loop() {
			gtank.NewElement().FromUniformBytes(in[:])
		}
	})
}

func BenchmarkDecodeEncode(b *testing.B) {
	enc := unhex(b, generatorMultiples[5])
	b.Run("here", func(b *testing.B) {
		for b.Loop() {
			e, err := new(Element).SetCanonicalBytes(enc)
			if err != nil {
				b.Fatal(err)
			}
			e.Bytes()
		}
	})
	b.Run("gtank", func(b *testing.B) {
		for b.Loop() {
			var e gtank.Element
			if err := e.Decode(enc); err != nil {
				b.Fatal(err)
			}
			e.Encode(nil)
		}
	})
}

func BenchmarkScalarMult(b *testing.B) {
	s := unhex(b, "da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08")
	enc := unhex(b, generatorMultiples[5])
	b.Run("here", func(b *testing.B) {
		y, _ := NewScalar().SetCanonicalBytes(s)
		p, _ := new(Element).SetCanonicalBytes(enc)
		for b.Loop() {
			new(Element).ScalarMult(y, p)
		}
	})
	b.Run("gtank", func(b *testing.B) {
		var y gtank.Scalar
		var p gtank.Element
		if y.Decode(s) != nil || p.Decode(enc) != nil {
			b.Fatal("decode")
		}
		for b.Loop() {
			gtank.NewElement().ScalarMult(&y, &p)
		}
	})
}
