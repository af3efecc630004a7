package proto

import "time"

// The data channel between the two members (docs/PROTOCOL.md, "Data
// channel"). The hub never sees it; these constants are here so that the Go
// client and the tests that hold the browser client to the same numbers
// (web's TestProtocolConstantsMatchGo) read them from one place.

// Data-channel labels. The host opens both, in this order; the guest takes
// them by label. Control carries key confirmation, chat, keepalive and the
// file handshake; bulk carries file data only, so that a ping or a chat
// message never waits behind megabytes of file chunks on one ordered
// channel.
const (
	ControlLabel = "tryst"
	BulkLabel    = "tryst-bulk"
)

// Channel numbers, the first four bytes of a sealed frame's nonce: each
// channel has its own sequence under the same direction key, and the
// channel number keeps their nonces apart.
const (
	ControlChannel = 0
	BulkChannel    = 1
)

// Data-channel message types (the sealed frame's type byte).
const (
	MsgConfirm    = 1
	MsgChat       = 2
	MsgChatAck    = 3
	MsgPing       = 4
	MsgPong       = 5
	MsgFileOffer  = 6
	MsgFileAccept = 7
	MsgFileChunk  = 8
	MsgFileAck    = 9
	MsgFileDone   = 10
	MsgFileResult = 11
	MsgBye        = 12
)

// Sizes on the data channel.
const (
	// FrameOverhead is what sealing adds to a payload: the 10-byte header
	// and the 16-byte AES-GCM tag.
	FrameOverhead = 26
	// ChunkHeader is the file-chunk payload's id and offset.
	ChunkHeader = 16
	// MaxMessageSize is the largest data-channel message a client sends or
	// must accept: Chromium's receive limit (its SDP's max-message-size).
	MaxMessageSize = 256 << 10
	// MaxChunkData is the most file data one chunk carries, so that its
	// frame fits MaxMessageSize.
	MaxChunkData = MaxMessageSize - FrameOverhead - ChunkHeader
	// DefaultChunkData is the chunk size both clients send. SCTP without
	// message interleaving (Chromium does not negotiate it) never splits a
	// message between channels, so a control message waits for the chunk
	// being sent; 64 KiB keeps that short (13 ms at 5 MB/s), and pion moves
	// 64 KiB chunks at least as fast as 255 KiB ones (docs/BENCHMARKS.md).
	DefaultChunkData = 64 << 10
	// MaxChatText is the longest chat text, in bytes of UTF-8.
	MaxChatText = 32 << 10
	// AckEvery is how many more bytes a receiver writes before it acks.
	AckEvery = 1 << 20
)

// Timing on the data channel.
const (
	// PingInterval is how often each side pings once the connection is
	// ready.
	PingInterval = 5 * time.Second
	// PeerTimeout is the silence after which a connection is given up.
	PeerTimeout = 15 * time.Second
	// GatherTimeout bounds ICE gathering before an offer or answer is sent
	// with the candidates gathered so far.
	GatherTimeout = 10 * time.Second
)
