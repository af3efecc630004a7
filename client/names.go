package client

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The names a receiver accepts from the other side, the names it stores
// them under, and what it tells the sender when it does not (docs/PROTOCOL.md,
// "Receiving safely"). The other side is not trusted: a name it offers may
// try to leave the output directory, to pass for another name on screen
// ("invoice\u202efdp.exe" shows as "invoiceexe.pdf"), or to be too long for
// the temporary name; what the receiver answers must not tell it where the
// files go.

// maxNameBytes is NAME_MAX on Linux and macOS: a name's length in bytes
// (UTF-8). Windows counts UTF-16 units, never more than the UTF-8 bytes.
const maxNameBytes = 255

// nameRule is why a name was refused. Its text is fixed, so that it can
// go to the sender as it is: it never quotes the name.
type nameRule string

// The rules a name can break, in the order ValidateFileName checks them.
const (
	ruleEmpty     nameRule = `is empty, "." or ".."`
	ruleLong      nameRule = "is longer than 255 bytes"
	ruleUTF8      nameRule = "is not valid UTF-8"
	ruleSeparator nameRule = "contains a path separator"
	ruleAbsolute  nameRule = "names a drive or an absolute path"
	ruleControl   nameRule = "contains control characters"
	ruleInvisible nameRule = "contains invisible or direction-changing characters"
	ruleWindows   nameRule = "is a device name or ends with a dot or a space, which Windows cannot store"
)

func (r nameRule) Error() string { return "file name " + string(r) }

// ValidateFileName checks a name offered by the other side. It must be a
// plain file name: not empty, "." or "..", at most 255 bytes of valid
// UTF-8 without U+FFFD, no path separator ("/" or "\"), no drive, and no character for
// which UnsafeRune reports true: control characters (C0, DEL, C1), format
// characters (bidi controls, zero-width characters…) and line or paragraph
// separators, which act on the terminal, hide, or reorder what a person
// reads. The error's text never quotes the name.
func ValidateFileName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return ruleEmpty
	case len(name) > maxNameBytes:
		return ruleLong
	case !utf8.ValidString(name):
		return ruleUTF8
	case strings.ContainsAny(name, `/\`):
		return ruleSeparator
	case filepath.IsAbs(name) || filepath.VolumeName(name) != "" || hasDriveLetter(name):
		return ruleAbsolute
	}
	for _, r := range name {
		switch {
		case r == utf8.RuneError:
			// JSON carries a name that was not UTF-8 where it was sent
			// with U+FFFD in place of each bad byte.
			return ruleUTF8
		case unicode.IsControl(r):
			return ruleControl
		case UnsafeRune(r):
			return ruleInvisible
		}
	}
	if windowsReserved(name) {
		return ruleWindows
	}
	return nil
}

// windowsReserved reports a name Windows cannot create as a plain file:
// a device name (CON, PRN, AUX, NUL, COM1–COM9, LPT1–LPT9, in any case,
// with or without an extension: "con.txt" is the console) or one ending
// in a dot or a space (silently stripped, so "a.exe." would become
// "a.exe"). Refused on every system, so that both clients refuse the same
// names wherever the receiver runs.
func windowsReserved(name string) bool {
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return true
	}
	stem, _, _ := strings.Cut(name, ".")
	stem = strings.ToUpper(strings.TrimRight(stem, " "))
	switch stem {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	return len(stem) == 4 && (strings.HasPrefix(stem, "COM") || strings.HasPrefix(stem, "LPT")) && '1' <= stem[3] && stem[3] <= '9'
}

// UnsafeRune reports whether r must never reach a person's screen as it is:
// a control character (C0 with ESC, BEL, CR, BS…; DEL; C1), a format
// character (Unicode category Cf: the bidi controls U+202A–U+202E,
// U+2066–U+2069, U+200E, U+200F, U+061C; the zero-width U+200B–U+200D,
// U+2060, U+FEFF; soft hyphen, tag characters…), or a line or paragraph
// separator (U+2028, U+2029). Such a character moves the cursor, talks to
// the terminal, hides, or changes the order of what is shown. A name with
// one is refused; a terminal shows one escaped (internal/termui).
func UnsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// refusedName is the reason sent to the sender for a name
// ValidateFileName refused.
func refusedName(err error) string {
	if r, ok := err.(nameRule); ok {
		return "refused file name: " + string(r)
	}
	return "refused file name"
}

// What the receiver tells the sender when a file could not be stored:
// fixed texts. The receiver's own event keeps the detailed error, whose
// text names paths in the output directory (an *os.PathError), which the
// other side has no business knowing.
const (
	reasonMalformed = "malformed file offer"
	reasonCorrupted = "SHA-256 mismatch: the file was corrupted"
	reasonNoCreate  = "the receiver cannot store the file"
	reasonNoWrite   = "the receiver could not write the file"
)

// peerReason is what the sender is told of a failure whose local text is
// local: reasonCorrupted as it is, any other text (a write, sync or
// store error) as reasonNoWrite.
func peerReason(local string) string {
	if local == reasonCorrupted {
		return local
	}
	return reasonNoWrite
}

// partSuffix ends the name of the temporary file a transfer writes.
const partSuffix = ".part"

// partName is the name of the temporary file that receives the file to be
// stored under the name final (a base name, as chosen by the store: "a.txt",
// "a (1).txt"…), in the same directory. It is final+".part" where that fits
// in maxNameBytes, so a person sees what is arriving; for a longer final
// name (up to maxNameBytes) it is ".tryst-" followed by 32 hex digits of
// final's SHA-256, then ".part" (44 bytes).
//
// It is a pure function of final: whoever knows the final name (the store
// when it creates the file, a transfer resumed from saved state) finds the
// same file. The offer's id is not an input: final names are already unique
// among the transfers under way (the store picks one whose .part does not
// exist), and a name that depends on the id would make a short name and a
// long one resume by different rules. The rule is local to this client;
// the protocol does not name the temporary file.
func partName(final string) string {
	if len(final)+len(partSuffix) <= maxNameBytes {
		return final + partSuffix
	}
	sum := sha256.Sum256([]byte(final))
	return ".tryst-" + hex.EncodeToString(sum[:16]) + partSuffix
}

// candidateName is the i-th name tried for storing a file offered as name:
// name itself, then "stem (1).ext", "stem (2).ext"…, the stem cut short
// (at a character boundary) where the whole would pass maxNameBytes. An
// extension too long to keep counts as part of the stem. A name that
// ValidateFileName accepts gives names it accepts.
func candidateName(name string, i int) string {
	if i == 0 {
		return name
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	mark := fmt.Sprintf(" (%d)", i)
	if len(mark)+len(ext) > maxNameBytes/2 {
		stem, ext = name, ""
	}
	if over := len(stem) + len(mark) + len(ext) - maxNameBytes; over > 0 {
		cut := len(stem) - over
		for cut > 0 && !utf8.RuneStart(stem[cut]) {
			cut--
		}
		stem = stem[:cut]
	}
	return stem + mark + ext
}

// hasDriveLetter reports a name that starts like a Windows drive ("C:"),
// which filepath.VolumeName sees only on Windows: the rule is the same on
// every system, so that the browser (which cannot know where the file
// lands) and a receiver on any OS refuse the same names.
func hasDriveLetter(name string) bool {
	return len(name) >= 2 && name[1] == ':' && ('a' <= name[0]|0x20 && name[0]|0x20 <= 'z')
}
