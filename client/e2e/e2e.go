// Package e2e is Tryst's end-to-end cryptography: the password-authenticated
// key exchange (CPace, package cpace) that gives both sides an epoch's
// master secret, sealed signaling blobs, per-connection session keys
// confirmed against both DTLS fingerprints, and the sealed frames of the
// data channel.
//
// Beyond CPace's ristretto255 and SHA-512 it uses only primitives that
// browsers' Web Crypto offers (HKDF, HMAC, AES-GCM, SHA-256), so the browser
// client can interoperate. The construction and its test vectors are in
// docs/PROTOCOL.md.
package e2e

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Role is which side of a room a party is.
type Role byte

// The two roles; their byte values appear in derivations.
const (
	Host  Role = 'H'
	Guest Role = 'G'
)

// Other is the opposite role.
func (r Role) Other() Role { return r.other() }

func (r Role) other() Role {
	if r == Host {
		return Guest
	}
	return Host
}

// Errors callers branch on.
var (
	// ErrMismatch means a blob or frame did not authenticate under our key:
	// the passwords differ (or someone tampered with it).
	ErrMismatch = errors.New("password mismatch")
	// ErrReplay means a frame arrived out of sequence: replayed, reordered
	// or dropped.
	ErrReplay = errors.New("frame out of sequence")
	// ErrMalformed means a blob or frame is not in the expected format.
	ErrMalformed = errors.New("malformed sealed data")
)

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Signaler seals and opens the blobs that travel through the hub (offers,
// answers, candidates) under one epoch's master secret, so the hub sees
// only ciphertext.
type Signaler struct {
	aead   cipher.AEAD
	room   string
	sid    []byte
	master []byte
}

// NewSignaler derives the signaling key of an epoch.
func NewSignaler(ep *Epoch, roomCode string) (*Signaler, error) {
	if len(ep.SID) != SIDSize {
		return nil, fmt.Errorf("%w: an epoch's sid must be %d bytes", ErrMalformed, SIDSize)
	}
	k, err := signalKey(ep.Master)
	if err != nil {
		return nil, err
	}
	a, err := newGCM(k)
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	return &Signaler{aead: a, room: roomCode, sid: ep.SID, master: ep.Master}, nil
}

// SID is the epoch this Signaler seals under.
func (s *Signaler) SID() []byte { return s.sid }

// NewSession derives a connection's keys under this Signaler's epoch (see
// the package-level NewSession).
func (s *Signaler) NewSession(role Role, nonceHost, nonceGuest []byte, fpHost, fpGuest string) (*Session, error) {
	return NewSession(s.master, role, nonceHost, nonceGuest, fpHost, fpGuest)
}

const signalInfo = "tryst/v1/signal"

// signalKey is k_signal = HKDF-SHA256(master, no salt, "tryst/v1/signal").
func signalKey(master []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, master, nil, signalInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("e2e: hkdf: %w", err)
	}
	return k, nil
}

// signalAAD binds a blob to its room, kind and sender, so it cannot be
// replayed into another room, as another kind, or back to its sender.
func (s *Signaler) signalAAD(kind string, from Role) []byte {
	return []byte("tryst/v1/signal|" + s.room + "|" + kind + "|" + string(from))
}

// Seal encrypts plaintext as a blob of kind ("offer", "answer",
// "candidate") sent by from: "s3." + base64url(sid ‖ nonce ‖ ciphertext ‖
// tag).
func (s *Signaler) Seal(kind string, from Role, plaintext []byte) string {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	return s.sealWithNonce(kind, from, plaintext, nonce)
}

