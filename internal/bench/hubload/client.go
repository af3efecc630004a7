package hubload

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/internal/bench/proc"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// client dials the hub from the configured source addresses.
//
// The pair phase talks to the hub through hubconn. The relay and memory
// phases open their rooms on bare WebSockets (dial, send, await, openRoom):
// the relay stamps a frame's arrival at the socket read, before decoding, and
// a hand-off to another goroutine per frame would add to the latency it
// reports and take CPU from the hub it measures.
type client struct {
	cfg       Config
	transport *http.Transport
	opts      *websocket.DialOptions
	connOpts  *hubconn.Options
	next      atomic.Uint64 // round robin over cfg.Sources
}

func newClient(cfg Config) *client {
	b := &client{cfg: cfg}
	b.transport = &http.Transport{
		DialContext:         b.dialTCP,
		TLSHandshakeTimeout: cfg.Timeout,
	}
	if cfg.RootCAs != nil {
		b.transport.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs}
	}
	b.opts = &websocket.DialOptions{HTTPClient: &http.Client{Transport: b.transport}}
	b.connOpts = &hubconn.Options{Dial: b.opts, WriteTimeout: cfg.Timeout}
	return b
}

func (b *client) close() { b.transport.CloseIdleConnections() }

// dialTCP opens a TCP connection from the next source address. Linger 0
// makes the bench's close a reset, so that no TIME_WAIT entries pile up and
// exhaust the ephemeral ports of a source address during the pair phase.
func (b *client) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: b.cfg.Timeout}
	if n := len(b.cfg.Sources); n > 0 {
		src := b.cfg.Sources[b.next.Add(1)%uint64(n)]
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c, nil
}

// dial opens one WebSocket to the hub.
func (b *client) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, b.cfg.Hub, b.opts)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

func (b *client) send(ctx context.Context, ws *websocket.Conn, f proto.Frame) error {
	msg, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, msg)
}

// await reads frames until one of type typ arrives, skipping notices such as
// peer-joined; an error frame ends the wait.
func (b *client) await(ctx context.Context, ws *websocket.Conn, typ string) (proto.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return proto.Frame{}, fmt.Errorf("waiting for %s: %w", typ, err)
		}
		f, err := proto.DecodeFrame(msg)
		if err != nil {
			return proto.Frame{}, fmt.Errorf("waiting for %s: %w", typ, err)
		}
		switch f.Type {
		case typ:
			return f, nil
		case proto.TypeError, proto.TypeRoomClosed:
			return f, fmt.Errorf("waiting for %s: hub sent %s %s: %s", typ, f.Type, f.Code, f.Message)
		}
	}
}

// openRoom creates a room and joins it, returning the host's and the guest's
// connections. On error both are closed.
func (b *client) openRoom(ctx context.Context) (host, guest *websocket.Conn, err error) {
	defer func() {
		if err != nil {
			closeAll(host, guest)
		}
	}()
	if host, err = b.dial(ctx); err != nil {
		return nil, nil, err
	}
	if err = b.send(ctx, host, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion}); err != nil {
		return host, nil, err
	}
	created, err := b.await(ctx, host, proto.TypeCreated)
	if err != nil {
		return host, nil, err
	}
	if guest, err = b.dial(ctx); err != nil {
		return host, nil, err
	}
	if err = b.send(ctx, guest, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room}); err != nil {
		return host, guest, err
	}
	if _, err = b.await(ctx, guest, proto.TypeJoined); err != nil {
		return host, guest, err
	}
	// The host is told; reading it here keeps the relay phase's first
	// measured frame from queueing behind it.
	if _, err = b.await(ctx, host, proto.TypePeerJoined); err != nil {
		return host, guest, err
	}
	return host, guest, nil
}

func closeAll(conns ...*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.CloseNow()
		}
	}
}

// dialConn opens one connection to the hub for the pair phase.
func (b *client) dialConn(ctx context.Context) (*hubconn.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	c, _, err := hubconn.Dial(ctx, b.cfg.Hub, b.connOpts)
	return c, err
}

// awaitConn waits for a frame of type typ on c, skipping notices such as
// peer-joined; an error or room-closed frame ends the wait.
func (b *client) awaitConn(ctx context.Context, c *hubconn.Conn, typ string) (proto.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	f, err := c.Await(ctx, typ, proto.TypeRoomClosed)
	if err == nil && f.Type != typ {
		return f, fmt.Errorf("waiting for %s: hub sent %s: %s", typ, f.Type, f.Reason)
	}
	return f, err
}

// pairOnce runs one full rendezvous on two new connections: create, offer,
// join, answer; it returns when the answer reaches the host, or with
// waitLeave once the host's leave has closed the room (the guest is told).
func (b *client) pairOnce(ctx context.Context, offer, answer string, waitLeave bool) error {
	host, err := b.dialConn(ctx)
	if err != nil {
		return err
	}
	defer host.Close()
	if err := host.Send(ctx, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion}); err != nil {
		return err
	}
	created, err := b.awaitConn(ctx, host, proto.TypeCreated)
	if err != nil {
		return err
	}
	if err := host.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: offer}); err != nil {
		return err
	}
	guest, err := b.dialConn(ctx)
	if err != nil {
		return err
	}
	defer guest.Close()
	if err := guest.Send(ctx, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room}); err != nil {
		return err
	}
	if _, err := b.awaitConn(ctx, guest, proto.TypeOffer); err != nil {
		return err
	}
	if err := guest.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: answer}); err != nil {
		return err
	}
	if _, err := b.awaitConn(ctx, host, proto.TypeAnswer); err != nil {
		return err
	}
	// Done: the host leaves so that the room does not wait out its TTL.
	// Best effort unless waitLeave: the connections are reset right after,
	// and a reset can reach the hub before it has read the leave.
	err = host.Send(ctx, proto.Frame{Type: proto.TypeLeave})
	if !waitLeave || err != nil {
		return err
	}
	_, err = b.awaitConn(ctx, guest, proto.TypeRoomClosed)
	return err
}

// serverCPU is the CPU time of the hub's process so far; zero without a
// pid.
func serverCPU(pid int) (time.Duration, error) {
	d, err := proc.CPUTime(pid)
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	return d, nil
}
