package hub

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tryst-chat/tryst/proto"
)

// A resume token names its membership and is signed with the hub key, so
// that a hub that lost its rooms (a restart) can recreate a room from the
// tokens its members bring back, with no store to keep (docs/PROTOCOL.md,
// "Resume tokens"). Layout, before base64url without padding:
//
//	0      version (1)
//	1      role (1 host, 2 guest)
//	2      flags (bit 0: a guest had joined when the token was issued)
//	3..10  since: Unix milliseconds when the membership began (big endian)
//	11..18 nonce: random, with since names the membership
//	19..26 issued: Unix milliseconds when this token was issued
//	27..44 room code, its 18 symbols without dashes
//	45..60 HMAC-SHA256(hub key, tokenLabel ‖ bytes 0..44), first 16 bytes
const (
	tokenVersion = 1
	tokenBody    = 45
	tokenMACLen  = 16 // 128 bits: RFC 2104 allows truncation to half the hash
	tokenLen     = tokenBody + tokenMACLen
	// TokenChars is the length of a resume token as sent: 82 characters.
	TokenChars = (tokenLen*8 + 5) / 6

	tokenFlagPaired = 1
)

// tokenLabel separates the MAC of resume tokens from any other use of the
// hub key.
var tokenLabel = []byte("tryst/v1/resume-token\x00")

// MinHubKeyLen is the shortest hub key accepted, as for the other HMAC
// secrets: a shorter key could be guessed offline from a single token.
const MinHubKeyLen = MinTokenSecretLen

// errBadToken: a resume token that is malformed or signed by no hub key;
// answered no_such_room, like an unknown room.
var errBadToken = errors.New("resume token is malformed or not signed by this hub")

// resumeToken is a decoded resume token.
type resumeToken struct {
	Member
	paired bool
	issued int64 // Unix milliseconds
}

// keyring holds the hub keys: the first signs, all verify.
type keyring struct {
	keys atomic.Pointer[[]*macKey]
}

// macKey is a hub key with a pool of HMACs keyed with it: keying an HMAC
// hashes both pads, which minting a token for every created, joined and
// peer-joined frame paid each time (with its allocations).
type macKey struct {
	key  []byte
	macs sync.Pool
}

func newMACKey(key []byte) *macKey {
	k := &macKey{key: append([]byte(nil), key...)}
	k.macs.New = func() any { return hmac.New(sha256.New, k.key) }
	return k
}

// sum appends body's token MAC to dst.
func (k *macKey) sum(dst, body []byte) []byte {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(tokenLabel)
	m.Write(body)
	var full [sha256.Size]byte
	dst = append(dst, m.Sum(full[:0])[:tokenMACLen]...)
	k.macs.Put(m)
	return dst
}

func newKeyring(keys [][]byte) *keyring {
	k := &keyring{}
	k.set(keys)
	return k
}

func (k *keyring) set(keys [][]byte) {
	cp := make([]*macKey, len(keys))
	for i, key := range keys {
		cp[i] = newMACKey(key)
	}
	k.keys.Store(&cp)
}

// newMember starts a membership of role in room at now.
func newMember(room string, role Role, now time.Time) Member {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return Member{Room: room, Role: role, Since: now.UnixMilli(), Nonce: binary.BigEndian.Uint64(b[:])}
}

// mint issues a token for m at now.
func (k *keyring) mint(m Member, paired bool, now time.Time) string {
	var b [tokenLen]byte
	b[0] = tokenVersion
	b[1] = byte(m.Role)
	if paired || m.Role == Guest {
		b[2] = tokenFlagPaired
	}
	binary.BigEndian.PutUint64(b[3:], uint64(m.Since))
	binary.BigEndian.PutUint64(b[11:], m.Nonce)
	binary.BigEndian.PutUint64(b[19:], uint64(now.UnixMilli()))
	compact := b[27:27:tokenBody]
	for i := 0; i < len(m.Room); i++ {
		if m.Room[i] != '-' {
			compact = append(compact, m.Room[i])
		}
	}
	(*k.keys.Load())[0].sum(b[tokenBody:tokenBody], b[:tokenBody])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parse checks a token's length, encoding, MAC (against every key, in
// constant time each) and fields, reading nothing beyond TokenChars
// characters. It does not judge the token's age.
func (k *keyring) parse(s string) (resumeToken, error) {
	if len(s) != TokenChars {
		return resumeToken{}, errBadToken
	}
	var b [tokenLen]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s)); err != nil || n != tokenLen {
		return resumeToken{}, errBadToken
	}
	ok := false
	for _, key := range *k.keys.Load() {
		// Every key is tried, so the time taken does not depend on
		// which one matched.
		var mac [tokenMACLen]byte
		if hmac.Equal(key.sum(mac[:0], b[:tokenBody]), b[tokenBody:]) {
			ok = true
		}
	}
	if !ok {
		return resumeToken{}, errBadToken
	}
	// Signed by this hub: the fields are what it wrote, but a later
	// version may write others.
	role := Role(b[1])
	if b[0] != tokenVersion || (role != Host && role != Guest) || b[2]&^tokenFlagPaired != 0 {
		return resumeToken{}, errBadToken
	}
	room, err := proto.NormalizeRoomCode(string(b[27:tokenBody]))
	if err != nil {
		return resumeToken{}, errBadToken
	}
	return resumeToken{
		Member: Member{
			Room: room, Role: role,
			Since: int64(binary.BigEndian.Uint64(b[3:])), Nonce: binary.BigEndian.Uint64(b[11:]),
		},
		paired: b[2]&tokenFlagPaired != 0 || role == Guest,
		issued: int64(binary.BigEndian.Uint64(b[19:])),
	}, nil
}

// checkHubKeys applies the rules every hub key must meet.
func checkHubKeys(keys [][]byte) error {
	for i, k := range keys {
		if len(k) < MinHubKeyLen {
			return fmt.Errorf("hub: hub key %d is shorter than %d bytes", i+1, MinHubKeyLen)
		}
	}
	return nil
}

// NewHubKey returns a fresh random hub key in the format of a hub key file
// line: 32 random bytes, base64 (44 characters).
func NewHubKey() []byte {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	return []byte(base64.StdEncoding.EncodeToString(raw[:]))
}
