package hub

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

// MinTokenSecretLen is the shortest access-token secret accepted: an HMAC
// key shorter than 16 bytes can be guessed offline from a single token.
const MinTokenSecretLen = 16

// ErrNoTokenSecret is returned by ParseTokenSecrets for a file that holds
// no secret at all (only blank and comment lines).
var ErrNoTokenSecret = errors.New("hub: no token secret")

// ParseTokenSecrets reads a file of access-token secrets (TokenSecrets):
// one secret per line, surrounding whitespace trimmed, blank lines and lines
// starting with '#' ignored. The first secret is the one an application
// should mint with; all of them verify, so a secret can be rotated. Each
// must be at least MinTokenSecretLen bytes. Errors number the secrets, never
// quote them. The returned slices do not alias data.
//
// The format is the TURN secrets file's; the parser is the hub's own, so the
// two secrets can evolve apart.
func ParseTokenSecrets(data []byte) ([][]byte, error) {
	return parseSecretLines(data, "token secret", MinTokenSecretLen, ErrNoTokenSecret)
}

// ErrNoHubKey is returned by ParseHubKeys for a file that holds no key.
var ErrNoHubKey = errors.New("hub: no hub key")

// ParseHubKeys reads a hub key file (Config.HubKeys) in the format of
// ParseTokenSecrets: one key per line, the first signs resume tokens, all
// verify them, so a key can be rotated; each at least MinHubKeyLen bytes.
// NewHubKey makes a line of it.
func ParseHubKeys(data []byte) ([][]byte, error) {
	return parseSecretLines(data, "hub key", MinHubKeyLen, ErrNoHubKey)
}

func parseSecretLines(data []byte, what string, minLen int, errNone error) ([][]byte, error) {
	var secrets [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	// One line may be as long as the whole file.
	sc.Buffer(make([]byte, 0, 4096), len(data)+1)
	for sc.Scan() {
		s := bytes.TrimSpace(sc.Bytes())
		if len(s) == 0 || s[0] == '#' {
			continue
		}
		if len(s) < minLen {
			return nil, fmt.Errorf("hub: %s %d is %d bytes: at least %d bytes are needed (e.g. head -c 32 /dev/urandom | base64)",
				what, len(secrets)+1, len(s), minLen)
		}
		secrets = append(secrets, bytes.Clone(s))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hub: parse %ss: %w", what, err)
	}
	if len(secrets) == 0 {
		return nil, errNone
	}
	return secrets, nil
}
