package client

import "errors"

// Errors that end a session; callers branch on them.
var (
	// ErrPasswordMismatch: a key confirmation failed (docs/PROTOCOL.md,
	// "PAKE"): the two sides typed different passwords, or someone on the
	// other end (the hub included) guessed one and missed.
	ErrPasswordMismatch = errors.New("password mismatch: the other side uses a different password (or someone guessed one)")
	// ErrGuessLimit: the room was closed after e2e.GuessLimit failed key
	// confirmations, by this side or the other.
	ErrGuessLimit = errors.New("the room was closed after too many failed password attempts")
	// ErrNoSuchRoom: the code is unknown or the room expired.
	ErrNoSuchRoom = errors.New("no such room: check the code, or the room expired")
	// ErrRoomFull: the room already has two members.
	ErrRoomFull = errors.New("room is full")
	// ErrPeerLeft: the other member left the room for good.
	ErrPeerLeft = errors.New("the other side left")
	// ErrReplaced: another process resumed this member's place in the room
	// with its resume token (the same command run again while this one
	// still ran); this one steps aside without closing the room.
	ErrReplaced = errors.New("another tryst process took over this room (the same command was run again)")
)

// errRoomForgotten: the hub answered no_such_room to a resume of a room
// this member had been in, and no direct connection is left to go on with.
var errRoomForgotten = &sentenceError{
	msg: "the hub no longer knows this room (it expired, or the hub restarted and forgot it), and the direct connection is gone",
	err: ErrNoSuchRoom,
}

// errEarlierRoomGone: a rerun found the room of the process before it gone.
var errEarlierRoomGone = &sentenceError{
	msg: "the room of the earlier run is gone (it expired, or the hub restarted and forgot it)",
	err: ErrNoSuchRoom,
}

// Errors the package keeps to itself.
var (
	// errStopped: the session goroutine has stopped (Run is returning).
	errStopped = errors.New("client stopped")
	// errNotOpen: a send before the data channel exists.
	errNotOpen = errors.New("data channel not open")
)

// sentenceError says what happened in words for people, and still matches
// the error it stands for with errors.Is.
type sentenceError struct {
	msg string
	err error
}

func (e *sentenceError) Error() string { return e.msg }
func (e *sentenceError) Unwrap() error { return e.err }
