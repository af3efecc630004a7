package server

import "errors"

// SettingError is a setting that cannot work. New and Validate return one
// before anything is opened, so a command can tell a bad setting (exit
// status 2) from a failure to serve.
type SettingError struct {
	// Setting names the setting as an operator writes it: the flag of
	// `tryst serve` (--turn-ttl), which is also the name of its
	// environment variable and config-file key, or TRYST_TURN_SECRET.
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// errClosed is Run's answer after Shutdown or Close.
var errClosed = errors.New("server: closed")
