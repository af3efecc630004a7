package hub

import (
	"crypto/rand"
	"strings"

	"github.com/tryst-chat/tryst/proto"
)

// newRoomCode returns a fresh random room code such as "K7Q-MX2-P9R-TVW-4HN-C8D",
// drawn from the alphabet of proto.RoomCodeAlphabet.
func newRoomCode() string {
	var b strings.Builder
	b.Grow(proto.RoomCodeLen + proto.RoomCodeLen/proto.RoomCodeGroup)
	// Rejection sampling keeps every symbol equally likely: bytes >= 240
	// (8 * 30) would bias the first symbols of the alphabet.
	var buf [32]byte
	n := 0
	for n < proto.RoomCodeLen {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails on supported platforms.
		for _, c := range buf {
			if c >= 240 || n == proto.RoomCodeLen {
				continue
			}
			if n > 0 && n%proto.RoomCodeGroup == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(proto.RoomCodeAlphabet[int(c)%len(proto.RoomCodeAlphabet)])
			n++
		}
	}
	return b.String()
}
