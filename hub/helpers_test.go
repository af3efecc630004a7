package hub_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// testHub is a real hub behind a real loopback HTTP server.
type testHub struct {
	*hub.Hub
	srv *httptest.Server
	m   *metrics.Hub
	url string // ws://127.0.0.1:port/v1/ws
}

func startHub(t testing.TB, cfg hub.Config) *testHub {
	t.Helper()
	return startHubOn(t, cfg, nil)
}

// startHubOn is startHub with the server's listener wrapped by wrap (nil:
// a bare TCP listener).
func startHubOn(t testing.TB, cfg hub.Config, wrap func(net.Listener) net.Listener) *testHub {
	t.Helper()
	m, err := metrics.NewHub(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	if cfg.ICE == nil {
		cfg.ICE = func(host string) proto.ICEConfig {
			return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{{URLs: []string{"stun:" + host + ":3478"}}}}
		}
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})
	return &testHub{Hub: h, srv: srv, m: m, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws"}
}

func (th *testHub) rejections(reason string) float64 {
	return testutil.ToFloat64(th.m.Rejections.WithLabelValues(reason))
}

// client is a test WebSocket client; its hubconn reads frames on its own
// goroutine, so pings are answered while the test does something else. ws is
// the same connection, for what a well-behaved client would not send.
type client struct {
	t  *testing.T
	ws *websocket.Conn
	hc *hubconn.Conn
}

func dial(t *testing.T, url string, hdr http.Header) *client {
	t.Helper()
	c, err := tryDial(t, url, hdr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func tryDial(t *testing.T, url string, hdr http.Header) (*client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		if resp != nil {
			return nil, &dialError{status: resp.StatusCode, err: err}
		}
		return nil, err
	}
	// A deep read-ahead: some tests make the hub send many frames before
	// reading them.
	c := &client{t: t, ws: ws, hc: hubconn.New(ws, &hubconn.Options{Buffer: 1024})}
	t.Cleanup(func() { _ = c.hc.Close() })
	return c, nil
}

type dialError struct {
	status int
	err    error
}

func (e *dialError) Error() string { return e.err.Error() }

// dialNoRead connects without a reader goroutine, so the client neither
// reads frames nor answers pings: a stalled peer.
func dialNoRead(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func (c *client) send(f proto.Frame) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.hc.Send(ctx, f); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame, failing the test after a generous timeout
// (a hang, not a synchronisation wait). Frames read before the connection
// ended still come first.
func (c *client) next() proto.Frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.hc.Next(ctx)
	switch {
	case err == nil:
		return f
	case ctx.Err() != nil:
		c.t.Fatal("timed out waiting for a frame")
	default:
		c.t.Fatalf("connection ended while waiting for a frame: %v", c.hc.Err())
	}
	return proto.Frame{}
}

// expect returns the next frame, which must be of type typ.
func (c *client) expect(typ string) proto.Frame {
	c.t.Helper()
	f := c.next()
	if f.Type != typ {
		c.t.Fatalf("got frame %+v, want type %q", f, typ)
	}
	return f
}

func (c *client) expectError(code string) proto.Frame {
	c.t.Helper()
	f := c.expect(proto.TypeError)
	if f.Code != code {
		c.t.Fatalf("got error %q (%s), want %q", f.Code, f.Message, code)
	}
	if f.Message == "" {
		c.t.Fatal("error frame without a message")
	}
	return f
}

// closed waits for the connection to end and returns its close status.
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.hc.Done():
	case <-time.After(10 * time.Second):
		c.t.Fatal("timed out waiting for the connection to close")
	}
	return websocket.CloseStatus(c.hc.Err())
}

func (c *client) closeReason() string {
	var ce websocket.CloseError
	if errors.As(c.hc.Err(), &ce) {
		return ce.Reason
	}
	return ""
}

// pair creates a room and joins it, returning host and guest after the
// created, joined and peer-joined frames.
func pair(t *testing.T, th *testHub) (host, guest *client, created, joined proto.Frame) {
	t.Helper()
	host = dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created = host.expect(proto.TypeCreated)
	guest = dial(t, th.url, nil)
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	joined = guest.expect(proto.TypeJoined)
	host.expect(proto.TypePeerJoined)
	return host, guest, created, joined
}
