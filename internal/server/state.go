package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tryst-chat/tryst/hub"
)

// hubKeyName is the hub key's file in the state directory.
const hubKeyName = "hub-key"

// hubKeys are the keys the hub signs resume tokens with, and where they
// came from, for the log.
type hubKeys struct {
	keys    [][]byte // nil: none lasts beyond this process
	file    string
	created bool   // generated into the state directory by this start
	why     string // with keys nil: why not
}

// loadHubKeys finds the hub keys: HubKeyFile's (read by prepare, as
// fromFile), else the state directory's, generated there on first use.
// A state directory that cannot be used is not an error: the hub then runs
// with a random key, and rooms do not survive a restart (the log says so).
func (c Config) loadHubKeys(fromFile [][]byte, log *slog.Logger) hubKeys {
	if fromFile != nil {
		return hubKeys{keys: fromFile, file: c.HubKeyFile}
	}
	if c.StateDir == "" {
		return hubKeys{why: "no state directory (--state-dir)"}
	}
	file := filepath.Join(c.StateDir, hubKeyName)
	created, err := ensureHubKey(c.StateDir, file)
	if err != nil {
		return hubKeys{file: file, why: err.Error()}
	}
	keys, err := readSecretFile("--state-dir", file, hub.ParseHubKeys, log)
	if err != nil {
		return hubKeys{file: file, why: err.Error()}
	}
	return hubKeys{keys: keys, file: file, created: created}
}

// ensureHubKey makes dir (0700) and, unless it exists, file: a new hub key,
// mode 0600, written completely before it takes the name, so that nodes
// starting together on one directory end up with one key.
func ensureHubKey(dir, file string) (created bool, err error) {
	if _, err := os.Stat(file); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, ".hub-key-*") // mode 0600
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(hub.NewHubKey(), '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// A hard link fails if the name exists: whoever was first keeps it.
	err = os.Link(tmp.Name(), file)
	switch {
	case errors.Is(err, fs.ErrExist):
		return false, nil
	case err != nil:
		// A file system without hard links.
		if err = os.Rename(tmp.Name(), file); err != nil {
			return false, err
		}
	}
	syncDir(dir)
	return true, nil
}

// syncDir makes a new name in dir durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
