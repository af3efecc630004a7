package hub

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// countingConn counts the writes that reach a real TCP connection.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestSocketWriterGathers: corked writes reach the socket as one write, in
// order, when uncorked; uncorked writes go straight through; an idle writer
// holds no buffer.
func TestSocketWriterGathers(t *testing.T) {
	client, server := tcpPair(t)
	cc := &countingConn{Conn: server}
	w := &socketWriter{conn: cc}

	if _, err := w.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if got := cc.writes.Load(); got != 1 {
		t.Fatalf("uncorked write: %d writes, want 1", got)
	}
	w.cork()
	for _, s := range []string{"b", "cc", "ddd"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := w.gathered(), 6; got != want {
		t.Fatalf("gathered %d bytes, want %d", got, want)
	}
	if got := cc.writes.Load(); got != 1 {
		t.Fatalf("corked writes reached the socket: %d writes", got)
	}
	if err := w.uncork(); err != nil {
		t.Fatal(err)
	}
	if got := cc.writes.Load(); got != 2 {
		t.Fatalf("uncork: %d writes in all, want 2", got)
	}
	if w.pend != nil || w.gathered() != 0 {
		t.Fatal("an uncorked writer still holds a buffer")
	}
	if err := w.uncork(); err != nil || cc.writes.Load() != 2 {
		t.Fatalf("a second uncork wrote (err %v, %d writes)", err, cc.writes.Load())
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte("abccddd")) {
		t.Fatalf("socket got %q", got)
	}
}

// TestSocketWriterUncorkError: a failed gathered write is reported by
// uncork, not lost.
func TestSocketWriterUncorkError(t *testing.T) {
	_, server := tcpPair(t)
	w := &socketWriter{conn: server}
	w.cork()
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("a corked write failed: %v", err)
	}
	server.Close()
	if err := w.uncork(); err == nil {
		t.Fatal("uncork on a closed connection reported no error")
	}
}
