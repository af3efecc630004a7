package hubconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
)

// Options adjust a connection. The zero value (or nil) is what a client
// wants.
type Options struct {
	// Dial is passed to websocket.Dial: an HTTP client of one's own, headers
	// such as Origin.
	Dial *websocket.DialOptions
	// ReadLimit caps one frame from the hub (default 1 MiB; the hub's
	// frames are a few kilobytes).
	ReadLimit int64
	// Buffer is how many frames are read ahead of the caller (default 64).
	// When it is full the reader waits, and so do the pongs to the hub's
	// pings: a caller that stops reading for good looks like a stalled peer.
	Buffer int
	// WriteTimeout, when set, bounds each Send on top of its context.
	WriteTimeout time.Duration
}

// Conn is one WebSocket to the hub. Send is safe from any goroutine; Next
// and Await are meant for one reader at a time.
type Conn struct {
	ws     *websocket.Conn
	wto    time.Duration
	frames chan proto.Frame
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the reader has stopped
	err    error         // why reading stopped; set before done closes
	once   sync.Once
}

// Dial opens a connection to the hub's WebSocket URL (see proto.WebSocketURL).
// As with websocket.Dial, the HTTP response of a refused handshake comes back
// with the error, so that callers can explain a 403 or a 429. ctx bounds the
// handshake only.
func Dial(ctx context.Context, url string, opts *Options) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &Options{}
	}
	ws, resp, err := websocket.Dial(ctx, url, opts.Dial)
	if err != nil {
		return nil, resp, err
	}
	return New(ws, opts), resp, nil
}

// New takes over reading ws, a WebSocket already open to the hub. The caller
// may still write to ws directly (tests send what Send would not) and close
// it with a status of its choice.
func New(ws *websocket.Conn, opts *Options) *Conn {
	if opts == nil {
		opts = &Options{}
	}
	limit, buf := opts.ReadLimit, opts.Buffer
	if limit <= 0 {
		limit = 1 << 20
	}
	if buf <= 0 {
		buf = 64
	}
	ws.SetReadLimit(limit)
	c := &Conn{
		ws: ws, wto: opts.WriteTimeout,
		frames: make(chan proto.Frame, buf), quit: make(chan struct{}), done: make(chan struct{}),
	}
	go c.read()
	return c
}

// read hands the hub's frames to Next until the connection ends. Its
// context is Background: in coder/websocket a cancelled read closes the
// connection, and a caller's wait ending is no reason to.
func (c *Conn) read() {
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		f, err := proto.DecodeFrame(b)
		if err != nil {
			c.err = fmt.Errorf("hub sent a malformed frame: %w", err)
			_ = c.ws.CloseNow()
			return
		}
		select {
		case c.frames <- f:
		case <-c.quit:
			return
		}
	}
}

// Send writes one frame.
func (c *Conn) Send(ctx context.Context, f proto.Frame) error {
	b, err := proto.EncodeFrame(f)
	if err != nil {
		return err
	}
	if c.wto > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.wto)
		defer cancel()
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s to hub: %w", f.Type, err)
	}
	return nil
}

// Next returns the next frame from the hub. Frames that arrived before the
// connection ended are returned first; then the error says why it ended
// (websocket.CloseStatus reads the hub's close code from it). When ctx ends
// first, Next returns ctx.Err() and the connection stays open.
func (c *Conn) Next(ctx context.Context) (proto.Frame, error) {
	select {
	case f := <-c.frames:
		return f, nil
	case <-c.done:
		select {
		case f := <-c.frames:
			return f, nil
		default:
		}
		return proto.Frame{}, fmt.Errorf("hub connection lost: %w", c.err)
	case <-ctx.Done():
		return proto.Frame{}, ctx.Err()
	}
}

// Await skips frames (notices such as peer-joined) until one of the given
// types arrives. An error frame ends the wait, returned with a *proto.Error,
// unless TypeError is one of the types.
func (c *Conn) Await(ctx context.Context, types ...string) (proto.Frame, error) {
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return f, fmt.Errorf("waiting for %s: %w", strings.Join(types, " or "), err)
		}
		if slices.Contains(types, f.Type) {
			return f, nil
		}
		if err := f.Err(); err != nil {
			return f, fmt.Errorf("waiting for %s: %w", strings.Join(types, " or "), err)
		}
	}
}

// Frames delivers the hub's frames, for callers that wait on other things
// in the same select; Done and Err tell when and why the stream ended.
func (c *Conn) Frames() <-chan proto.Frame { return c.frames }

// Done is closed when the connection has ended and no more frames will be
// read; frames read before then may still be in Frames.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended; it is valid once Done is closed.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close drops the connection without a close handshake and returns when the
// reader has stopped. It is idempotent.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.quit)
		err = c.ws.CloseNow()
	})
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
