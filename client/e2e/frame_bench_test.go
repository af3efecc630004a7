package e2e_test

import (
	"bytes"
	"testing"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
)

func benchSessions(b *testing.B) (host, guest *e2e.Session) {
	b.Helper()
	master := bytes.Repeat([]byte{7}, 32)
	nh, ng := bytes.Repeat([]byte{1}, e2e.NonceSize), bytes.Repeat([]byte{2}, e2e.NonceSize)
	fpH, fpG := "sha-256 AA:BB", "sha-256 CC:DD"
	host, err := e2e.NewSession(master, e2e.Host, nh, ng, fpH, fpG)
	if err != nil {
		b.Fatal(err)
	}
	guest, err = e2e.NewSession(master, e2e.Guest, nh, ng, fpH, fpG)
	if err != nil {
		b.Fatal(err)
	}
	return host, guest
}

// BenchmarkSealFrame is the sender's cost per file chunk of the default size, reusing
// the output buffer as the client does.
func BenchmarkSealFrame(b *testing.B) {
	host, _ := benchSessions(b)
	payload := make([]byte, proto.DefaultChunkData+proto.ChunkHeader)
	var buf []byte
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		buf = host.Channel(1).SealTo(buf[:0], 8, payload)
	}
}

// BenchmarkOpenFrame compares opening into a fresh buffer with opening in
// place, the receiver's cost per file chunk of the default size.
func BenchmarkOpenFrame(b *testing.B) {
	for _, inPlace := range []bool{false, true} {
		name := "alloc"
		if inPlace {
			name = "in-place"
		}
		b.Run(name, func(b *testing.B) {
			host, guest := benchSessions(b)
			payload := make([]byte, proto.DefaultChunkData+proto.ChunkHeader)
			var frame []byte
			work := make([]byte, len(payload)+e2e.Overhead)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				// Sequence numbers must advance: seal the next frame for
				// the receiver, outside the measured cost as far as
				// possible (sealing is measured above).
				b.StopTimer()
				frame = host.Channel(1).SealTo(frame[:0], 8, payload)
				copy(work, frame)
				b.StartTimer()
				var err error
				if inPlace {
					_, _, err = guest.Channel(1).OpenInPlace(work)
				} else {
					_, _, err = guest.Channel(1).Open(work)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
