package web

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/internal/testenv"
	"github.com/tryst-chat/tryst/proto"
)

// TestProtocolConstantsMatchGo imports the browser's protocol.js under
// Node and compares every constant it shares with Go's proto package: the
// two clients cannot drift apart on a number of the wire.
func TestProtocolConstantsMatchGo(t *testing.T) {
	t.Parallel()
	node := testenv.Tool(t, "node", "nodejs")
	out, err := exec.Command(node, "--input-type=module", "-e",
		`import * as p from "./static/protocol.js"; console.log(JSON.stringify(p));`).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var js map[string]any
	if err := json.Unmarshal(out, &js); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	ms := func(d interface{ Milliseconds() int64 }) float64 { return float64(d.Milliseconds()) }
	want := map[string]any{
		"PROTOCOL_VERSION":         float64(proto.ProtocolVersion),
		"GUESS_LIMIT":              float64(e2e.GuessLimit),
		"ROOM_CODE_ALPHABET":       proto.RoomCodeAlphabet,
		"ROOM_CODE_LEN":            float64(proto.RoomCodeLen),
		"RECONNECT_BACKOFF_MAX_MS": ms(proto.ReconnectBackoffMax),
		"CONTROL_LABEL":            proto.ControlLabel,
		"BULK_LABEL":               proto.BulkLabel,
		"CONTROL_CHANNEL":          float64(proto.ControlChannel),
		"BULK_CHANNEL":             float64(proto.BulkChannel),
		"FRAME_OVERHEAD":           float64(proto.FrameOverhead),
		"CHUNK_HEADER":             float64(proto.ChunkHeader),
		"MAX_MESSAGE_SIZE":         float64(proto.MaxMessageSize),
		"MAX_CHUNK_DATA":           float64(proto.MaxChunkData),
		"DEFAULT_CHUNK_DATA":       float64(proto.DefaultChunkData),
		"MAX_CHAT_TEXT":            float64(proto.MaxChatText),
		"ACK_EVERY":                float64(proto.AckEvery),
		"PING_INTERVAL_MS":         ms(proto.PingInterval),
		"PEER_TIMEOUT_MS":          ms(proto.PeerTimeout),
		"GATHER_TIMEOUT_MS":        ms(proto.GatherTimeout),
	}
	// The words of report and leave, and room-closed's code
	// (docs/PROTOCOL.md, "PAKE").
	want["REPORT_FAILED_CONFIRMATION"] = proto.ReportFailedConfirmation
	want["CLOSED_GUESS_LIMIT"] = proto.ClosedGuessLimit
	for k, v := range want {
		if js[k] != v {
			t.Errorf("protocol.js %s = %v, Go %v", k, js[k], v)
		}
	}
	msgs := map[string]int{
		"CONFIRM": proto.MsgConfirm, "CHAT": proto.MsgChat, "CHAT_ACK": proto.MsgChatAck, "PING": proto.MsgPing,
		"PONG": proto.MsgPong, "FILE_OFFER": proto.MsgFileOffer, "FILE_ACCEPT": proto.MsgFileAccept,
		"FILE_CHUNK": proto.MsgFileChunk, "FILE_ACK": proto.MsgFileAck, "FILE_DONE": proto.MsgFileDone,
		"FILE_RESULT": proto.MsgFileResult, "BYE": proto.MsgBye,
	}
	got, _ := js["MSG"].(map[string]any)
	if len(got) != len(msgs) {
		t.Errorf("protocol.js MSG has %d types, Go %d", len(got), len(msgs))
	}
	for k, v := range msgs {
		if got[k] != float64(v) {
			t.Errorf("protocol.js MSG.%s = %v, Go %d", k, got[k], v)
		}
	}
}
