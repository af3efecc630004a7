package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Access tokens are compact JWTs signed with HMAC-SHA256 (RFC 7519, "HS256").
// An application that embeds Tryst mints them for its users with the shared
// token secret; the hub verifies them when access control is on.

// MaxAccessTokenLifetime bounds how far in the future a token's "exp" may be:
// access tokens are meant to be short-lived, so a leaked one soon dies.
const MaxAccessTokenLifetime = 24 * time.Hour

// tokenLeeway tolerates small clock differences between the minting
// application and the hub.
const tokenLeeway = 30 * time.Second

const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

// ErrUnauthorized is returned for a missing, malformed, expired or
// wrongly-signed access token.
var ErrUnauthorized = errors.New("access token required or invalid")

type accessClaims struct {
	Subject   string `json:"sub,omitempty"`
	Expiry    *int64 `json:"exp"`
	NotBefore *int64 `json:"nbf,omitempty"`
	IssuedAt  *int64 `json:"iat,omitempty"`
}

// MintAccessToken returns an HS256 JWT for subject that expires after ttl.
func MintAccessToken(secret []byte, subject string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint access token: empty secret")
	}
	if ttl <= 0 || ttl > MaxAccessTokenLifetime {
		return "", fmt.Errorf("mint access token: ttl %v outside (0, %v]", ttl, MaxAccessTokenLifetime)
	}
	iat, exp := now.Unix(), now.Add(ttl).Unix()
	payload, err := json.Marshal(accessClaims{Subject: subject, Expiry: &exp, IssuedAt: &iat})
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(jwtHeader)) + "." + enc.EncodeToString(payload)
	return signing + "." + enc.EncodeToString(sign(secret, signing)), nil
}

func sign(secret []byte, s string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// VerifyAccessToken checks token against any of secrets (so that a secret
// can be rotated) and its time claims against now.
func VerifyAccessToken(secrets [][]byte, token string, now time.Time) error {
	if len(token) > 4096 {
		return fmt.Errorf("%w: token too long", ErrUnauthorized)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: not a JWT", ErrUnauthorized)
	}
	enc := base64.RawURLEncoding
	hdr, err := enc.DecodeString(parts[0])
	if err != nil {
		return fmt.Errorf("%w: bad header encoding", ErrUnauthorized)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	// Only HS256 is accepted, whatever the header claims: "none" and
	// algorithm-confusion tricks fail here.
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "HS256" {
		return fmt.Errorf("%w: algorithm must be HS256", ErrUnauthorized)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("%w: bad signature encoding", ErrUnauthorized)
	}
	signing := parts[0] + "." + parts[1]
	valid := false
	for _, s := range secrets {
		if hmac.Equal(sig, sign(s, signing)) {
			valid = true
			break
		}
	}
	if !valid {
		return fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	body, err := enc.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("%w: bad payload encoding", ErrUnauthorized)
	}
	var c accessClaims
	if err := json.Unmarshal(body, &c); err != nil {
		return fmt.Errorf("%w: bad claims", ErrUnauthorized)
	}
	switch {
	case c.Expiry == nil:
		return fmt.Errorf("%w: no exp claim", ErrUnauthorized)
	case now.After(time.Unix(*c.Expiry, 0).Add(tokenLeeway)):
		return fmt.Errorf("%w: expired", ErrUnauthorized)
	case time.Unix(*c.Expiry, 0).After(now.Add(MaxAccessTokenLifetime + tokenLeeway)):
		return fmt.Errorf("%w: exp too far in the future", ErrUnauthorized)
	case c.NotBefore != nil && now.Add(tokenLeeway).Before(time.Unix(*c.NotBefore, 0)):
		return fmt.Errorf("%w: not yet valid", ErrUnauthorized)
	}
	return nil
}
