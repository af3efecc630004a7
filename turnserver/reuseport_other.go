//go:build !unix

package turnserver

import "syscall"

// reusePortSupported is false where SO_REUSEPORT does not exist (Windows):
// the relay listens on one UDP socket.
const reusePortSupported = false

func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
