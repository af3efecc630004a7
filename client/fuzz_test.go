package client

import (
	"encoding/json"
	"testing"

	"github.com/tryst-chat/tryst/proto"
)

// chunkFrame frames a file chunk as sendFile does: the data sits after
// proto.ChunkHeader bytes that putChunkHeader fills in. It allocates where sendFile
// reuses one frame, which changes no byte.
func chunkFrame(id uint64, offset int64, data []byte) []byte {
	frame := make([]byte, proto.ChunkHeader+len(data))
	copy(frame[proto.ChunkHeader:], data)
	putChunkHeader(frame, id, offset)
	return frame
}

// FuzzDecodeChunk: every payload decodeChunk accepts carries at most
// proto.MaxChunkData bytes of data and is exactly what the sender's framing
// makes of the decoded chunk, so decoding that frame gives
// the chunk back (decode(encode(x)) == x for every x decodeChunk can return).
func FuzzDecodeChunk(f *testing.F) {
	f.Add(chunkFrame(7, 16384, []byte("data")))
	f.Add([]byte{})
	f.Add(make([]byte, 15))
	f.Add(chunkFrame(1, 0, make([]byte, proto.MaxChunkData)))
	f.Add(chunkFrame(1, 0, make([]byte, proto.MaxChunkData+1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, off, data, err := decodeChunk(b)
		if err != nil {
			return
		}
		if len(data) > proto.MaxChunkData {
			t.Fatalf("accepted %d bytes of data, more than %d", len(data), proto.MaxChunkData)
		}
		if off < 0 {
			t.Fatalf("negative offset %d", off)
		}
		if again := chunkFrame(id, off, data); string(again) != string(b) {
			t.Fatal("chunk does not round-trip")
		}
	})
}

// FuzzControlPayloads feeds arbitrary JSON to every control decoder: they
// must reject or accept without panicking, and file names that pass
// validation must be plain names.
func FuzzControlPayloads(f *testing.F) {
	for _, s := range []string{`{"id":1,"text":"hi","ts":1}`, `{"id":1,"name":"../x","size":-1,"sha256":""}`,
		`{"id":1,"offset":99999999999}`, `{"sdp":"v=0","nonce":"AAAA"}`, `{"sdp":"v=0","nonce":"AAAA","version":2}`, `null`, `[]`, `{"id":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			c  chatPayload
			a  ackPayload
			o  fileOffer
			fa fileAccept
			fk fileAck
			fr fileResult
			op offerPayload
			ap answerPayload
			cp controlPayload
		)
		for _, v := range []any{&c, &a, &o, &fa, &fk, &fr, &op, &ap, &cp} {
			_ = decodeJSON(b, v)
		}
		if json.Unmarshal(b, &o) == nil && ValidateFileName(o.Name) == nil {
			for _, r := range o.Name {
				if r == '/' || r == '\\' || r == 0 {
					t.Fatalf("accepted name %q", o.Name)
				}
			}
			if o.Name == ".." || o.Name == "." {
				t.Fatalf("accepted name %q", o.Name)
			}
		}
	})
}
