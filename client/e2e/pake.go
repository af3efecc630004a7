package e2e

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tryst-chat/tryst/client/cpace"
)

// The password-authenticated key exchange of protocol version 3
// (docs/PROTOCOL.md, "PAKE"): CPace between the host (initiator) and the
// guest (responder), one message each way through the hub, then the
// guest's key confirmation. Its outcome is an epoch: a session identifier
// and the master secret every other key derives from, as the PBKDF2 room
// secret did in version 2. Nothing the hub relays lets it test a password
// guess offline; an active attacker gets one guess per exchange it takes
// part in, and each side counts the exchanges that fail (GuessLimit).

// GuessLimit is how many failed key confirmations a side accepts in a room
// before it closes the room: each is at most one password guess by whoever
// sits on the other end, the hub included.
const GuessLimit = 5

// SIDSize is the length of an exchange's session identifier, which the
// host draws at random and which names the epoch it leads to.
const SIDSize = 16

// PAKE message kinds: the first byte of a PAKE message (docs/PROTOCOL.md).
const (
	// PAKEShare: host → guest, in an offer frame: sid ‖ Ya. Starts an
	// exchange.
	PAKEShare byte = 1
	// PAKEReply: guest → host, in an answer frame: sid ‖ Yb ‖ confirm_G.
	PAKEReply byte = 2
	// PAKEFailed: host → guest, in an offer frame: sid. The guest's
	// confirmation was wrong.
	PAKEFailed byte = 3
	// PAKENeed: guest → host, in an answer frame: sid, or SIDSize zero
	// bytes. The guest holds no epoch sid (or none at all) and asks for a
	// fresh exchange.
	PAKENeed byte = 4
)

// pakePrefix starts every PAKE message; sealed blobs start with sealPrefix.
const (
	pakePrefix = "c3."
	sealPrefix = "s3."
	// legacyPrefix starts the sealed blobs of versions 1 and 2.
	legacyPrefix = "v1."
)

// ErrOldPeer means a blob came from a client of protocol version 1 or 2,
// which derives its keys from the password with PBKDF2 and cannot talk to
// this one.
var ErrOldPeer = errors.New("the other side speaks an older protocol version")

// ErrOtherEpoch means a sealed blob names an epoch other than the
// Signaler's: it belongs to an earlier exchange, or to one this side never
// completed. Not a mismatch.
var ErrOtherEpoch = errors.New("sealed under another epoch")

// PAKEMessage is one decoded PAKE message.
type PAKEMessage struct {
	Kind    byte
	SID     []byte
	Share   []byte // PAKEShare, PAKEReply
	Confirm []byte // PAKEReply
}

