package hub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// Room codes are read aloud and typed, so their alphabet leaves out the
// characters people confuse: 0/O, 1/I/L, and U (read as V). 30 symbols give
// log2(30) = 4.91 bits each; 18 of them give 88 bits, grouped in threes.
const (
	codeAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
	codeLen      = 18
	codeGroup    = 3
)

var errBadCode = errors.New("malformed room code")

// newRoomCode returns a fresh random room code such as "K7Q-MX2-P9R-TVW-4HN-C8D".
func newRoomCode() string {
	var b strings.Builder
	b.Grow(codeLen + codeLen/codeGroup)
	// Rejection sampling keeps every symbol equally likely: bytes >= 240
	// (8 * 30) would bias the first symbols of the alphabet.
	var buf [32]byte
	n := 0
	for n < codeLen {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails on supported platforms.
		for _, c := range buf {
			if c >= 240 || n == codeLen {
				continue
			}
			if n > 0 && n%codeGroup == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(codeAlphabet[int(c)%len(codeAlphabet)])
			n++
		}
	}
	return b.String()
}

// NormalizeRoomCode turns what a person typed into the canonical code: it
// ignores case, spaces and dashes. A character outside the alphabet (such as
// O, I or L) is an error rather than a guess.
func NormalizeRoomCode(s string) (string, error) {
	var raw [codeLen]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		if strings.IndexByte(codeAlphabet, c) < 0 || n == codeLen {
			return "", errBadCode
		}
		raw[n] = c
		n++
	}
	if n != codeLen {
		return "", errBadCode
	}
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%codeGroup == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(c)
	}
	return b.String(), nil
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
