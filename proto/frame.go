package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ProtocolVersion is the version of the protocol this package implements
// (docs/PROTOCOL.md, "Versions"): the hub's frames, and the data channel
// between the clients, whose offers and answers carry it too. Clients
// announce theirs in create, join and resume; the hub serves
// MinProtocolVersion up to ProtocolVersion and answers any other with
// CodeUnsupportedVersion.
//
// Version 3 adds a PAKE (CPace) that the clients run before the WebRTC
// offer. The hub serves version 3 only: a version-2 client cannot talk to a
// version-3 one, and pairing them would leave both waiting for a connection
// that never comes, while refusing the older client at create, join or
// resume gives it an error whose message every earlier client prints (update
// the client: reload the page, or install a newer tryst).
const (
	ProtocolVersion    = 3
	MinProtocolVersion = 3
)

// ReconnectBackoffMax is the longest a client waits between two attempts to
// reach the hub again (its backoff doubles from 500 ms up to this). The hub
// keeps a room whose host lost its connection well beyond it (see
// hub.MinUnpairedRoomTTL).
const ReconnectBackoffMax = 10 * time.Second

// Message types sent by clients.
const (
	TypeCreate    = "create"
	TypeJoin      = "join"
	TypeResume    = "resume"
	TypeOffer     = "offer"
	TypeAnswer    = "answer"
	TypeCandidate = "candidate"
	TypeLeave     = "leave"
	// TypeReport tells the hub something about the other member of the
	// sender's room (see ReportFailedConfirmation). The hub answers
	// nothing on success.
	TypeReport = "report"
)

// ReportFailedConfirmation is the reason of a report: a PAKE key
// confirmation with the other member of the room failed (a wrong password,
// or somebody guessing it). The hub throttles joins into the room and
// charges the other member's address a failed attempt (docs/PROTOCOL.md,
// "Failed-confirmation reports").
const ReportFailedConfirmation = "failed_confirmation"

// ClosedGuessLimit is the reason a client may give in leave when it closes
// the room after too many failed password attempts, and then the code of
// the room-closed frame the other member gets, so that its client can say
// why rather than "the other side left".
const ClosedGuessLimit = "guess_limit"

// Message types sent by the hub.
const (
	TypeCreated    = "created"
	TypeJoined     = "joined"
	TypeResumed    = "resumed"
	TypePeerJoined = "peer-joined"
	TypePeerLeft   = "peer-left"
	TypePeerBack   = "peer-back"
	TypeRoomClosed = "room-closed"
	TypeError      = "error"
)

// Error codes carried by "error" frames. Clients branch on these, never on
// the human-readable message.
const (
	CodeBadRequest   = "bad_request"
	CodeUnknownType  = "unknown_type"
	CodeNoSuchRoom   = "no_such_room"
	CodeRoomFull     = "room_full"
	CodeRateLimited  = "rate_limited"
	CodeTooBig       = "too_big"
	CodeThrottled    = "throttled"
	CodeUnauthorized = "unauthorized"
	CodeBinary       = "binary_frame"
	CodeInternal     = "internal"
	// CodeUnsupportedVersion: the client announced a protocol version the
	// hub does not serve; the message says which it does.
	CodeUnsupportedVersion = "unsupported_version"
	// CodeHubFull: the hub's node-wide budget of rooms or of waiting
	// offers and answers is spent; retry_after says when to try again.
	CodeHubFull = "hub_full"
)

// Error codes in the JSON body {"code","message"} of an HTTP refusal of
// GET /v1/ws, before the WebSocket upgrade (GET /v1/ice answers with
// CodeRateLimited and CodeUnauthorized).
const (
	CodeOrigin      = "origin"        // 403: a browser Origin not allowed
	CodeIPConnLimit = "ip_conn_limit" // 429: too many connections from the address
	CodeDraining    = "draining"      // 503: the hub is shutting down; reconnect shortly
)

