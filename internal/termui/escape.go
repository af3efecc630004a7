package termui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tryst-chat/tryst/client"
)

// Escape returns s safe to put on a terminal: every character for which
// client.UnsafeRune reports true (control characters with ESC, BEL, CR,
// BS, DEL and C1; bidi controls; zero-width and other format characters;
// line and paragraph separators) and every byte that is not valid UTF-8
// is written as a visible escape instead: \n, \r, \t, \x1b for C0, DEL and
// invalid bytes, \u202e or \U000e0041 for the rest. Everything else,
// backslashes included, is left as it is, so printable text reads the same.
//
// Newline is escaped too: every line the commands print begins with a
// marker they chose ("* ", "[15:04:05] peer: "), so a person or a script
// reading the output can trust where an event starts, and a chat message
// cannot draw a line of its own that passes for a status line. A Go or
// browser client never sends a newline in chat (one line is one message).
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if client.UnsafeRune(r) || r == utf8.RuneError && n == 1 {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !client.UnsafeRune(r):
			b.WriteString(s[i : i+n])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}
