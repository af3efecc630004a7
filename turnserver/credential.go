package turnserver

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // MD5 is what RFC 5389 long-term credentials use.
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is the TURN REST API / coturn scheme.
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultCredentialTTL is how long a credential minted by Server.Credential
// stays usable for creating allocations.
const DefaultCredentialTTL = 10 * time.Minute

// maxIDLen bounds the id part of a username; STUN bounds the whole USERNAME
// attribute to 513 bytes.
const maxIDLen = 256

// MintCredential returns TURN REST API credentials for id, valid for
// creating allocations until now+ttl: username "<expiry-unix>:<id>" and
// password base64(HMAC-SHA1(secret, username)). This is what coturn checks
// with use-auth-secret/static-auth-secret, so one secret serves both.
func MintCredential(secret []byte, id string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + id
	return username, restPassword(secret, username)
}

func restPassword(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username)) // hash.Hash.Write never fails
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// longTermKey is the RFC 5389 long-term credential key,
// MD5(username ":" realm ":" password), that pion checks MESSAGE-INTEGRITY with.
func longTermKey(username, realm, password string) []byte {
	h := md5.New() //nolint:gosec // mandated by RFC 5389
	h.Write([]byte(username + ":" + realm + ":" + password))
	return h.Sum(nil)
}

// parseUsername splits a TURN REST username into its expiry and id. The id
// may be empty (coturn accepts a bare timestamp) and may itself contain ':'.
func parseUsername(username string) (expiry time.Time, id string, err error) {
	ts, id, _ := strings.Cut(username, ":")
	if ts == "" || len(ts) > 19 || len(id) > maxIDLen {
		return time.Time{}, "", errBadUsername
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return time.Time{}, "", errBadUsername
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", errBadUsername
	}
	return time.Unix(sec, 0), id, nil
}

// ParseSecrets reads a secrets file: one secret per line, surrounding
// whitespace trimmed, blank lines and lines starting with '#' ignored. The
// first secret signs new credentials; all of them verify. The returned
// slices do not alias data.
func ParseSecrets(data []byte) ([][]byte, error) {
	var secrets [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), len(data)+1)
	line := 0
	for sc.Scan() {
		line++
		s := bytes.TrimSpace(sc.Bytes())
		if len(s) == 0 || s[0] == '#' {
			continue
		}
		secrets = append(secrets, bytes.Clone(s))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("turnserver: parse secrets: line %d: %w", line+1, err)
	}
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	return secrets, nil
}

// ParsePortRange parses "MIN-MAX" (inclusive, 1..65535, MIN <= MAX) or a
// single port "P".
func ParsePortRange(s string) (min, max int, err error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		hi = lo
	}
	min, err1 := parsePort(lo)
	max, err2 := parsePort(hi)
	if err1 != nil || err2 != nil || min > max {
		return 0, 0, fmt.Errorf("turnserver: %w %q: want MIN-MAX within 1-65535", errPortRange, s)
	}
	return min, max, nil
}

func parsePort(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 5 {
		return 0, errPortRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errPortRange
		}
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, errPortRange
	}
	return p, nil
}
