package client

import (
	"context"
	"fmt"
	"time"

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
	hc, _, err := hubconn.Dial(dctx, u, &hubconn.Options{WriteTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connect to hub %s: %w", u, err)
	}
	return hc, nil
}
