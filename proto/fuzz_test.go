package proto_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/proto"
)

// codeRE is the canonical spelling of a room code.
var codeRE = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{3}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{3}){5}$`)

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"create"}`, `{"type":"join","room":"K7Q-MX2-P9R-TVW-4HN-C8D"}`,
		`{"type":"offer","data":"abc"}`, `{"type":"resume","token":"x"}`, `{`, `[]`, `null`,
		`{"type":"x","peer":true,"ice":{"iceServers":[{"urls":["stun:a"]}],"ttl":1}}`, "\xff", ` {"type":"a"} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := proto.DecodeFrame(b)
		if err != nil {
			return
		}
		if fr.Type == "" {
			t.Fatal("decoded a frame without a type")
		}
		// What decodes must survive a round trip unchanged.
		out, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		again, err := proto.DecodeFrame(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if again.Type != fr.Type || again.Data != fr.Data || again.Room != fr.Room || again.Token != fr.Token {
			t.Fatalf("round trip changed the frame: %+v -> %+v", fr, again)
		}
	})
}

func FuzzNormalizeRoomCode(f *testing.F) {
	for _, s := range []string{"K7Q-MX2-P9R-TVW-4HN-C8D", "k7q mx2 p9r tvw 4hn c8d", "", "O0O", strings.Repeat("2", 19)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := proto.NormalizeRoomCode(s)
		if err != nil {
			return
		}
		if !codeRE.MatchString(code) {
			t.Fatalf("%q normalised to non-canonical %q", s, code)
		}
		if again, err := proto.NormalizeRoomCode(code); err != nil || again != code {
			t.Fatalf("not idempotent: %q -> %q, %v", code, again, err)
		}
	})
}
