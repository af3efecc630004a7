package turnserver

import "errors"

var (
	// ErrNoSecret is returned when a configuration or secrets file holds no secret.
	ErrNoSecret = errors.New("turnserver: at least one secret is required")
	// ErrShortSecret is returned for a secret shorter than MinSecretLen bytes.
	ErrShortSecret = errors.New("at least 16 bytes are needed (e.g. head -c 32 /dev/urandom | base64)")

	errBadUsername = errors.New("username is not <expiry-unix>:<id>")
	errPortRange   = errors.New("invalid port range")
	errGlobalQuota = errors.New("allocation limit reached")
	errNoPort      = errors.New("no free relay port")
)
