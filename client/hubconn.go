package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
)

// hubConn is one WebSocket to the hub. Frames are read by one goroutine and
// handed over on frames; writes are safe from any goroutine.
type hubConn struct {
	ws     *websocket.Conn
	frames chan proto.Frame
	quit   chan struct{} // closed by close
	done   chan struct{} // closed when the reader has stopped
	err    error         // why reading stopped; set before done closes
	once   sync.Once
}

func dialHub(ctx context.Context, hubURL string) (*hubConn, error) {
	u, err := proto.WebSocketURL(hubURL)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("connect to hub %s: %w", u, err)
	}
	ws.SetReadLimit(1 << 20)
	h := &hubConn{ws: ws, frames: make(chan proto.Frame, 64), quit: make(chan struct{}), done: make(chan struct{})}
	go h.readLoop()
	return h, nil
}

func (h *hubConn) readLoop() {
	defer close(h.done)
	for {
		_, b, err := h.ws.Read(context.Background())
		if err != nil {
			h.err = err
			return
		}
		var f proto.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			h.err = fmt.Errorf("hub sent a malformed frame: %w", err)
			h.ws.CloseNow()
			return
		}
		select {
		case h.frames <- f:
		case <-h.quit:
			return
		}
	}
}

func (h *hubConn) send(ctx context.Context, f proto.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.ws.Write(wctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s to hub: %w", f.Type, err)
	}
	return nil
}

// next waits for the next frame.
func (h *hubConn) next(ctx context.Context) (proto.Frame, error) {
	select {
	case f := <-h.frames:
		return f, nil
	case <-h.done:
		return proto.Frame{}, fmt.Errorf("hub connection lost: %w", h.err)
	case <-ctx.Done():
		return proto.Frame{}, ctx.Err()
	}
}

// close ends the connection and waits for the reader.
func (h *hubConn) close() {
	h.once.Do(func() {
		close(h.quit)
		h.ws.CloseNow()
	})
	<-h.done
}
