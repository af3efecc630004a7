package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Frame types on the data channel (docs/PROTOCOL.md, "Data channel
// messages"). Control payloads are JSON; file chunks are binary.
const (
	msgConfirm    byte = 1
	msgChat       byte = 2
	msgChatAck    byte = 3
	msgPing       byte = 4
	msgPong       byte = 5
	msgFileOffer  byte = 6
	msgFileAccept byte = 7
	msgFileChunk  byte = 8
	msgFileAck    byte = 9
	msgFileDone   byte = 10
	msgFileResult byte = 11
	msgBye        byte = 12
)

// Signaling payloads, sealed into hub blobs.
type offerPayload struct {
	SDP   string `json:"sdp"`
	Nonce []byte `json:"nonce"` // nonce_host, 32 bytes (base64 in JSON)
	// RelayWait: this offer's connection waits before it accepts a relayed
	// pair (it may go direct), and its host honours a relay restart
	// request: a relay-only guest asks for one instead of answering.
	RelayWait bool `json:"relay_wait,omitempty"`
}

type answerPayload struct {
	SDP        string `json:"sdp,omitempty"`
	Nonce      []byte `json:"nonce,omitempty"`       // nonce_guest
	OfferNonce []byte `json:"offer_nonce,omitempty"` // the offer this answers
	Mismatch   bool   `json:"mismatch,omitempty"`
}

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
	ID     uint64 `json:"id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
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
}

type fileResult struct {
	ID    uint64 `json:"id"`
	OK    bool   `json:"ok"`
	Name  string `json:"name,omitempty"`
	Error string `json:"error,omitempty"`
}

// maxChatBytes bounds one chat message.
const maxChatBytes = 32 << 10

func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}

// A file chunk payload is id (8) | offset (8) | data, big endian.
const chunkHeader = 16

var errShortChunk = errors.New("malformed file chunk")

func decodeChunk(b []byte) (id uint64, offset int64, data []byte, err error) {
	if len(b) < chunkHeader {
		return 0, 0, nil, errShortChunk
	}
	off := binary.BigEndian.Uint64(b[8:16])
	if off > 1<<62 {
		return 0, 0, nil, errShortChunk
	}
	return binary.BigEndian.Uint64(b[:8]), int64(off), b[chunkHeader:], nil
}
