package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tryst-chat/tryst/proto"
)

// Signaling payloads, sealed into hub blobs.
type offerPayload struct {
	SDP   string `json:"sdp"`
	Nonce []byte `json:"nonce"` // nonce_host, 32 bytes (base64 in JSON)
	// RelayWait: this offer's connection waits before it accepts a relayed
	// pair (it may go direct), and its host honours a relay restart
	// request: a relay-only guest asks for one instead of answering.
	RelayWait bool `json:"relay_wait,omitempty"`
	// Version is the data channel's protocol version the host speaks
	// (proto.ProtocolVersion); absent (0) from a version-1 host, which
	// knows one channel only.
	Version int `json:"version,omitempty"`
}

type answerPayload struct {
	SDP        string `json:"sdp,omitempty"`
	Nonce      []byte `json:"nonce,omitempty"`       // nonce_guest
	OfferNonce []byte `json:"offer_nonce,omitempty"` // the offer this answers
	Mismatch   bool   `json:"mismatch,omitempty"`
	// Version: as in offerPayload. A mismatch answer carries none.
	Version int `json:"version,omitempty"`
}

// minPeerVersion is the oldest protocol version a peer may speak: before
// version 3 the keys came from the password alone (docs/PROTOCOL.md,
// "Versions"). Such a peer's blobs start with "v1." (e2e.ErrOldPeer); a
// sealed payload of version 3's format saying less is refused the same way.
const minPeerVersion = 3

// noticeOldPeer is what a user is told when the other side's client
// speaks an older protocol version: nothing ends, the room waits for it to
// be updated.
const noticeOldPeer = "the other person's Tryst speaks an older protocol version; it must be updated " +
	"(reload the page, or install a newer tryst)"

// controlPayload travels as a sealed "candidate" blob: the hub relays it
// without storing it.
type controlPayload struct {
	Restart bool `json:"restart,omitempty"` // guest asks the host for a fresh offer
	// Relay (with Restart): the guest is relay-only, so the next offer's
	// connection may take the first relayed pair that works (rtc.Waits).
	Relay bool `json:"relay,omitempty"`
}

type chatPayload struct {
	ID   uint64 `json:"id"`
	Text string `json:"text"`
	TS   int64  `json:"ts"` // sender's clock, Unix milliseconds
}

type ackPayload struct {
	ID uint64 `json:"id"`
}

type pingPayload struct {
	T int64 `json:"t"` // sender's monotonic-ish nanoseconds, echoed in pong
}

type fileOffer struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size"`
	// SHA256 is the whole file's, in hex, or empty: a sender that hashes
	// while sending (the browser) gives it in file-done instead.
	SHA256 string `json:"sha256,omitempty"`
}

type fileAccept struct {
	ID     uint64 `json:"id"`
	Offset int64  `json:"offset"`
	Reject string `json:"reject,omitempty"`
}

type fileAck struct {
	ID     uint64 `json:"id"`
	Offset int64  `json:"offset"`
}

type fileDone struct {
	ID uint64 `json:"id"`
	// SHA256 is the whole file's, in hex, when the offer did not carry it.
	SHA256 string `json:"sha256,omitempty"`
}

type fileResult struct {
	ID    uint64 `json:"id"`
	OK    bool   `json:"ok"`
	Name  string `json:"name,omitempty"`
	Error string `json:"error,omitempty"`
}

func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}

var errBadChunk = errors.New("malformed file chunk")

// decodeChunk splits a file-chunk payload: id (8) | offset (8) | data, big
// endian. It refuses one with more than proto.MaxChunkData bytes of data:
// no correct sender makes it (its frame would pass proto.MaxMessageSize),
// and a receiver that took it would gather more than it sized its blocks
// for.
func decodeChunk(b []byte) (id uint64, offset int64, data []byte, err error) {
	if len(b) < proto.ChunkHeader || len(b) > proto.ChunkHeader+proto.MaxChunkData {
		return 0, 0, nil, errBadChunk
	}
	off := binary.BigEndian.Uint64(b[8:16])
	if off > 1<<62 {
		return 0, 0, nil, errBadChunk
	}
	return binary.BigEndian.Uint64(b[:8]), int64(off), b[proto.ChunkHeader:], nil
}
