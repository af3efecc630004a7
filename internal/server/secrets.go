package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/tryst-chat/tryst/turnserver"
)

// parseTURNSecrets parses TURN secrets (a file, or TRYST_TURN_SECRET) and
// applies the relay's own rules to them (turnserver.CheckSecrets: a short
// HMAC key can be guessed offline from a single credential), so a bad file
// is refused before anything starts.
func parseTURNSecrets(data []byte) ([][]byte, error) {
	secrets, err := turnserver.ParseSecrets(data)
	if err != nil {
		return nil, err
	}
	if err := turnserver.CheckSecrets(secrets); err != nil {
		return nil, err
	}
	return secrets, nil
}

// readSecretFile reads the secrets file of setting with parse. A file that
// group or others may read gets a warning naming the file and its mode,
// never its content: whoever reads it can mint credentials. Errors are
// *SettingError and never quote a secret.
func readSecretFile(setting, file string, parse func([]byte) ([][]byte, error), log *slog.Logger) ([][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, &SettingError{setting, err}
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, &SettingError{setting, err}
	}
	secrets, err := parse(data)
	if err != nil {
		return nil, &SettingError{setting, fmt.Errorf("%s: %w", file, err)}
	}
	// The mode of the file actually read, through any symlink (a
	// Kubernetes Secret volume is made of them).
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("secret file is readable by group or others: restrict it to the service user (chmod 600)",
			"flag", setting, "file", file, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	return secrets, nil
}
