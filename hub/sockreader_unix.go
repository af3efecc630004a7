//go:build unix

package hub

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawConn is conn's socket when conn is a bare TCP connection, whose bytes
// nothing else buffers; nil otherwise.
func rawConn(conn net.Conn) syscall.RawConn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readReady is the callback of the socket's RawConn.Read: it reads into a
// pooled buffer, or reports that nothing has come (EAGAIN) so that the
// runtime parks the goroutine until the socket is readable.
func (s *sockReader) readReady(fd uintptr) bool {
	b := sockBufs.Get().(*[]byte)
	n, err := syscall.Read(int(fd), *b)
	for err == syscall.EINTR {
		n, err = syscall.Read(int(fd), *b)
	}
	switch {
	case err == syscall.EAGAIN:
		sockBufs.Put(b)
		return false
	case err != nil:
		s.err = os.NewSyscallError("read", err)
	case n == 0:
		s.err = io.EOF
	default:
		s.buf, s.r, s.w = b, 0, n
		return true
	}
	sockBufs.Put(b)
	return true
}