// Encode writes m as it travels in a hub frame's data:
// "c3." ‖ base64url-nopad(kind ‖ sid ‖ share ‖ confirm).
func (m PAKEMessage) Encode() string {
	b := append([]byte{m.Kind}, m.SID...)
	b = append(b, m.Share...)
	b = append(b, m.Confirm...)
	return pakePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// IsPAKE reports whether data is a PAKE message (it may still be malformed).
func IsPAKE(data string) bool { return strings.HasPrefix(data, pakePrefix) }

// DecodePAKE parses a PAKE message, checking its kind and length.
func DecodePAKE(data string) (PAKEMessage, error) {
	rest, ok := strings.CutPrefix(data, pakePrefix)
	if !ok {
		return PAKEMessage{}, fmt.Errorf("%w: not a PAKE message", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(raw) < 1+SIDSize {
		return PAKEMessage{}, fmt.Errorf("%w: bad PAKE message encoding", ErrMalformed)
	}
	m := PAKEMessage{Kind: raw[0], SID: raw[1 : 1+SIDSize]}
	body := raw[1+SIDSize:]
	want := 0
	switch m.Kind {
	case PAKEShare:
		want = cpace.ShareSize
	case PAKEReply:
		want = cpace.ShareSize + ConfirmSize
	case PAKEFailed, PAKENeed:
	default:
		return PAKEMessage{}, fmt.Errorf("%w: unknown PAKE message kind %d", ErrMalformed, m.Kind)
	}
	if len(body) != want {
		return PAKEMessage{}, fmt.Errorf("%w: PAKE message kind %d of %d bytes", ErrMalformed, m.Kind, len(raw))
	}
	if want > 0 {
		m.Share = body[:cpace.ShareSize]
	}
	if m.Kind == PAKEReply {
		m.Confirm = body[cpace.ShareSize:]
	}
	return m, nil
}

// ConfirmSize is the length of the guest's PAKE confirmation.
const ConfirmSize = 32

// Labels of the PAKE's inputs and derivations.
const (
	ciLabel      = "tryst/v3/cpace|"
	masterInfo   = "tryst/v3/master"
	confirmGInfo = "tryst/v3/confirm-guest"
)

// channelID is CPace's CI: the room code, which both sides know and never
// send with the exchange. The roles are bound by the transcript's order
// (the host initiates) and by the associated data.
func channelID(room string) []byte { return []byte(ciLabel + room) }

// The associated data of the two shares: the sender's role.
var (
	adHost  = []byte{byte(Host)}
	adGuest = []byte{byte(Guest)}
)

// Epoch is what one successful exchange establishes: its session
// identifier and the master secret. It holds no value that would let
// anyone test a password guess offline: the master comes from CPace's
// Diffie-Hellman secret.
type Epoch struct {
	SID    []byte
	Master []byte
}

// epochKeys derives an exchange's master secret and the guest's
// confirmation from CPace's ISK.
func epochKeys(isk []byte) (master, confirmG []byte, err error) {
	if master, err = hkdf.Key(sha256.New, isk, nil, masterInfo, 32); err != nil {
		return nil, nil, fmt.Errorf("e2e: hkdf: %w", err)
	}
	if confirmG, err = hkdf.Key(sha256.New, isk, nil, confirmGInfo, ConfirmSize); err != nil {
		return nil, nil, fmt.Errorf("e2e: hkdf: %w", err)
	}
	return master, confirmG, nil
}

// HostExchange is the host's side of one exchange, between the share it
// sent and the guest's reply.
type HostExchange struct {
	SID   []byte
	state *cpace.State
	room  string
}

// StartHost begins an exchange as host with a fresh random sid and returns
// the PAKEShare message to send.
func StartHost(password, room string) (*HostExchange, string, error) {
	sid := make([]byte, SIDSize)
	_, _ = rand.Read(sid)
	return startHost(password, room, sid, rand.Reader)
}

func startHost(password, room string, sid []byte, r io.Reader) (*HostExchange, string, error) {
	if password == "" {
		return nil, "", errors.New("e2e: empty password")
	}
	st, ya, err := cpace.Start([]byte(password), channelID(room), sid, adHost, r)
	if err != nil {
		return nil, "", fmt.Errorf("e2e: %w", err)
	}
	msg := PAKEMessage{Kind: PAKEShare, SID: sid, Share: ya}.Encode()
	return &HostExchange{SID: sid, state: st, room: room}, msg, nil
}

// Finish completes the exchange with the guest's PAKEReply. A reply whose
// confirmation is wrong (the passwords differ, or an attacker guessed) or
// whose share is invalid returns ErrMismatch: one failed confirmation. The
// exchange is used up either way.
func (h *HostExchange) Finish(reply PAKEMessage) (*Epoch, error) {
	if reply.Kind != PAKEReply || !bytes.Equal(reply.SID, h.SID) {
		return nil, fmt.Errorf("%w: not the reply to this exchange", ErrMalformed)
	}
	st := h.state
	if st == nil {
		return nil, errors.New("e2e: exchange already finished")
	}
	h.state = nil
	isk, err := st.Finish(reply.Share, adGuest, cpace.Initiator)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	master, confirmG, err := epochKeys(isk)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(confirmG, reply.Confirm) {
		return nil, ErrMismatch
	}
	return &Epoch{SID: h.SID, Master: master}, nil
}

// Respond answers a host's PAKEShare as guest: it returns the epoch the
// exchange leads to if the passwords match (unconfirmed until a sealed
// offer under it opens) and the PAKEReply to send. An invalid share is
// ErrMismatch.
func Respond(password, room string, share PAKEMessage) (*Epoch, string, error) {
	return respond(password, room, share, rand.Reader)
}

func respond(password, room string, share PAKEMessage, r io.Reader) (*Epoch, string, error) {
	if password == "" {
		return nil, "", errors.New("e2e: empty password")
	}
	if share.Kind != PAKEShare {
		return nil, "", fmt.Errorf("%w: not a PAKE share", ErrMalformed)
	}
	st, yb, err := cpace.Start([]byte(password), channelID(room), share.SID, adGuest, r)
	if err != nil {
		return nil, "", fmt.Errorf("e2e: %w", err)
	}
	isk, err := st.Finish(share.Share, adHost, cpace.Responder)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	master, confirmG, err := epochKeys(isk)
	if err != nil {
		return nil, "", err
	}
	sid := bytes.Clone(share.SID)
	reply := PAKEMessage{Kind: PAKEReply, SID: sid, Share: yb, Confirm: confirmG}.Encode()
	return &Epoch{SID: sid, Master: master}, reply, nil
}

// FailedMessage is the host's PAKEFailed for an exchange.
func FailedMessage(sid []byte) string { return PAKEMessage{Kind: PAKEFailed, SID: sid}.Encode() }

// NeedMessage is the guest's PAKENeed: sid names the epoch it does not
// hold; nil asks for a fresh exchange whatever the host holds.
func NeedMessage(sid []byte) string {
	if sid == nil {
		sid = make([]byte, SIDSize)
	}
	return PAKEMessage{Kind: PAKENeed, SID: sid}.Encode()
}

// AnyEpoch reports whether a PAKENeed's sid is the all-zero "any".
func AnyEpoch(sid []byte) bool { return bytes.Equal(sid, make([]byte, SIDSize)) }
