package turnserver

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMintCredential(t *testing.T) {
	t.Parallel()
	// Vector computed independently (Python hmac/hashlib), the scheme coturn checks.
	u, p := MintCredential([]byte("north"), "alice", 10*time.Minute, time.Unix(1_700_000_000, 0))
	if u != "1700000600:alice" || p != "gthUwOpcRoLI0MMCziCEBOWYnpo=" {
		t.Fatalf("got %q %q", u, p)
	}
	exp, id, err := parseUsername(u)
	if err != nil || id != "alice" || exp.Unix() != 1_700_000_600 {
		t.Fatalf("parseUsername(%q) = %v %q %v", u, exp, id, err)
	}
}

func TestParseUsername(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"1700000000:alice":      "alice",
		"1700000000":            "",
		"1700000000:":           "",
		"1700000000:a:b":        "a:b",
		"0:x":                   "x",
		"9223372036854775807:x": "x",
	}
	for in, id := range good {
		if _, got, err := parseUsername(in); err != nil || got != id {
			t.Errorf("parseUsername(%q) = %q, %v; want %q", in, got, err, id)
		}
	}
	for _, in := range []string{"", ":alice", "alice", "alice:1700000000", "-1:x", "+1:x", "1e9:x", " 1:x",
		"9223372036854775808:x", "17000000000000000000:x", "1:" + strings.Repeat("a", maxIDLen+1)} {
		if _, _, err := parseUsername(in); err == nil {
			t.Errorf("parseUsername(%q) accepted", in)
		}
	}
}

func TestParseSecrets(t *testing.T) {
	t.Parallel()
	got, err := ParseSecrets([]byte("# rotation: newest first\n\n  new-secret  \r\nold-secret\n#old-old\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != "new-secret" || string(got[1]) != "old-secret" {
		t.Fatalf("got %q", got)
	}
	for _, in := range []string{"", "\n\n", "# only a comment\n", "   \n\t\n"} {
		if _, err := ParseSecrets([]byte(in)); err == nil {
			t.Errorf("ParseSecrets(%q) accepted", in)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	t.Parallel()
	good := map[string][2]int{"49152-65535": {49152, 65535}, "3478": {3478, 3478}, " 1 - 2 ": {1, 2}, "7-7": {7, 7}}
	for in, want := range good {
		lo, hi, err := ParsePortRange(in)
		if err != nil || lo != want[0] || hi != want[1] {
			t.Errorf("ParsePortRange(%q) = %d %d %v", in, lo, hi, err)
		}
	}
	for _, in := range []string{"", "-", "0-10", "10-5", "1-65536", "a-b", "1-2-3", "-5", "5-", "+1-2", "100000"} {
		if _, _, err := ParsePortRange(in); err == nil {
			t.Errorf("ParsePortRange(%q) accepted", in)
		}
	}
}

func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"1700000000:alice", "1700000000", ":", "", "1:a:b", "99999999999999999999:x", "-1:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exp, id, err := parseUsername(s)
		if err != nil {
			return
		}
		// Round trip: an accepted username is rebuilt from its parts.
		ts, _, _ := strings.Cut(s, ":")
		if strconv.FormatInt(exp.Unix(), 10) != strings.TrimLeft(ts, "0") && exp.Unix() != 0 {
			t.Errorf("%q: expiry %d", s, exp.Unix())
		}
		if !strings.HasSuffix(s, id) || len(id) > maxIDLen {
			t.Errorf("%q: id %q", s, id)
		}
	})
}

func FuzzParseSecrets(f *testing.F) {
	for _, s := range []string{"a\nb\n", "# c\n\nsecret\r\n", "", "\x00\n#\n x "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		secrets, err := ParseSecrets(data)
		if err != nil {
			return
		}
		if len(secrets) == 0 {
			t.Fatal("no secrets and no error")
		}
		for _, s := range secrets {
			if len(s) == 0 || s[0] == '#' || !bytes.Equal(s, bytes.TrimSpace(s)) || bytes.ContainsAny(s, "\n") {
				t.Errorf("bad secret %q", s)
			}
		}
	})
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"49152-65535", "3478", "0-1", "5-4", "1-65536", " 1 - 2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if lo < 1 || hi > 65535 || lo > hi {
			t.Errorf("%q: %d-%d", s, lo, hi)
		}
	})
}

// FuzzSTUNPeek exercises the listener-side STUN/ChannelData inspection,
// which sees every packet before pion does.
func FuzzSTUNPeek(f *testing.F) {
	binding := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	data := append([]byte{0x01, 0x17, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		0x00, 0x13, 0x00, 0x03, 'a', 'b', 'c', 0)
	f.Add(binding)
	f.Add(data)
	f.Add([]byte{0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c'})
	f.Add([]byte{0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, c, ok := stunHeader(b); ok {
			if m > 0xFFF || c > 3 {
				t.Fatalf("method %x class %d", m, c)
			}
			for _, typ := range []uint16{attrUsername, attrMessageIntegrity, attrData} {
				if v, ok := stunAttr(b, typ); ok && len(v) > len(b) {
					t.Fatal("attribute longer than message")
				}
			}
		}
		if n, ok := relayedPayload(b); ok && n < 0 {
			t.Fatal("negative payload")
		}
		if len(b) >= 4 {
			if n, ok := channelFrameLen(b[:4]); ok && (n < 4 || n > stunHeaderLen+65535) {
				t.Fatalf("frame length %d", n)
			}
			if isChannelData(b) && binary.BigEndian.Uint16(b[0:2]) < 0x4000 {
				t.Fatal("channel number below 0x4000")
			}
		}
	})
}
