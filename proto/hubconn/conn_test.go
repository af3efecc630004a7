package hubconn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// fakeHub accepts one WebSocket per request and runs serve on it; serve's
// end closes the connection with 1000.
func fakeHub(t *testing.T, serve func(ctx context.Context, ws *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		serve(r.Context(), ws)
		_ = ws.Close(websocket.StatusNormalClosure, "bye")
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + proto.WebSocketPath
}

func write(ctx context.Context, ws *websocket.Conn, frames ...string) {
	for _, f := range frames {
		if ws.Write(ctx, websocket.MessageText, []byte(f)) != nil {
			return
		}
	}
}

func dial(t *testing.T, url string) *hubconn.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := hubconn.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAwaitSkipsNoticesAndReturnsErrorFrames(t *testing.T) {
	t.Parallel()
	url := fakeHub(t, func(ctx context.Context, ws *websocket.Conn) {
		// Echo the type of what the client sends, after a notice.
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			f, _ := proto.DecodeFrame(b)
			switch f.Type {
			case proto.TypeCreate:
				write(ctx, ws, `{"type":"peer-joined"}`, `{"type":"created","room":"R"}`)
			case proto.TypeJoin:
				write(ctx, ws, `{"type":"peer-left"}`, `{"type":"error","code":"no_such_room","message":"no such room"}`)
			case proto.TypeLeave:
				return
			}
		}
	})
	ctx := testCtx(t)
	c := dial(t, url)
	if err := c.Send(ctx, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion}); err != nil {
		t.Fatal(err)
	}
	f, err := c.Await(ctx, proto.TypeCreated)
	if err != nil || f.Type != proto.TypeCreated || f.Room != "R" {
		t.Fatalf("Await(created) = %+v, %v", f, err)
	}
	if err := c.Send(ctx, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "R"}); err != nil {
		t.Fatal(err)
	}
	f, err = c.Await(ctx, proto.TypeJoined)
	var pe *proto.Error
	if !errors.As(err, &pe) || pe.Code != proto.CodeNoSuchRoom || pe.Message != "no such room" || f.Type != proto.TypeError {
		t.Fatalf("Await(joined) after an error frame = %+v, %v", f, err)
	}
	if err := c.Send(ctx, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "R"}); err != nil {
		t.Fatal(err)
	}
	if f, err = c.Await(ctx, proto.TypeJoined, proto.TypeError); err != nil || f.Code != proto.CodeNoSuchRoom {
		t.Fatalf("Await(joined, error) = %+v, %v", f, err)
	}
	if err := c.Send(ctx, proto.Frame{Type: proto.TypeLeave}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after leave: %v, want the hub's close 1000", err)
	}
}

// A wait that times out leaves the connection as it was: the frame that
// comes later is still read.
func TestNextContextEndsTheWaitNotTheConnection(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	url := fakeHub(t, func(ctx context.Context, ws *websocket.Conn) {
		select {
		case <-release:
		case <-ctx.Done():
			return
		}
		write(ctx, ws, `{"type":"offer","data":"x"}`)
		_, _, _ = ws.Read(ctx) // until the client goes
	})
	c := dial(t, url)
	short, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Next(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context = %v", err)
	}
	close(release)
	if f, err := c.Next(testCtx(t)); err != nil || f.Data != "x" {
		t.Fatalf("Next after a cancelled wait = %+v, %v", f, err)
	}
}

// Frames sent just before the hub closes are delivered before the close.
func TestNextDrainsBeforeReportingTheClose(t *testing.T) {
	t.Parallel()
	url := fakeHub(t, func(ctx context.Context, ws *websocket.Conn) {
		write(ctx, ws, `{"type":"error","code":"rate_limited","message":"slow down"}`, `{"type":"room-closed"}`)
	})
	c := dial(t, url)
	ctx := testCtx(t)
	<-c.Done()
	for _, want := range []string{proto.TypeError, proto.TypeRoomClosed} {
		if f, err := c.Next(ctx); err != nil || f.Type != want {
			t.Fatalf("Next = %+v, %v; want %s", f, err, want)
		}
	}
	_, err := c.Next(ctx)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure || !strings.Contains(err.Error(), "hub connection lost") {
		t.Fatalf("Next after the close = %v", err)
	}
	if websocket.CloseStatus(c.Err()) != websocket.StatusNormalClosure {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestMalformedFrameEndsTheConnection(t *testing.T) {
	t.Parallel()
	url := fakeHub(t, func(ctx context.Context, ws *websocket.Conn) {
		write(ctx, ws, `{"no":"type"}`)
		_, _, _ = ws.Read(ctx)
	})
	c := dial(t, url)
	if _, err := c.Next(testCtx(t)); err == nil || !strings.Contains(err.Error(), "malformed frame") {
		t.Fatalf("Next = %v, want a malformed-frame error", err)
	}
}

func TestDialRefusedKeepsTheResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, resp, err := hubconn.Dial(testCtx(t), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("Dial to a refusing server = %v, %v", resp, err)
	}
}

// Close is idempotent, waits for the reader (TestMain checks for leaks) and
// unblocks a reader stuck on a full buffer.
func TestCloseStopsAFullReader(t *testing.T) {
	t.Parallel()
	url := fakeHub(t, func(ctx context.Context, ws *websocket.Conn) {
		for range 4 {
			write(ctx, ws, `{"type":"candidate","data":"c"}`)
		}
		_, _, _ = ws.Read(ctx)
	})
	c, _, err := hubconn.Dial(testCtx(t), url, &hubconn.Options{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := c.Next(testCtx(t)); err != nil || f.Type != proto.TypeCandidate {
		t.Fatalf("Next = %+v, %v", f, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Send(testCtx(t), proto.Frame{Type: proto.TypeLeave}); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}
