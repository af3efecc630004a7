package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkReadyFile refuses a ready file that could never be written: a
// directory, or a name in a directory that does not exist.
func (c Config) checkReadyFile() error {
	path := c.ReadyFile
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return bad("--ready-file", "%s is a directory", path)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return &SettingError{"--ready-file", err}
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return bad("--ready-file", "%s: no such directory", filepath.Dir(path))
	}
	return nil
}

// writeReadyFile writes a as one line of JSON to path. A regular file (or
// none yet) gets a temporary file in the same directory renamed over it, so
// a reader that sees the file sees all of it. Anything else is written
// straight into: a pipe (/dev/fd/3 from a parent process) or a FIFO whose
// reader has it open; opened non-blocking, so a FIFO nobody reads is an
// error instead of a server stuck before it serves.
func writeReadyFile(path string, a Addrs) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(data)
	if err == nil {
		// Addresses are no secret; whoever waits for the file may be
		// another user (CreateTemp makes it 0600).
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
