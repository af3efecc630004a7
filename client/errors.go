package client

import "errors"

// Errors that end a session; callers branch on them.
var (
	// ErrPasswordMismatch: the two sides typed different passwords.
	ErrPasswordMismatch = errors.New("password mismatch: the other side uses a different password")
	// ErrNoSuchRoom: the code is unknown or the room expired.
	ErrNoSuchRoom = errors.New("no such room: check the code, or the room expired")
	// ErrRoomFull: the room already has two members.
	ErrRoomFull = errors.New("room is full")
	// ErrPeerLeft: the other member left the room for good.
	ErrPeerLeft = errors.New("the other side left")
)

// Errors the package keeps to itself.
var (
	// errStopped: the session goroutine has stopped (Run is returning).
	errStopped = errors.New("client stopped")
	// errNotOpen: a send before the data channel exists.
	errNotOpen = errors.New("data channel not open")
)
