package turnserver

import (
	"fmt"
	"net"
	"syscall"
	"testing"
)

// TestListenRetriesWhenTCPPortTaken: with port 0, the TCP listener must take
// the port the kernel gave the UDP socket; when a TCP socket already holds
// it, New starts over with another port instead of failing (or crashing).
func TestListenRetriesWhenTCPPortTaken(t *testing.T) {
	calls := 0
	listenTCP = func(network, addr string) (net.Listener, error) {
		calls++
		if calls <= 2 {
			return nil, fmt.Errorf("listen %s: %w", addr, syscall.EADDRINUSE)
		}
		return net.Listen(network, addr)
	}
	defer func() { listenTCP = net.Listen }()
	s, err := New(Config{ListenAddr: "127.0.0.1:0", Secrets: [][]byte{[]byte("secret-0123456789")}, Sockets: 1})
	if err != nil {
		t.Fatalf("New after two collisions: %v", err)
	}
	defer s.Close()
	if calls != 3 {
		t.Errorf("TCP listen called %d times, want 3", calls)
	}
	if s.UDPAddr().(*net.UDPAddr).Port != s.TCPAddr().(*net.TCPAddr).Port {
		t.Errorf("UDP %v and TCP %v on different ports", s.UDPAddr(), s.TCPAddr())
	}
}
