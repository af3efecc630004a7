package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/client/e2e/specvectors"
	"github.com/tryst-chat/tryst/proto"
)

// TestSpecPayloads checks the Go client's own encoders against
// docs/PROTOCOL.md's vectors: the sealed JSON payloads and the file chunk.
func TestSpecPayloads(t *testing.T) {
	vs, err := specvectors.Load("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	get := map[string]*specvectors.Vector{}
	for _, v := range vs {
		get[v.Name] = v
	}
	text := func(v, k string) string { s, _ := get[v].Text(k); return s }
	hexv := func(v, k string) []byte { b, _ := get[v].Hex(k); return b }
	var o offerPayload
	if err := json.Unmarshal([]byte(text("seal-offer", "plaintext")), &o); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(o); string(b) != text("seal-offer", "plaintext") {
		t.Errorf("offer: %s", b)
	}
	if o.Version != proto.ProtocolVersion {
		t.Errorf("offer version %d, want %d", o.Version, proto.ProtocolVersion)
	}
	if fp, _ := e2e.Fingerprint(o.SDP); fp != text("session", "fp_host") {
		t.Errorf("offer fingerprint %s", fp)
	}
	var a answerPayload
	if err := json.Unmarshal([]byte(text("seal-answer", "plaintext")), &a); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(a); string(b) != text("seal-answer", "plaintext") {
		t.Errorf("answer: %s", b)
	}
	if a.Version != proto.ProtocolVersion {
		t.Errorf("answer version %d, want %d", a.Version, proto.ProtocolVersion)
	}
	if b, _ := json.Marshal(answerPayload{Mismatch: true}); string(b) != text("seal-mismatch", "plaintext") {
		t.Errorf("mismatch: %s", b)
	}
	if b, _ := json.Marshal(controlPayload{Restart: true}); string(b) != text("seal-restart", "plaintext") {
		t.Errorf("restart: %s", b)
	}
	if b, _ := json.Marshal(controlPayload{Restart: true, Relay: true}); string(b) != text("seal-restart-relay", "plaintext") {
		t.Errorf("restart with relay: %s", b)
	}
	if b, _ := json.Marshal(chatPayload{ID: 1, Text: "hi", TS: 1800000000000}); string(b) != text("frame-chat", "payload") {
		t.Errorf("chat: %s", b)
	}
	if b, _ := json.Marshal(ackPayload{ID: 1}); string(b) != text("frame-chat-ack", "payload") {
		t.Errorf("chat-ack: %s", b)
	}
	id, _ := strconv.ParseUint(text("file-chunk", "id"), 10, 64)
	off, _ := strconv.ParseInt(text("file-chunk", "offset"), 10, 64)
	data := hexv("file-chunk", "data_hex")
	frame := make([]byte, proto.ChunkHeader+len(data))
	putChunkHeader(frame, id, off)
	copy(frame[proto.ChunkHeader:], data)
	if want := hexv("file-chunk", "payload_hex"); !bytes.Equal(frame, want) {
		t.Errorf("chunk %s", hex.EncodeToString(frame))
	}
	if gid, goff, gdata, err := decodeChunk(frame); err != nil || gid != id || goff != off || !bytes.Equal(gdata, data) {
		t.Errorf("decodeChunk: %d %d %x %v", gid, goff, gdata, err)
	}
}
