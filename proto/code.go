package proto

import (
	"errors"
	"strings"
)

// Room codes are read aloud and typed, so their alphabet leaves out the
// characters people confuse: 0/O, 1/I/L, and U (read as V). 30 symbols give
// log2(30) = 4.91 bits each; 18 of them give 88 bits, grouped in threes.
const (
	RoomCodeAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
	RoomCodeLen      = 18 // symbols, without the dashes
	RoomCodeGroup    = 3  // symbols between two dashes
)

var errBadCode = errors.New("malformed room code")

// NormalizeRoomCode turns what a person typed into the canonical code: it
// ignores case, spaces and dashes. A character outside the alphabet (such as
// O, I or L) is an error rather than a guess.
func NormalizeRoomCode(s string) (string, error) {
	var raw [RoomCodeLen]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		if strings.IndexByte(RoomCodeAlphabet, c) < 0 || n == RoomCodeLen {
			return "", errBadCode
		}
		raw[n] = c
		n++
	}
	if n != RoomCodeLen {
		return "", errBadCode
	}
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%RoomCodeGroup == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}
