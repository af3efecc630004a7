package hub

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// readBufferSize is the size of coder/websocket's own read buffer, which
// it keeps for the connection's life (net/http hands a hijacked connection
// 4 KiB). The bytes read wait in a sockReader's pooled buffer instead, so
// this one only has to hold a frame header: the smallest bufio allows.
const readBufferSize = 16

// writeBufferSize is the size of a connection's write buffer, which
// coder/websocket also keeps for life. The hub's frames do not need it
// (socketWriter gathers each into one write); the frames coder/websocket
// writes by itself (pongs, the close frame: at most 127 bytes from a
// server) fit it whole.
const writeBufferSize = 128

// socketWriter is what a connection's bufio.Writer writes to: the socket,
// or, while the hub's writer has frames to write (corked), a pooled buffer
// that goes out in one write once they are done. coder/websocket flushes
// its buffer at the end of every frame and whenever it fills up, so with
// only a buffer between them every frame cost at least one system call, an
// offer of 2 kB three; now a burst of queued frames costs one. Pongs that
// coder/websocket's reader writes meanwhile join the gathered bytes.
type socketWriter struct {
	conn net.Conn

	mu     sync.Mutex // Write comes from the reader too (pongs)
	corked bool
	pend   *[]byte // from pendBufs, while corked writes wait
}

// pendBufs recycles the gathering buffers: an idle connection holds none.
var pendBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledPend keeps an unusually large burst's buffer out of the pool.
const maxPooledPend = 64 << 10

func (w *socketWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		return w.conn.Write(p)
	}
	if w.pend == nil {
		w.pend = pendBufs.Get().(*[]byte)
	}
	*w.pend = append(*w.pend, p...)
	return len(p), nil
}

// cork gathers writes until uncork.
func (w *socketWriter) cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// gathered reports how many bytes wait for uncork.
func (w *socketWriter) gathered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pend == nil {
		return 0
	}
	return len(*w.pend)
}

// uncork writes what was gathered, in one write, and lets later writes
// through. It is a no-op when nothing waits.
func (w *socketWriter) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	if w.pend == nil {
		return nil
	}
	_, err := w.conn.Write(*w.pend)
	if cap(*w.pend) <= maxPooledPend {
		*w.pend = (*w.pend)[:0]
		pendBufs.Put(w.pend)
	}
	w.pend = nil
	return err
}

// smallBuffers wraps the ResponseWriter given to websocket.Accept so that
// the hijacked connection reads through a sockReader and writes through a
// socketWriter with small buffers instead of net/http's, and keeps the
// hijacked net.Conn, whose write deadline bounds each write (see
// conn.write).
type smallBuffers struct {
	http.ResponseWriter
	hj   http.Hijacker
	conn net.Conn      // set by a successful Hijack
	sw   *socketWriter // likewise
	rd   *sockReader   // likewise
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
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	w.rd = newSockReader(conn, pending)
	w.sw = &socketWriter{conn: conn}
	// coder/websocket reads what net/http's reader still buffers and then
	// resets that reader's source to the net.Conn returned here: the
	// sockReader, which holds those bytes already.
	return w.rd, bufio.NewReadWriter(bufio.NewReaderSize(w.rd, readBufferSize), bufio.NewWriterSize(w.sw, writeBufferSize)), nil
}
