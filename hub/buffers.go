package hub

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// connBufferSize is the size of a connection's read buffer and of its write
// buffer. net/http hands a hijacked connection 4 KiB buffers each way, and
// coder/websocket keeps them for the connection's whole life: 8 KiB of every
// idle client, a third of the hub's memory per connection. Signaling frames
// are mostly a few hundred bytes; a larger one (an offer) simply takes one
// more system call to read or write, which is far cheaper than the memory.
const connBufferSize = 1024

// smallBuffers wraps the ResponseWriter given to websocket.Accept so that
// the hijacked connection gets connBufferSize buffers instead of net/http's,
// and keeps the hijacked net.Conn, whose write deadline bounds each write
// (see conn.write).
type smallBuffers struct {
	http.ResponseWriter
	hj   http.Hijacker
	conn net.Conn // set by a successful Hijack
}

// withSmallBuffers wraps w if it can be hijacked at all; otherwise it
// returns w and a nil *smallBuffers, and Accept reports the failure as
// before.
func withSmallBuffers(w http.ResponseWriter) (http.ResponseWriter, *smallBuffers) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return w, nil
	}
	sb := &smallBuffers{ResponseWriter: w, hj: hj}
	return sb, sb
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hijacks the connection and swaps net/http's buffers for small ones,
// carrying over any bytes the client already sent past the handshake.
func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := w.hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = conn
	// net/http has flushed the 101 response by now; flush again in case a
	// future version leaves bytes in its writer.
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	r := brw.Reader
	if n := r.Buffered(); n <= connBufferSize {
		if n == 0 {
			r = bufio.NewReaderSize(conn, connBufferSize)
		} else {
			// The pending bytes must sit in the new reader's buffer, not in
			// its source: coder/websocket re-reads r.Buffered() bytes and then
			// resets the reader's source to the connection.
			pending, _ := brw.Reader.Peek(n)
			r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pending)), conn), connBufferSize)
			if _, err := r.Peek(n); err != nil {
				conn.Close()
				return nil, nil, err
			}
		}
	} // else: a client that pipelined more than a buffer keeps the big one.
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, connBufferSize)), nil
}
