package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// dialHub connects to the hub at hubURL, as a person typed it. The hub's
// frames are read on the connection's own goroutine (package hubconn), so
// that session can select on them; every send is bounded so that a hub that
// stopped reading cannot hold the client up.
func dialHub(ctx context.Context, hubURL string) (*hubconn.Conn, error) {
	u, err := proto.WebSocketURL(hubURL)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	hc, resp, err := hubconn.Dial(dctx, u, &hubconn.Options{WriteTimeout: 10 * time.Second})
	if err != nil {
		de := &dialError{url: hubURL, err: err, timeout: dctx.Err() != nil && ctx.Err() == nil}
		if resp != nil {
			de.status = resp.StatusCode
		}
		return nil, de
	}
	return hc, nil
}

// dialError is a failed dial of the hub. Error is a sentence for people;
// the network's own words stay in Unwrap (and the debug log).
type dialError struct {
	url     string
	status  int  // the HTTP status of a refused upgrade, 0 if none
	timeout bool // no answer within the dial's time
	err     error
}

func (e *dialError) Unwrap() error { return e.err }

func (e *dialError) Error() string {
	switch e.status {
	case 0:
	case http.StatusServiceUnavailable:
		return fmt.Sprintf("the hub at %s is shutting down", e.url)
	case http.StatusTooManyRequests:
		return fmt.Sprintf("the hub at %s refused the connection: too many connections from your address", e.url)
	case http.StatusForbidden:
		return fmt.Sprintf("the hub at %s refused this client", e.url)
	case http.StatusNotFound:
		return fmt.Sprintf("%s does not look like a Tryst hub (no /v1/ws there)", e.url)
	default:
		return fmt.Sprintf("the hub at %s answered HTTP %d", e.url, e.status)
	}
	if e.timeout {
		return fmt.Sprintf("the hub at %s does not answer", e.url)
	}
	return fmt.Sprintf("cannot reach the hub at %s", e.url)
}

// lostError is a hub connection that ended.
type lostError struct{ err error }

func (e *lostError) Unwrap() error { return e.err }

func (e *lostError) Error() string {
	switch websocket.CloseStatus(e.err) {
	case websocket.StatusGoingAway:
		return "the hub is restarting or shutting down"
	case websocket.StatusPolicyViolation:
		var ce websocket.CloseError
		if errors.As(e.err, &ce) && ce.Reason != "" {
			return "the hub closed the connection: " + ce.Reason
		}
		return "the hub closed the connection"
	}
	return "lost the connection to the hub"
}

// replaced reports whether the hub closed this connection because the
// member resumed on another one.
func replaced(err error) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce) && ce.Code == websocket.StatusPolicyViolation &&
		strings.Contains(ce.Reason, "resumed on another connection")
}
