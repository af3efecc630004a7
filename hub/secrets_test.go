package hub_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/hub"
)

func TestParseTokenSecrets(t *testing.T) {
	data := []byte("# rotated 2026-11\n\n  new-token-secret-0123  \r\nold-token-secret-0123\n#old-old\n")
	got, err := hub.ParseTokenSecrets(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != "new-token-secret-0123" || string(got[1]) != "old-token-secret-0123" {
		t.Fatalf("got %q", got)
	}
	// The secrets do not alias the file's bytes.
	copy(data, bytes.Repeat([]byte("x"), len(data)))
	if string(got[0]) != "new-token-secret-0123" {
		t.Error("a secret aliases the input")
	}

	for _, in := range []string{"", "\n\n", "# only a comment\n", "   \n#x\n"} {
		if _, err := hub.ParseTokenSecrets([]byte(in)); !errors.Is(err, hub.ErrNoTokenSecret) {
			t.Errorf("ParseTokenSecrets(%q) = %v, want ErrNoTokenSecret", in, err)
		}
	}
	// A short secret is refused, numbered and measured, never quoted.
	_, err = hub.ParseTokenSecrets([]byte("long-enough-token-secret\n# c\ntooshort\n"))
	if err == nil || !strings.Contains(err.Error(), "secret 2 is 8 bytes") || !strings.Contains(err.Error(), "16 bytes") ||
		strings.Contains(err.Error(), "tooshort") {
		t.Errorf("short secret: %v", err)
	}
}

func FuzzParseTokenSecrets(f *testing.F) {
	for _, s := range []string{"", "#\n", "0123456789abcdef\n", " a\r\n0123456789abcdef0\n", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		secrets, err := hub.ParseTokenSecrets(data)
		if err != nil {
			return
		}
		for _, s := range secrets {
			if len(s) < hub.MinTokenSecretLen || s[0] == '#' || len(bytes.TrimSpace(s)) != len(s) ||
				bytes.ContainsAny(s, "\n") {
				t.Fatalf("bad secret %q from %q", s, data)
			}
		}
	})
}
