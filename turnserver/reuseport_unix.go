//go:build unix

package turnserver

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported: several UDP sockets can share the listen port, and
// the kernel spreads the clients over them.
const reusePortSupported = true

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
