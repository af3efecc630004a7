package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/netip"
	"time"
)

// ClientFrameForTest encodes a client's frame (masked with the all-zero
// key) for the external tests' hand-written client.
var ClientFrameForTest = clientFrame

// NewRoomCodeForTest exposes newRoomCode to the external tests.
func NewRoomCodeForTest() string { return newRoomCode() }

func signForTestImpl(secret []byte, claims string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(jwtHeader)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

// SignForTest signs arbitrary claims.
var SignForTest = signForTestImpl

// AddrHeaderForTest names the request header that WithClientAddrForTest
// takes the client's address from.
const AddrHeaderForTest = "X-Test-Client-Addr"

// WithClientAddrForTest returns cfg with the per-address limits keyed on the
// AddrHeaderForTest header (the socket's address when it is absent), so a
// test can be many clients at once on one loopback listener. The production
// hub never reads a header for this.
func WithClientAddrForTest(cfg Config) Config {
	cfg.clientAddr = func(r *http.Request) netip.Addr {
		if a, err := netip.ParseAddr(r.Header.Get(AddrHeaderForTest)); err == nil {
			return a
		}
		return socketAddr(r)
	}
	return cfg
}

// ParseResumeTokenForTest decodes and verifies a resume token with keys.
func ParseResumeTokenForTest(keys [][]byte, s string) (m Member, paired bool, issued time.Time, err error) {
	tok, err := newKeyring(keys).parse(s)
	return tok.Member, tok.paired, time.UnixMilli(tok.issued), err
}

// MintResumeTokenForTest issues a resume token for m with the first key.
func MintResumeTokenForTest(keys [][]byte, m Member, paired bool, now time.Time) string {
	return newKeyring(keys).mint(m, paired, now)
}
