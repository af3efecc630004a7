package termui

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tryst-chat/tryst/client"
)

// The attacks of issue 13 and their kin, as a hostile peer sends them in
// chat text, file names or refusal reasons.
var attacks = []string{
	"\x1b[2J",          // clear the screen
	"\x1b]0;pwned\x07", // OSC: set the window title, ended by BEL
	"\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\", // OSC 8 hyperlink
	"\r* received x (SHA-256 verified)",            // overwrite the line with a forged status
	"hi\n* received x (3.0 MB, SHA-256 verified)",  // a forged status on a line of its own
	"\x07\x07\x07",                            // BEL
	"abc\b\b\bxyz\x7f",                        // backspace, DEL
	"\u009b2J",                                // CSI as one C1 character
	"\u0085next line",                         // NEL
	"invoice\u202efdp.exe",                    // right-to-left override
	"a\u2066b\u2069c\u200ed\u200fe\u061c",     // isolates, marks
	"zero\u200bwidth\u200c\u200d\u2060\ufeff", // zero-width characters
	"line\u2028para\u2029",                    // separators
	"tag\U000e0041",                           // tag character
	"\xff\xfe\xc3",                            // not UTF-8
}

// unsafeIn reports what in s could act on a terminal, or "".
func unsafeIn(s string) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return "invalid UTF-8"
			}
		}
		if client.UnsafeRune(r) {
			return string(r)
		}
	}
	return ""
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"": "",
		"plain text, 日本語, ünïcödé, emoji 🎉": "plain text, 日本語, ünïcödé, emoji 🎉",
		`C:\path\with\backslashes`:          `C:\path\with\backslashes`,
		"\x1b[2J":                           `\x1b[2J`,
		"\x1b]0;pwned\x07":                  `\x1b]0;pwned\x07`,
		"\r* received x (SHA-256 verified)": `\r* received x (SHA-256 verified)`,
		"a\nb\tc":                           `a\nb\tc`,
		"\x00\x7f":                          `\x00\x7f`,
		"\u009b2J":                          `\u009b2J`,
		"invoice\u202efdp.exe":              `invoice\u202efdp.exe`,
		"\u200b\u200c\u200d\u2060\ufeff":    `\u200b\u200c\u200d\u2060\ufeff`,
		"\u2066\u2069\u200e\u200f\u061c":    `\u2066\u2069\u200e\u200f\u061c`,
		"tag\U000e0041":                     `tag\U000e0041`,
		"ok\xff\xfe":                        `ok\xff\xfe`,
		"\ufffd is a character":             "\ufffd is a character",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	for _, a := range attacks {
		if got := Escape(a); unsafeIn(got) != "" || strings.Contains(got, "\n") {
			t.Errorf("Escape(%q) = %q", a, got)
		}
	}
}

// Every line a Printer writes is one line, with nothing in it that acts on
// a terminal, whatever the other side put in chat, a file name or a
// reason; and the line begins with the marker this program chose.
func TestPrinterEscapesPeerText(t *testing.T) {
	var b bytes.Buffer
	p := NewPrinter(&b, &b)
	check := func(what, prefix string) {
		t.Helper()
		out := b.String()
		b.Reset()
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: not one line: %q", what, out)
		}
		if u := unsafeIn(strings.TrimSuffix(out, "\n")); u != "" {
			t.Errorf("%s: %q reached the terminal in %q", what, u, out)
		}
		if !strings.HasPrefix(out, prefix) {
			t.Errorf("%s: %q does not begin with %q", what, out, prefix)
		}
	}
	for _, a := range attacks {
		// How tryst chat prints a chat line (cmd/tryst).
		p.Say("[%s] peer: %s", "12:00:00", a)
		check("chat "+a, "[12:00:00] peer: ")
		// Other argument types: an error, a Stringer.
		p.Say("* %v", errString(a))
		check("error "+a, "* ")
		p.Event(client.Event{Kind: client.EventFileReceived, File: &client.FileStatus{Name: a, Err: a}})
		check("refusal "+a, "* refused or failed ")
		p.Event(client.Event{Kind: client.EventFileSent, File: &client.FileStatus{Name: a, Err: a}})
		check("failed send "+a, "* failed to send ")
		p.Event(client.Event{Kind: client.EventFileResumed, File: &client.FileStatus{Name: a, Size: 10, Done: 5}})
		check("resume "+a, "* resuming ")
		p.Event(client.Event{Kind: client.EventWarning, Text: a})
		check("warning "+a, "* warning: ")
		p.Event(client.Event{Kind: client.EventProgress, File: &client.FileStatus{Name: a, Size: 10, Done: 10, Started: time.Now()}})
		check("progress "+a, "* ")
	}
	// The refusal line of a name with a right-to-left override shows the
	// name as it is, escaped, not as it would display.
	p.Event(client.Event{Kind: client.EventFileReceived, File: &client.FileStatus{
		Name: "invoice\u202efdp.exe", Err: "refused file name: contains invisible or direction-changing characters",
	}})
	if want := `* refused or failed invoice\u202efdp.exe: refused file name: contains invisible or direction-changing characters` + "\n"; b.String() != want {
		t.Errorf("refusal line %q, want %q", b.String(), want)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// FuzzEscape: what Escape returns never holds a character that acts on a
// terminal (nor a newline, nor invalid UTF-8), text without such a
// character comes back unchanged, and so does every name
// client.ValidateFileName accepts.
func FuzzEscape(f *testing.F) {
	for _, a := range attacks {
		f.Add(a)
	}
	f.Add("report.pdf")
	f.Add(`a\x1b`)
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if u := unsafeIn(got); u != "" || !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q holds %q", s, got, u)
		}
		if unsafeIn(s) == "" && got != s {
			t.Fatalf("Escape(%q) = %q changed printable text", s, got)
		}
		if client.ValidateFileName(s) == nil && got != s {
			t.Fatalf("accepted name %q shown as %q", s, got)
		}
		if len(s) > 0 && len(got) < len(s) {
			t.Fatalf("Escape(%q) = %q dropped something", s, got)
		}
	})
}
