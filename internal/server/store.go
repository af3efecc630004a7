package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/hub/redisstore"
)

// storeKind checks --store: "" or "memory", else a Redis URL without a
// password.
func (c Config) storeKind() (redis bool, err error) {
	switch c.Store {
	case "", "memory":
		return false, nil
	}
	u, err := url.Parse(c.Store)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return false, bad("--store", "%q: use memory, or redis://HOST:PORT/DB (rediss:// for TLS)", redactStoreURL(c.Store))
	}
	if _, ok := u.User.Password(); ok {
		return false, bad("--store", "the URL carries a password, which every user of this machine can read on the command line: put it in --store-password-file or TRYST_STORE_PASSWORD")
	}
	return true, nil
}

// redactStoreURL hides whatever could be a password in a store URL that
// failed to parse, for an error message.
func redactStoreURL(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
		return "…" + s[i:]
	}
	return s
}

// storePassword reads the Redis password: --store-password-file, else
// StorePassword (TRYST_STORE_PASSWORD); only with a Redis store.
func (c Config) storePassword(log *slog.Logger) (string, error) {
	redis, err := c.storeKind()
	if err != nil {
		return "", err
	}
	if !redis {
		if c.StorePasswordFile != "" {
			return "", bad("--store-password-file", "set, but --store is memory")
		}
		return "", nil
	}
	if c.StorePasswordFile == "" {
		return c.StorePassword, nil
	}
	secrets, err := readSecretFile("--store-password-file", c.StorePasswordFile, func(b []byte) ([][]byte, error) {
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" || strings.ContainsAny(p, "\r\n") {
			return nil, errors.New("want one line: the password")
		}
		return [][]byte{[]byte(p)}, nil
	}, log)
	if err != nil {
		return "", err
	}
	return string(secrets[0]), nil
}

// openStore opens the Redis store when --store names one; nil for the
// default in-memory store, which the hub makes and owns.
func (c Config) openStore(p *prepared, log *slog.Logger) (hub.Store, error) {
	if redis, _ := c.storeKind(); !redis {
		return nil, nil
	}
	ttl, lim, err := p.hub.StoreLimits()
	if err != nil {
		return nil, &SettingError{"hub settings", err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.New(ctx, redisstore.Options{
		URL: c.Store, Password: p.storePass, TTL: ttl, Limits: lim, Logger: log.With("component", "store"),
	})
	if err != nil {
		return nil, fmt.Errorf("room store: %w", err)
	}
	return s, nil
}
