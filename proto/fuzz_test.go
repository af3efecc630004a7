package proto_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tryst-chat/tryst/proto"
)

// codeRE is the canonical spelling of a room code.
var codeRE = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{3}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{3}){5}$`)

// decodeFrameReference is DecodeFrame as it was before the hand-written
// decoder: the same checks, then json.Unmarshal. DecodeFrame must agree with
// it on every input.
func decodeFrameReference(b []byte) (proto.Frame, error) {
	var f proto.Frame
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return f, errors.New("empty frame")
	}
	if !utf8.Valid(b) {
		return f, errors.New("frame is not valid UTF-8")
	}
	if b[0] != '{' {
		return f, errors.New("frame is not a JSON object")
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return proto.Frame{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if f.Type == "" {
		return proto.Frame{}, errors.New(`frame has no "type"`)
	}
	return f, nil
}

// decodeSeeds seed FuzzDecodeFrame (and go test runs each of them):
// every field, escapes, surrogates, case-folded, escaped and duplicate keys,
// nulls, the nested ice object, numbers json.Unmarshal refuses for an int,
// whitespace, and broken JSON.
var decodeSeeds = []string{
	`{"type":"create"}`, `{"type":"join","room":"K7Q-MX2-P9R-TVW-4HN-C8D"}`,
	`{"type":"offer","data":"abc"}`, `{"type":"resume","token":"x"}`, `{`, `[]`, `null`,
	`{"type":"x","peer":true,"ice":{"iceServers":[{"urls":["stun:a"]}],"ttl":1}}`, "\xff", ` {"type":"a"} `,
	`{"type":"create","version":2}`, `{"type":"join","room":"ABCD-1234","version":2}`,
	`{"type":"leave"}`, `{"type":"resume","token":"tok","version":2}`,
	`{"type":"candidate","data":"{\"candidate\":\"candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host\",\"sdpMid\":\"0\"}"}`,
	`{"type":"create","version":2,"auth":"secret"}`, `{"type":"create","version":3}`,
	`{"type":"report","reason":"failed_confirmation"}`, `{"type":"report","reason":"other"}`, `{"type":"report"}`,
	`{"type":"report","reason":null}`, `{"type":"report","reason":"failed_confirmation","reason":"x"}`,
	`{"type":"report","REASON":"failed_confirmation"}`, `{"type":"report","reason":"failed\u005fconfirmation"}`,
	`{"type":"leave","reason":"guess_limit"}`, `{"type":"leave","reason":""}`, `{"type":"leave","reason":5}`,
	`{"type":"room-closed","code":"guess_limit","reason":"the other side closed the room after too many failed password attempts"}`,
	`{"type":"created","room":"R","token":"T","version":2,"role":"host","peer":false,"room_ttl":600}`,
	`{"type":"error","code":"rate_limited","message":"slow \u003c down","reason":"r","retry_after":3}`,
	`{"type":"x","room":"a","token":"b","version":1,"auth":"c","data":"d","role":"e","peer":true,"room_ttl":5,"code":"f","message":"g","reason":"h","retry_after":7}`,
	// Escapes and surrogates.
	`{"type":"a\"b\\c\/d\be\ff\ng\rh\ti"}`, `{"type":"\u0041\u00e9\u20ac\u2028"}`,
	`{"type":"\ud83d\ude00"}`, `{"type":"\ud83d"}`, `{"type":"\ude00"}`, `{"type":"\ud83dx"}`,
	`{"type":"\ud83d\u0041"}`, `{"type":"\ud83d\ud83d\ude00"}`, `{"type":"\uDBFF\uDFFF"}`,
	`{"type":"\u0000"}`, `{"type":"\u12"}`, `{"type":"\x"}`, `{"type":"\'"}`, "{\"type\":\"a\tb\"}",
	`{"type":"héllo €"}`, `{"type":"a","data":"\ud800\udc00\ud800"}`,
	// Case-folded, escaped, unicode-folded and duplicate keys.
	`{"Type":"a"}`, `{"TYPE":"a"}`, `{"type":"a","Type":"b"}`, `{"typ\u0065":"a"}`, `{"type":"a","type":"b"}`,
	`{"type":"a","ROOM":"b"}`, `{"type":"a","toKen":"b"}`, "{\"type\":\"a\",\"to\u212aen\":\"b\"}",
	"{\"type\":\"a\",\"me\u017f\u017fage\":\"b\"}", `{"type":"a","version":1,"version":2}`,
	`{"type":"a","peer":true,"peer":false}`, `{"type":"a","Retry_After":1}`,
	// Nulls and wrong kinds.
	`{"type":null}`, `{"type":"a","room":null}`, `{"type":"a","peer":null}`, `{"type":"a","version":null}`,
	`{"type":"a","ice":null}`, `{"type":1}`, `{"type":"a","version":"2"}`, `{"type":"a","peer":"true"}`,
	`{"type":"a","peer":1}`, `{"type":true}`, `{"type":"a","room":{}}`, `{"type":"a","version":[]}`,
	// Numbers.
	`{"type":"a","version":1e2}`, `{"type":"a","version":-0}`, `{"type":"a","version":2.0}`,
	`{"type":"a","version":-5}`, `{"type":"a","version":01}`, `{"type":"a","version":-}`,
	`{"type":"a","version":9223372036854775807}`, `{"type":"a","version":9223372036854775808}`,
	`{"type":"a","version":-9223372036854775808}`, `{"type":"a","version":123456789012345678}`,
	`{"type":"a","version":99999999999999999999999}`, `{"type":"a","version":1E2}`, `{"type":"a","version":+1}`,
	// Nested ice.
	`{"type":"created","ice":{"iceServers":[{"urls":["stun:s:3478","turn:t:3478?transport=udp"],"username":"u","credential":"c"}],"ttl":3600}}`,
	`{"type":"resumed","ice":{"iceServers":null,"ttl":0,"limited":true,"retry_after":30}}`,
	`{"type":"a","ice":{"iceServers":[{"urls":null}],"ttl":1}}`, `{"type":"a","ice":{"iceServers":[],"ttl":1}}`,
	`{"type":"a","ice":{}}`, `{"type":"a","ice":5}`,
	// Unknown keys.
	`{"type":"a","x":1}`, `{"type":"a","x":"y","z":true,"w":null,"v":false,"u":-1.5e+3}`,
	`{"x":{"type":"b"},"type":"a"}`, `{"type":"a","x":[1,2]}`, `{"type":"a","x":01}`, `{"type":"a","x":1.}`,
	`{"type":"a","x":"\q"}`, `{"type":"a","x":tru}`, `{"type":"a","":1}`, `{"type":"a","ü":1}`,
	// Whitespace and broken JSON.
	"{ \"type\" : \"a\" , \"version\" : 2 }", "\t\r\n{\"type\":\"a\"}\n", "{\"type\":\"a\"}\u00a0",
	`{}`, `{"type":""}`, `{"type":"a"}x`, `{"type":"a"}{}`, `{"type":"a",}`, `{"type" "a"}`, `{"type":"a"`,
	`{"type":"a" "room":"b"}`, `{,"type":"a"}`, `{"type":"a"} `, `{"type`, `{"type":`, `{"type":"a","version":`,
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		fr, err := proto.DecodeFrame(b)
		if !bytes.Equal(in, b) {
			t.Fatal("DecodeFrame modified its input")
		}
		checkDecodeMatchesReference(t, b, fr, err)
		if err != nil {
			return
		}
		if fr.Type == "" {
			t.Fatal("decoded a frame without a type")
		}
		// The strings must not alias b, which callers recycle.
		for i := range b {
			b[i] = '#'
		}
		want, _ := decodeFrameReference(in)
		if !reflect.DeepEqual(fr, want) {
			t.Fatalf("frame changed with its input buffer: %+v, want %+v", fr, want)
		}
		// EncodeFrame writes what json.Marshal writes.
		checkEncodeMatchesJSON(t, fr)
		// What decodes must survive a round trip unchanged.
		out, err := proto.EncodeFrame(fr)
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

// checkDecodeMatchesReference fails t unless DecodeFrame(b), which returned
// fr, err, agrees with decodeFrameReference: the same frame, or the same
// error.
func checkDecodeMatchesReference(t *testing.T, b []byte, fr proto.Frame, err error) {
	t.Helper()
	want, wantErr := decodeFrameReference(b)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("DecodeFrame(%q) = %+v, %v; encoding/json: %+v, %v", b, fr, err, want, wantErr)
	case err != nil && err.Error() != wantErr.Error():
		t.Fatalf("DecodeFrame(%q) error %q; encoding/json: %q", b, err, wantErr)
	case !reflect.DeepEqual(fr, want):
		t.Fatalf("DecodeFrame(%q) = %#v\nencoding/json: %#v", b, fr, want)
	}
}

// checkEncodeMatchesJSON fails t unless EncodeFrame(fr) is json.Marshal(fr).
func checkEncodeMatchesJSON(t *testing.T, fr proto.Frame) {
	t.Helper()
	want, err := json.Marshal(fr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := proto.EncodeFrame(fr)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("EncodeFrame(%#v) = %s, %v\njson.Marshal: %s", fr, got, err, want)
	}
}

// FuzzEncodeFrame checks EncodeFrame against json.Marshal on frames that
// DecodeFrame cannot produce: strings with invalid UTF-8, and any ints.
func FuzzEncodeFrame(f *testing.F) {
	f.Add("create", "", "", "", "", "", "", "", "", 2, 0, 0, uint8(0), "", "", "", 0, false, 0)
	f.Add("offer", "ROOM", "tok", "auth", "v=0\r\n\"sdp\"\\ <a&b> \u2028\u2029 \x00\x1f\x7f", "host", "code", "msg", "why",
		-1, 600, 30, uint8(1), "stun:s:3478", "user", "cred", 3600, true, 5)
	f.Add("\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "é€😀", "\xe2\x80", "\xe2\x80\xa8x", "\b\f\t", "",
		math.MaxInt, math.MinInt, 1, uint8(2), "\xff", "", "", -1, false, 0)
	f.Add("error", "", "", "", "", "guest", "rate_limited", "<script>", "", 0, 0, 7, uint8(3), "", "", "", 0, true, 0)
	f.Add("report", "", "", "", "", "", "", "", "failed_confirmation", 0, 0, 0, uint8(0), "", "", "", 0, false, 0)
	f.Add("room-closed", "", "", "", "", "", "guess_limit", "", "the other side closed the room", 0, 0, 0, uint8(0), "", "", "", 0, false, 0)
	f.Fuzz(func(t *testing.T, typ, room, token, auth, data, role, code, message, reason string,
		version, roomTTL, retryAfter int, shape uint8, url, username, credential string, ttl int, flag bool, iceRetry int,
	) {
		fr := proto.Frame{
			Type: typ, Room: room, Token: token, Version: version, Auth: auth, Data: data, Role: role,
			RoomTTL: roomTTL, Code: code, Message: message, Reason: reason, RetryAfter: retryAfter,
		}
		// shape picks the pointers: peer, ice, and what ice holds.
		if shape&1 != 0 {
			peer := flag
			fr.Peer = &peer
		}
		if shape&2 != 0 {
			fr.ICE = &proto.ICEConfig{TTL: ttl, Limited: flag, RetryAfter: iceRetry}
			switch shape >> 2 & 3 {
			case 1:
				fr.ICE.Servers = []proto.ICEServer{}
			case 2:
				fr.ICE.Servers = []proto.ICEServer{{URLs: []string{url, data}, Username: username, Credential: credential}}
			case 3:
				fr.ICE.Servers = []proto.ICEServer{{Username: username}, {URLs: []string{}}, {URLs: []string{url}, Credential: credential}}
			}
		}
		checkEncodeMatchesJSON(t, fr)
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
