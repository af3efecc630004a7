// The hub's WebSocket: the origin check, creating and leaving a room, and
// what a failed connection means.

package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

func (c *checker) checkWebSocket(ctx context.Context) Result {
	wsu := *c.base
	wsu.Scheme = map[string]string{"http": "ws", "https": "wss"}[c.base.Scheme]
	wsu.Path = "/v1/ws"
	// The origin a browser sends for the page the hub itself serves.
	origin := c.base.String()
	hc, resp, err := hubconn.Dial(ctx, wsu.String(), &hubconn.Options{Dial: &websocket.DialOptions{
		HTTPClient:      c.httpc,
		HTTPHeader:      http.Header{"Origin": {origin}},
		CompressionMode: websocket.CompressionDisabled,
	}})
	if err != nil {
		if resp != nil {
			return wsStatusFailure(resp.StatusCode, origin)
		}
		return c.dialFailure(ctx, "connect to "+wsu.String(), err)
	}
	defer hc.Close()

	create := proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion, Auth: c.token}
	f, err := wsRoundTrip(ctx, hc, create)
	if err != nil {
		return fail("the hub accepted the WebSocket but did not answer: check proxy timeouts and the hub's log",
			"origin %s accepted, but create got no answer: %v", origin, err)
	}
	switch {
	case f.Type == proto.TypeError && f.Code == proto.CodeUnauthorized && c.token == "":
		return fail("access control is on (--token-secret-file): give tryst doctor --token-file with a valid access token",
			"origin %s accepted, but create refused: %s", origin, f.Message)
	case f.Type == proto.TypeError && f.Code == proto.CodeUnauthorized:
		return fail("the access token in --token-file is expired or signed with a secret the hub does not hold",
			"origin %s accepted, but the access token was refused: %s", origin, f.Message)
	case f.Type == proto.TypeError:
		return fail("see the hub's log", "origin %s accepted, but create failed: %s: %s", origin, f.Code, f.Message)
	case f.Type != proto.TypeCreated || f.Room == "":
		return fail("is this a Tryst hub, and of a compatible version?", "create answered with %q", f.Type)
	}
	if err := hc.Send(ctx, proto.Frame{Type: proto.TypeLeave}); err != nil {
		return fail("see the hub's log", "room created, but leave failed: %v", err)
	}
	// The hub closes the connection with 1000 once the room is gone.
	_, err = hc.Next(ctx)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		return fail("see the hub's log", "room created, but leave was not acknowledged: %v", err)
	}
	return pass("%s accepts origin %s; room created and left", wsu.String(), origin)
}

// wsRoundTrip sends f and returns the hub's next frame, whatever its type.
func wsRoundTrip(ctx context.Context, hc *hubconn.Conn, f proto.Frame) (proto.Frame, error) {
	if err := hc.Send(ctx, f); err != nil {
		return proto.Frame{}, err
	}
	return hc.Next(ctx)
}

// wsStatusFailure explains a WebSocket upgrade answered with HTTP code.
func wsStatusFailure(code int, origin string) Result {
	switch code {
	case http.StatusForbidden:
		return fail("allow the origin with --origin, or, behind a reverse proxy, keep the Host header "+
			"(nginx: proxy_set_header Host $host) so the same-origin check sees the public name",
			"the hub refused origin %s (403)", origin)
	case http.StatusTooManyRequests:
		return fail("too many connections from this address: raise --max-conns-per-ip (behind a proxy every "+
			"client shares the proxy's address) or retry later", "the hub refused the connection (429)")
	case http.StatusServiceUnavailable:
		return fail("the hub is draining (shutting down or restarting); retry in a moment",
			"the hub refused the connection (503)")
	case http.StatusUnauthorized:
		return fail("something in front of the hub asks for authentication: let /v1/ws through",
			"the WebSocket upgrade got 401")
	}
	if code >= 300 && code < 400 {
		return fail("the hub redirects (typically http:// to https://): give --hub the URL it redirects to",
			"the WebSocket upgrade got HTTP %d", code)
	}
	return fail("is the URL a Tryst hub? A reverse proxy must forward /v1/ws as a WebSocket "+
		"(proxy_http_version 1.1; Upgrade and Connection headers)",
		"the WebSocket upgrade got HTTP %d", code)
}

// dialFailure explains a failed TCP/TLS/HTTP connection.
func (c *checker) dialFailure(ctx context.Context, what string, err error) Result {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		dnsErr     *net.DNSError
		verifyErr  *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA):
		return fail("the certificate is not signed by a CA this machine trusts: use a public CA (e.g. Let's Encrypt) "+
			"with the full chain in --tls-cert, or pass --ca-file (or --insecure for a test setup)", "%s: %v", what, err)
	case errors.As(err, &hostErr):
		return fail("the certificate does not cover this host name: reissue it for the name clients use", "%s: %v", what, err)
	case errors.As(err, &invalidErr):
		return fail("the certificate is expired or not valid yet: renew it (and check the clock)", "%s: %v", what, err)
	case errors.As(err, &verifyErr):
		return fail("the TLS certificate was not accepted: use a certificate from a public CA, or pass --ca-file "+
			"(or --insecure for a test setup)", "%s: %v", what, err)
	case errors.As(err, &recordErr):
		return fail("the server does not speak TLS there: use http:// (or give tryst serve --tls-cert/--tls-key)",
			"%s: %v", what, err)
	case errors.As(err, &dnsErr):
		return fail("the host name does not resolve: check the DNS record", "%s: %v", what, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail("nothing listens there: is tryst serve running, is --listen right, is the port open in the firewall?",
			"%s: connection refused", what)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return fail("no answer: a firewall may drop the traffic, or the host is down", "%s: no answer in %v", what, c.cfg.Timeout)
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		return fail("the TLS handshake failed: check the certificate and key given to --tls-cert/--tls-key", "%s: %v", what, err)
	}
	return fail("check the hub URL and that the hub is reachable from here", "%s: %v", what, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
