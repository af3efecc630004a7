package proto_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/proto"
)

// offerData is what a client puts in an offer's data: a session description
// of about 2 kB, itself JSON, so that it holds quotes and backslashes, and
// escaped line breaks.
var offerData = func() string {
	var sdp strings.Builder
	sdp.WriteString("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n" +
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=ice-ufrag:Zx3k\r\na=ice-pwd:q4s9+Lk2mV0pR7tYwE1uI8oP\r\na=ice-options:trickle\r\n" +
		"a=fingerprint:sha-256 4F:A1:0C:7B:22:9E:D3:51:6A:8F:E0:14:B7:C2:39:5D:AA:61:F8:03:9B:4E:C7:12:D5:6F:80:3A:E9:27:BC:44\r\n" +
		"a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n")
	for i := 0; sdp.Len() < 1900; i++ {
		fmt.Fprintf(&sdp, "a=candidate:%d 1 udp 2122260223 192.0.2.%d %d typ host generation 0 network-id 1\r\n", 1000+i, i+1, 50000+i)
	}
	b, err := json.Marshal(struct {
		Type    string `json:"type"`
		SDP     string `json:"sdp"`
		Version int    `json:"version"`
	}{"offer", sdp.String(), proto.ProtocolVersion})
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// benchFrames are the frames the benchmarks and the allocation test use: the
// big one the hub forwards, and the small ones it gets most.
var benchFrames = []struct {
	name string
	f    proto.Frame
}{
	{"offer2k", proto.Frame{Type: proto.TypeOffer, Data: offerData}},
	{"create", proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion}},
}

func TestFrameCodecIsLean(t *testing.T) {
	// The common frames take the hand-written path: encoding them costs
	// one allocation, decoding them one per string that is not a known
	// type (json.Unmarshal would take several).
	for _, tc := range []struct {
		frame       string
		decodeAlloc float64
	}{
		{`{"type":"create","version":3}`, 0},
		{`{"type":"leave"}`, 0},
		{`{"type":"leave","reason":"guess_limit"}`, 0},
		{`{"type":"report","reason":"failed_confirmation"}`, 0},
		{`{"type":"join","room":"ABCD-1234","version":3}`, 1},
		{`{"type":"resume","token":"dG9rZW4","version":3}`, 1},
		{`{"type":"candidate","data":"{\"candidate\":\"candidate:1 1 udp 1 192.0.2.1 5 typ host\"}"}`, 1},
		{`{"type":"created","room":"ABCD-1234","token":"dG9rZW4","version":3,"role":"host","room_ttl":600}`, 2},
		{`{"type":"error","code":"rate_limited","message":"slow down","retry_after":3}`, 2},
		{`{"type":"offer","data":` + strings.TrimSuffix(string(mustMarshal(t, offerData)), "\n") + `}`, 1},
		{`{"type":"offer","unknown":"x","n":1.5e3,"b":false}`, 0},
	} {
		b := []byte(tc.frame)
		want, err := decodeFrameReference(b)
		if err != nil {
			t.Fatal(err)
		}
		checkDecodeMatchesReference(t, b, want, nil)
		if n := testing.AllocsPerRun(100, func() { _, _ = proto.DecodeFrame(b) }); n != tc.decodeAlloc {
			t.Errorf("DecodeFrame(%.60s) allocates %v times, want %v", tc.frame, n, tc.decodeAlloc)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = proto.EncodeFrame(want) }); n != 1 {
			t.Errorf("EncodeFrame(%.60s) allocates %v times, want 1", tc.frame, n)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeFrameMatchesJSON(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	for _, f := range []proto.Frame{
		{},
		{Type: proto.TypeOffer, Data: offerData},
		{Type: proto.TypeCreated, Room: "R", Token: "T", Version: 2, Role: "host", Peer: &no, RoomTTL: 600},
		{Type: proto.TypeResumed, Peer: &yes, ICE: &proto.ICEConfig{}},
		{Type: proto.TypeResumed, ICE: &proto.ICEConfig{Servers: []proto.ICEServer{}, Limited: true, RetryAfter: 30}},
		{Type: proto.TypeJoined, ICE: &proto.ICEConfig{TTL: 3600, Servers: []proto.ICEServer{
			{URLs: []string{"stun:s:3478"}},
			{URLs: []string{"turn:t:3478?transport=udp", "turns:t:5349"}, Username: "1700000000:u", Credential: "c/+="},
			{URLs: []string{}}, {},
		}}},
		{Type: proto.TypeError, Code: proto.CodeRateLimited, Message: "<b>&</b>\u2028\u2029\x00\x1f\x7f\xff", Reason: "r", RetryAfter: -3},
		{Type: "a", Auth: "x", Version: -1 << 63, RoomTTL: 1<<63 - 1},
	} {
		checkEncodeMatchesJSON(t, f)
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	for _, tc := range benchFrames {
		b.Run(tc.name, func(b *testing.B) {
			b.Run("proto", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := proto.EncodeFrame(tc.f); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("encoding-json", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := json.Marshal(tc.f); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, tc := range benchFrames {
		msg, err := proto.EncodeFrame(tc.f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.Run("proto", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					if _, err := proto.DecodeFrame(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("encoding-json", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					if _, err := decodeFrameReference(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// TestDecodeFrameRandomObjects builds objects from the pieces that the
// hand-written decoder must tell apart, and checks DecodeFrame against
// encoding/json on each: it reaches combinations that byte-level fuzzing
// finds slowly.
func TestDecodeFrameRandomObjects(t *testing.T) {
	t.Parallel()
	keys := []string{
		"type", "room", "token", "version", "auth", "data", "role", "peer", "ice", "room_ttl",
		"code", "message", "reason", "retry_after", "Type", "VERSION", "Peer", "x", "", "typ\\u0065",
		"to\u212aen", "ü", "retry_After", "ttl", "iceServers",
	}
	values := []string{
		`"create"`, `"offer"`, `"host"`, `""`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u2028"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`, `"\uD83D\uDE00\uD83D"`, `"é€😀"`, `"<&>"`, `"\u0000"`,
		`0`, `-0`, `2`, `-7`, `01`, `1.5`, `1e2`, `2.0`, `9223372036854775807`, `-9223372036854775808`,
		`9223372036854775808`, `123456789012345678`, `1234567890123456789`, `-`, `true`, `false`, `null`, `tru`,
		`{}`, `[]`, `{"iceServers":[{"urls":["stun:a"],"username":"u"}],"ttl":5}`, `{"iceServers":null,"limited":true}`,
		`"\x"`, `"unterminated`,
	}
	spaces := []string{"", "", "", " ", "\n\t", "\r"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	var sb strings.Builder
	for range 50000 {
		sb.Reset()
		sb.WriteString("{")
		n := rng.IntN(5)
		for i := range n {
			if i > 0 {
				sb.WriteString(pick(spaces) + ",")
			}
			key := pick(keys)
			if i == 0 && rng.IntN(2) == 0 {
				key = "type"
			}
			val := pick(values)
			if key == "type" && rng.IntN(2) == 0 {
				val = `"create"`
			}
			sb.WriteString(pick(spaces) + `"` + key + `"` + pick(spaces) + ":" + pick(spaces) + val)
		}
		sb.WriteString(pick(spaces) + "}")
		if rng.IntN(20) == 0 {
			sb.WriteString(pick([]string{",", "}", "x", " {}"}))
		}
		b := []byte(sb.String())
		fr, err := proto.DecodeFrame(b)
		checkDecodeMatchesReference(t, b, fr, err)
		if err == nil {
			checkEncodeMatchesJSON(t, fr)
		}
	}
}
