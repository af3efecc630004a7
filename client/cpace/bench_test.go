package cpace

import (
	"bytes"
	"testing"
)

// BenchmarkExchange is one full exchange, both sides: what a connection
// attempt costs in CPU (two Starts and two Finishes).
func BenchmarkExchange(b *testing.B) {
	prs, ci, sid := []byte("correct horse"), []byte("A|B"), []byte("0123456789abcdef")
	adA, adB := []byte("ADa"), []byte("ADb")
	for b.Loop() {
		stA, shareA, err := Start(prs, ci, sid, adA, nil)
		if err != nil {
			b.Fatal(err)
		}
		stB, shareB, err := Start(prs, ci, sid, adB, nil)
		if err != nil {
			b.Fatal(err)
		}
		iskA, err := stA.Finish(shareB, adB, Initiator)
		if err != nil {
			b.Fatal(err)
		}
		iskB, err := stB.Finish(shareA, adA, Responder)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(iskA, iskB) {
			b.Fatal("keys differ")
		}
	}
}

// BenchmarkOneSide is one side's share of an exchange: a Start and a
// Finish on the peer's share (computed once, outside the loop).
func BenchmarkOneSide(b *testing.B) {
	prs, ci, sid := []byte("correct horse"), []byte("A|B"), []byte("0123456789abcdef")
	_, peer, err := Start(prs, ci, sid, []byte("ADb"), nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		st, _, err := Start(prs, ci, sid, []byte("ADa"), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Finish(peer, []byte("ADb"), Initiator); err != nil {
			b.Fatal(err)
		}
	}
}
