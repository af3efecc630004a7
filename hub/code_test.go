package hub_test

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
)

var b64 = base64.RawURLEncoding

func TestRoomCodeAlphabetAndEntropy(t *testing.T) {
	t.Parallel()
	// 18 symbols from a 30-symbol alphabet: log2(30^18) = 88.3 bits.
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		th := newCodeForTest(t)
		if seen[th] {
			t.Fatalf("duplicate code %q", th)
		}
		seen[th] = true
		for _, r := range th {
			counts[r]++
		}
	}
	for _, bad := range "01ILOU" {
		if counts[bad] > 0 {
			t.Errorf("ambiguous symbol %q used", bad)
		}
	}
	// Every symbol of the alphabet shows up (2000*18/30 = 1200 expected each).
	for _, r := range "23456789ABCDEFGHJKMNPQRSTVWXYZ" {
		if counts[r] < 900 || counts[r] > 1500 {
			t.Errorf("symbol %q appeared %d times; expected about 1200", r, counts[r])
		}
	}
}

func newCodeForTest(t *testing.T) string {
	t.Helper()
	return hub.NewRoomCodeForTest()
}

func TestAccessTokens(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	old := []byte("fedcba9876543210fedcba9876543210")
	now := time.Unix(1_800_000_000, 0)
	tok, err := hub.MintAccessToken(secret, "bob", 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.VerifyAccessToken([][]byte{old, secret}, tok, now); err != nil {
		t.Errorf("valid token (rotated secret list) rejected: %v", err)
	}
	for name, c := range map[string]struct {
		secrets [][]byte
		tok     string
		now     time.Time
	}{
		"wrong secret": {[][]byte{old}, tok, now},
		"expired":      {[][]byte{secret}, tok, now.Add(11 * time.Minute)},
		"alg none":     {[][]byte{secret}, b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + b64.EncodeToString([]byte(`{"exp":1900000000}`)) + ".", now},
		"too long-lived": {[][]byte{secret}, func() string {
			// Hand-sign a token that lives for a year.
			return hub.SignForTest(secret, `{"exp":1831536000}`)
		}(), now},
		"no exp":  {[][]byte{secret}, hub.SignForTest(secret, `{"sub":"x"}`), now},
		"garbage": {[][]byte{secret}, "not-a-jwt", now},
	} {
		if err := hub.VerifyAccessToken(c.secrets, c.tok, c.now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := hub.MintAccessToken(secret, "x", 48*time.Hour, now); err == nil {
		t.Error("minted a token beyond the maximum lifetime")
	}
}

// TestProtocolDocVectors keeps docs/PROTOCOL.md honest: its access-token
// test vector and its alphabet are what the code produces.
func TestProtocolDocVectors(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := hub.MintAccessToken([]byte("0123456789abcdef0123456789abcdef"), "alice", 5*time.Minute, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{tok, "`23456789ABCDEFGHJKMNPQRSTVWXYZ`", "64 KiB", "`GET /v1/ws`"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/PROTOCOL.md lacks %q", want)
		}
	}
}