// Frame is one JSON message on /v1/ws, in either direction. Fields that do
// not apply to a type are omitted.
type Frame struct {
	Type string `json:"type"`

	// Room is the room code (join; created, joined, resumed).
	Room string `json:"room,omitempty"`
	// Token is the resume token (resume; created, joined, resumed).
	Token string `json:"token,omitempty"`
	// Version is the protocol version a client speaks (create, join,
	// resume; absent means 1) and the hub's own (created, joined,
	// resumed).
	Version int `json:"version,omitempty"`
	// Auth is the access token required by create when the operator enabled
	// access control.
	Auth string `json:"auth,omitempty"`
	// Data is the opaque payload of offer, answer and candidate. The hub never
	// parses it.
	Data string `json:"data,omitempty"`

	// Role is "host" or "guest" (created, joined, resumed).
	Role string `json:"role,omitempty"`
	// Peer reports whether the other member is attached (resumed).
	Peer *bool `json:"peer,omitempty"`
	// ICE carries the ICE servers to use (created, joined, resumed).
	ICE *ICEConfig `json:"ice,omitempty"`
	// RoomTTL is how long, in seconds, the room outlives its members.
	RoomTTL int `json:"room_ttl,omitempty"`

	// Code and Message describe an error; Code is also why a room was
	// closed (room-closed: ClosedGuessLimit, or absent). Reason explains
	// peer-left and room-closed to people, and is what a report reports
	// (ReportFailedConfirmation) and why a member leaves (leave:
	// ClosedGuessLimit, or absent).
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// RetryAfter is how many seconds to wait before trying again, on
	// errors that a wait cures (rate_limited from create).
	RetryAfter int `json:"retry_after,omitempty"`
}

// ICEServer mirrors the browser's RTCIceServer dictionary.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEConfig is the set of ICE servers handed to a client, with the lifetime
// of the TURN credentials in it.
type ICEConfig struct {
	Servers []ICEServer `json:"iceServers"`
	TTL     int         `json:"ttl"`
	// Limited is set when the hub left TURN out because the client's
	// address had used up its credential budget: Servers holds STUN only
	// and TTL is 0. RetryAfter is then when, in seconds, a resume would
	// get TURN again.
	Limited    bool `json:"limited,omitempty"`
	RetryAfter int  `json:"retry_after,omitempty"`
}

var (
	errEmptyFrame  = errors.New("empty frame")
	errNotObject   = errors.New("frame is not a JSON object")
	errMissingType = errors.New(`frame has no "type"`)
	errInvalidUTF8 = errors.New("frame is not valid UTF-8")
)

// DecodeFrame parses one frame, in either direction. It rejects anything that
// is not a single JSON object with a string "type"; unknown fields are ignored
// so that newer clients can talk to older hubs and the other way round.
//
// The result is exactly json.Unmarshal's: a hand-written decoder takes the
// frames it is sure of (see framecodec.go) and json.Unmarshal the rest. The
// strings in the frame never alias b.
func DecodeFrame(b []byte) (Frame, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Frame{}, errEmptyFrame
	}
	if !utf8.Valid(b) {
		return Frame{}, errInvalidUTF8
	}
	if b[0] != '{' {
		return Frame{}, errNotObject
	}
	f, ok := decodeFrameFast(b)
	if !ok {
		var err error
		if f, err = decodeFrameJSON(b); err != nil {
			return Frame{}, fmt.Errorf("invalid JSON: %w", err)
		}
	}
	if f.Type == "" {
		return Frame{}, errMissingType
	}
	return f, nil
}

// decodeFrameJSON is DecodeFrame's way for the frames that decodeFrameFast
// leaves: json.Unmarshal, which, unlike a streaming Decoder, rejects
// trailing data. It is a function of its own so that only this way pays for
// the Frame that Unmarshal moves to the heap.
func decodeFrameJSON(b []byte) (Frame, error) {
	var f Frame
	err := json.Unmarshal(b, &f)
	return f, err
}

// EncodeFrame marshals f, byte for byte as json.Marshal would (see
// framecodec.go), into one buffer sized up front. Frame holds only strings,
// ints and plain structs, so it cannot fail; the error is kept for callers.
func EncodeFrame(f Frame) ([]byte, error) {
	return appendFrame(make([]byte, 0, frameSizeHint(&f)), &f), nil
}

// Error is an error frame as a Go error, for callers that treat the hub's
// refusal like any other failure and branch on Code.
type Error struct {
	Code    string
	Message string
	// RetryAfter is the frame's retry_after, in seconds (0 when absent).
	RetryAfter int
}

func (e *Error) Error() string { return "hub error " + e.Code + ": " + e.Message }

// Err returns f as an *Error when it is an error frame, and nil otherwise.
func (f Frame) Err() error {
	if f.Type != TypeError {
		return nil
	}
	return &Error{Code: f.Code, Message: f.Message, RetryAfter: f.RetryAfter}
}