func (s *Signaler) sealWithNonce(kind string, from Role, plaintext, nonce []byte) string {
	out := make([]byte, 0, SIDSize+len(nonce)+len(plaintext)+16)
	out = append(append(out, s.sid...), nonce...)
	out = s.aead.Seal(out, nonce, plaintext, s.signalAAD(kind, from))
	return sealPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// BlobSID returns the epoch a sealed blob names. A blob of version 1 or 2
// is ErrOldPeer; anything else that is not a sealed blob, ErrMalformed.
func BlobSID(blob string) ([]byte, error) {
	raw, err := decodeBlob(blob)
	if err != nil {
		return nil, err
	}
	return raw[:SIDSize], nil
}

func decodeBlob(blob string) ([]byte, error) {
	rest, ok := strings.CutPrefix(blob, sealPrefix)
	if !ok {
		if strings.HasPrefix(blob, legacyPrefix) {
			return nil, ErrOldPeer
		}
		return nil, fmt.Errorf("%w: not a sealed blob", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(raw) < SIDSize+12+16 {
		return nil, fmt.Errorf("%w: bad blob encoding", ErrMalformed)
	}
	return raw, nil
}

// Open authenticates and decrypts a blob of kind sent by from. A blob of
// another epoch is ErrOtherEpoch; one of this epoch that does not
// authenticate, ErrMismatch.
func (s *Signaler) Open(kind string, from Role, blob string) ([]byte, error) {
	raw, err := decodeBlob(blob)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(raw[:SIDSize], s.sid) {
		return nil, ErrOtherEpoch
	}
	nonce := raw[SIDSize : SIDSize+12]
	pt, err := s.aead.Open(nil, nonce, raw[SIDSize+12:], s.signalAAD(kind, from))
	if err != nil {
		return nil, ErrMismatch
	}
	return pt, nil
}

// NonceSize is the size of the fresh random value each side contributes
// to a connection's keys.
const NonceSize = 32

// NewNonce returns a fresh connection nonce.
func NewNonce() []byte {
	b := make([]byte, NonceSize)
	_, _ = rand.Read(b)
	return b
}

// Session holds one connection's keys: one AES-256-GCM key per direction
// and a confirmation key, all fresh for every connection. Frames are sealed
// and opened per data channel (Channel), each with sequences of its own.
type Session struct {
	role    Role
	send    cipher.AEAD
	recv    cipher.AEAD
	confirm []byte

	mu       sync.Mutex
	channels map[uint32]*Channel
}

// NewSession derives a connection's keys from the master secret, both
// sides' fresh nonces and both DTLS certificate fingerprints, as seen by
// role. A hub that substituted its own DTLS endpoint ends up with different
// fingerprints, hence different keys, and fails the confirmation.
func NewSession(master []byte, role Role, nonceHost, nonceGuest []byte, fpHost, fpGuest string) (*Session, error) {
	okm, err := sessionKeys(master, nonceHost, nonceGuest, fpHost, fpGuest)
	if err != nil {
		return nil, err
	}
	h2g, err := newGCM(okm[0:32])
	if err != nil {
		return nil, err
	}
	g2h, err := newGCM(okm[32:64])
	if err != nil {
		return nil, err
	}
	s := &Session{role: role, confirm: okm[64:96], channels: map[uint32]*Channel{}}
	if role == Host {
		s.send, s.recv = h2g, g2h
	} else {
		s.send, s.recv = g2h, h2g
	}
	return s, nil
}

// sessionKeys is the 96 bytes of key material of one connection:
// k_h2g ‖ k_g2h ‖ k_conf.
func sessionKeys(master, nonceHost, nonceGuest []byte, fpHost, fpGuest string) ([]byte, error) {
	if len(nonceHost) != NonceSize || len(nonceGuest) != NonceSize {
		return nil, fmt.Errorf("%w: connection nonces must be %d bytes", ErrMalformed, NonceSize)
	}
	salt := append(append([]byte{}, nonceHost...), nonceGuest...)
	info := sessionInfo(fpHost, fpGuest)
	okm, err := hkdf.Key(sha256.New, master, salt, info, 96)
	if err != nil {
		return nil, fmt.Errorf("e2e: hkdf: %w", err)
	}
	return okm, nil
}

func sessionInfo(fpHost, fpGuest string) string {
	return "tryst/v1/session|" + NormalizeFingerprint(fpHost) + "|" + NormalizeFingerprint(fpGuest)
}

// ErrNoFingerprint means an SDP carries no a=fingerprint attribute. Such
// an offer or answer must be refused: without both fingerprints in the
// key derivation nothing binds the keys to the DTLS endpoints.
var ErrNoFingerprint = errors.New("SDP has no DTLS fingerprint")

// Fingerprint returns the DTLS certificate fingerprint of an SDP, in the
// form NormalizeFingerprint gives it: the value of the first line, in
// document order, that begins with "a=fingerprint:" once leading and
// trailing white space is removed (session or media level alike). Later
// a=fingerprint lines do not count, so a party that lists several puts
// the one of the certificate it presents first.
func Fingerprint(sdp string) (string, error) {
	for line := range strings.SplitSeq(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:"); ok {
			return NormalizeFingerprint(v), nil
		}
	}
	return "", ErrNoFingerprint
}

// NormalizeFingerprint canonicalises an SDP fingerprint attribute value
// ("sha-256 ab:cd:…") so that both sides feed identical bytes to HKDF.
func NormalizeFingerprint(fp string) string {
	alg, hexs, ok := strings.Cut(strings.TrimSpace(fp), " ")
	if !ok {
		return strings.ToUpper(fp)
	}
	return strings.ToLower(alg) + " " + strings.ToUpper(strings.TrimSpace(hexs))
}

// Confirmation is what role sends to prove it holds the session keys.
func (s *Session) Confirmation(role Role) []byte {
	m := hmac.New(sha256.New, s.confirm)
	m.Write([]byte("tryst/v1/confirm|"))
	m.Write([]byte{byte(role)})
	return m.Sum(nil)
}

// CheckConfirmation verifies the other side's confirmation.
func (s *Session) CheckConfirmation(got []byte) error {
	if !hmac.Equal(got, s.Confirmation(s.role.other())) {
		return ErrMismatch
	}
	return nil
}

// Frame layout on the data channel:
//
//	version (1) | type (1) | sequence (8, big endian) | AES-GCM ciphertext ‖ tag (16)
//
// The first 10 bytes are the associated data; the 12-byte nonce is the
// channel number (4 bytes, big endian) and the sequence. Sequences start at
// 0 for each channel and direction of each connection and increase by one,
// and the channel number keeps two channels' equal sequences apart, so a
// nonce is never reused under a key; the receiver accepts only the next
// sequence number of the channel. Channel 0 (control) gives the nonces of
// protocol version 1, which had one channel.
const (
	frameVersion = 1
	headerLen    = 10
	// Overhead is the size a frame adds to its payload.
	Overhead = headerLen + 16
)

// Channel seals and opens the frames of one data channel of a Session: its
// own send and receive sequences, under the session's direction keys.
// Sealing and opening may run concurrently; each is serialised by its
// caller (the sequences require it anyway).
type Channel struct {
	send, recv       cipher.AEAD
	sendSeq, recvSeq uint64

	// Scratch for the header and nonces: passed to the AEAD interface
	// they would escape, costing two allocations per frame. The nonces'
	// first four bytes hold the channel number.
	sendHdr   [headerLen]byte
	sendNonce [12]byte
	recvNonce [12]byte
}

// Channel returns the sealer and opener of data channel id (0 control,
// 1 bulk: proto.ControlChannel, proto.BulkChannel); the same one on every
// call, so that its sequences carry on.
func (s *Session) Channel(id uint32) *Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.channels[id]; ok {
		return c
	}
	c := &Channel{send: s.send, recv: s.recv}
	binary.BigEndian.PutUint32(c.sendNonce[:4], id)
	binary.BigEndian.PutUint32(c.recvNonce[:4], id)
	s.channels[id] = c
	return c
}

// Seal encrypts payload as the channel's next frame of type typ.
func (c *Channel) Seal(typ byte, payload []byte) []byte {
	return c.SealTo(nil, typ, payload)
}

// SealTo is Seal appending to dst, which lets callers reuse buffers.
func (c *Channel) SealTo(dst []byte, typ byte, payload []byte) []byte {
	seq := c.sendSeq
	c.sendSeq++
	hdr, nonce := &c.sendHdr, &c.sendNonce
	hdr[0], hdr[1] = frameVersion, typ
	binary.BigEndian.PutUint64(hdr[2:], seq)
	binary.BigEndian.PutUint64(nonce[4:], seq)
	dst = append(dst, hdr[:]...)
	return c.send.Seal(dst, nonce[:], payload, hdr[:])
}

// Open authenticates and decrypts the channel's next frame, returning its
// type and payload. A frame out of sequence is ErrReplay; one that fails to
// authenticate (a frame of another channel among them) is ErrMismatch.
// Neither advances the sequence.
func (c *Channel) Open(frame []byte) (typ byte, payload []byte, err error) {
	return c.open(nil, frame)
}

// OpenInPlace is Open decrypting into frame's own storage: the payload
// aliases frame, whose ciphertext it overwrites (also when it fails). It
// saves an allocation and a copy per frame for callers that own frame,
// which matters at file-transfer rates.
func (c *Channel) OpenInPlace(frame []byte) (typ byte, payload []byte, err error) {
	if len(frame) < headerLen {
		return c.open(nil, frame)
	}
	return c.open(frame[headerLen:headerLen], frame)
}

func (c *Channel) open(dst, frame []byte) (typ byte, payload []byte, err error) {
	if len(frame) < Overhead {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(frame))
	}
	if frame[0] != frameVersion {
		return 0, nil, fmt.Errorf("%w: frame version %d", ErrMalformed, frame[0])
	}
	seq := binary.BigEndian.Uint64(frame[2:headerLen])
	if seq != c.recvSeq {
		return 0, nil, fmt.Errorf("%w: got %d, want %d", ErrReplay, seq, c.recvSeq)
	}
	nonce := &c.recvNonce
	binary.BigEndian.PutUint64(nonce[4:], seq)
	pt, err := c.recv.Open(dst, nonce[:], frame[headerLen:], frame[:headerLen])
	if err != nil {
		return 0, nil, ErrMismatch
	}
	c.recvSeq++
	return frame[1], pt, nil
}
