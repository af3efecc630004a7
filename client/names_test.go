package client

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNameRules(t *testing.T) {
	long := strings.Repeat("a", 251) + ".bin" // 255 bytes
	for name, want := range map[string]error{
		"report.pdf":                     nil,
		".bashrc":                        nil,
		"a..b":                           nil,
		"日本語.txt":                        nil,
		"photo 1 🎉.jpg":                  nil,
		long:                             nil,
		strings.Repeat("é", 127) + ".x":  ruleLong, // 256 bytes
		strings.Repeat("é", 126) + ".bi": nil,      // 255 bytes
		"":                               ruleEmpty,
		".":                              ruleEmpty,
		"..":                             ruleEmpty,
		long + "x":                       ruleLong,
		"\xff\xfe":                       ruleUTF8,
		"a\xc3":                          ruleUTF8,
		"\ufffd\ufffd":                   ruleUTF8, // what JSON makes of a name that was not UTF-8
		"../x":                           ruleSeparator,
		`..\x`:                           ruleSeparator,
		"/etc/passwd":                    ruleSeparator,
		"C:evil.exe":                     ruleAbsolute, // a drive on every system, not only on Windows
		"z:x":                            ruleAbsolute,
		"1:x":                            nil,
		"CON":                            ruleWindows,
		"con.txt":                        ruleWindows, // the console, whatever the extension
		"Lpt9.tar.gz":                    ruleWindows,
		"nul .txt":                       ruleWindows,
		"report.pdf.":                    ruleWindows, // Windows strips the dot
		"report ":                        ruleWindows,
		"com10":                          nil,
		"console.log":                    nil,
		"bad\x00name":                    ruleControl,
		"new\nline":                      ruleControl,
		"\x1b[2J.txt":                    ruleControl,
		"bell\x07":                       ruleControl,
		"del\x7f":                        ruleControl,
		"c1\u009b.txt":                   ruleControl,
		"invoice\u202efdp.exe":           ruleInvisible, // shows as invoiceexe.pdf
		"a\u202ab\u202bc\u202cd\u202d":   ruleInvisible,
		"iso\u2066late\u2069":            ruleInvisible,
		"mark\u200e\u200f":               ruleInvisible,
		"arabic\u061cmark":               ruleInvisible,
		"zero\u200bwidth.txt":            ruleInvisible,
		"zwnj\u200c":                     ruleInvisible,
		"zwj\u200d":                      ruleInvisible,
		"word\u2060joiner":               ruleInvisible,
		"\ufeffbom.txt":                  ruleInvisible,
		"soft\u00adhyphen":               ruleInvisible,
		"tag\U000e0041":                  ruleInvisible,
		"line\u2028sep":                  ruleInvisible,
		"para\u2029sep":                  ruleInvisible,
	} {
		if err := ValidateFileName(name); !errors.Is(err, want) {
			t.Errorf("ValidateFileName(%q) = %v, want %v", name, err, want)
		}
	}
}

// What the sender hears of a refusal names the problem and nothing of the
// name or of this side's paths.
func TestNameRefusalReasons(t *testing.T) {
	name := "invoice\u202efdp.exe"
	got := refusedName(ValidateFileName(name))
	if got != "refused file name: contains invisible or direction-changing characters" {
		t.Errorf("reason %q", got)
	}
	if strings.Contains(got, "invoice") {
		t.Errorf("reason %q quotes the name", got)
	}
	if err := ValidateFileName(name); err.Error() != "file name contains invisible or direction-changing characters" {
		t.Errorf("error %q", err)
	}
	for local, want := range map[string]string{
		reasonCorrupted: reasonCorrupted,
		"write: write /home/me/Downloads/x.part: no space left on device": reasonNoWrite,
		"sync: sync /home/me/Downloads/x.part: input/output error":        reasonNoWrite,
		"store: link /home/me/x.part /home/me/x: operation not permitted": reasonNoWrite,
		"": reasonNoWrite,
	} {
		if got := peerReason(local); got != want {
			t.Errorf("peerReason(%q) = %q, want %q", local, got, want)
		}
	}
}

func TestNamePart(t *testing.T) {
	for _, final := range []string{"a.txt", "a (1).txt", strings.Repeat("x", 250), strings.Repeat("x", 251),
		strings.Repeat("y", 255), strings.Repeat("é", 127) + "z", ".tryst-00.part"} {
		p := partName(final)
		if len(p) > maxNameBytes || !strings.HasSuffix(p, ".part") || ValidateFileName(p) != nil {
			t.Errorf("partName(%d bytes) = %q", len(final), p)
		}
		if fits := len(final)+len(".part") <= maxNameBytes; fits != (p == final+".part") {
			t.Errorf("partName(%d bytes) = %q", len(final), p)
		}
		if p != partName(final) {
			t.Errorf("partName(%q) differs between calls", final)
		}
	}
	// Long names get names of their own.
	a, b := partName(strings.Repeat("x", 255)), partName(strings.Repeat("x", 254)+"y")
	if a == b || len(a) != 44 || !strings.HasPrefix(a, ".tryst-") {
		t.Errorf("long part names %q, %q", a, b)
	}
}

func TestNameCandidates(t *testing.T) {
	for _, name := range []string{"a.txt", "noext", ".bashrc", strings.Repeat("a", 251) + ".bin",
		strings.Repeat("日", 83) + ".txt", strings.Repeat("é", 126) + ".bi", "x." + strings.Repeat("e", 253),
		strings.Repeat("🎉", 63) + "abc"} {
		if ValidateFileName(name) != nil {
			t.Fatalf("test name %q refused", name)
		}
		seen := map[string]bool{}
		for _, i := range []int{0, 1, 2, 10, 999} {
			c := candidateName(name, i)
			if err := ValidateFileName(c); err != nil || seen[c] {
				t.Errorf("candidateName(%d bytes, %d) = %q (%d bytes): %v", len(name), i, c, len(c), err)
			}
			seen[c] = true
			if i > 0 && len(name) < 200 && filepath.Ext(name) != "" && filepath.Ext(c) != filepath.Ext(name) {
				t.Errorf("candidateName(%q, %d) = %q lost the extension", name, i, c)
			}
			if !utf8.ValidString(c) {
				t.Errorf("candidateName(%q, %d) = %q", name, i, c)
			}
		}
	}
	if got := candidateName("a.txt", 2); got != "a (2).txt" {
		t.Errorf("candidateName(a.txt, 2) = %q", got)
	}
	if got := candidateName(strings.Repeat("a", 251)+".bin", 1); got != strings.Repeat("a", 247)+" (1).bin" {
		t.Errorf("long candidate %q", got)
	}
}
