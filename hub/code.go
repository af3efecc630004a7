package hub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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

// newToken returns a random resume token (192 bits, URL-safe).
func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenKey is what the store keeps instead of a resume token, so that a dump
// of the store cannot be used to take over a room.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
