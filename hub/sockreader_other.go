//go:build !unix

package hub

import (
	"net"
	"syscall"
)

// rawConn: elsewhere the connection's own Read is used, holding a buffer
// while it waits.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (s *sockReader) readReady(uintptr) bool { return true }
