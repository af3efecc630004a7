package proto

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The hub's HTTP endpoints of protocol v1.
const (
	WebSocketPath = "/v1/ws"  // rendezvous: the frames of this package
	ICEPath       = "/v1/ice" // ICE servers with fresh TURN credentials
)

// WebSocketURL turns what a user typed (http://host:8080, https://host,
// ws://…, host:8080, or a base path such as https://host/tryst) into the
// URL of the hub's WebSocket endpoint.
func WebSocketURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no hub URL (e.g. http://127.0.0.1:8080)")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("bad hub URL %q", raw)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("bad hub URL %q: scheme must be http, https, ws or wss", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, WebSocketPath) {
		u.Path += WebSocketPath
	}
	return u.String(), nil
}
