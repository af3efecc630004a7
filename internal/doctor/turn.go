// The TURN checks: an allocation over each transport the hub offers, with
// the hub's credential.

package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// allocation is a TURN client with its socket and relayed address.
type allocation struct {
	client *turn.Client
	conn   net.PacketConn
	relay  net.PacketConn
}

// close releases the allocation (Refresh with lifetime 0) and the sockets.
func (a *allocation) close() {
	if a.relay != nil {
		_ = a.relay.Close()
	}
	a.client.Close()
	_ = a.conn.Close()
}

// whileCtx runs f, and if ctx ends first calls abort (which must make f
// return) and waits for f. pion's client calls take no context.
func whileCtx(ctx context.Context, f func() error, abort func()) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		abort()
		<-done
		return ctx.Err()
	}
}

// checkTURN allocates over kind (udp, tcp or tls). The first relayed
// address is kept for the relay-address check, and the UDP allocation for
// the round trip.
func (c *checker) checkTURN(ctx context.Context, kind string) Result {
	var u *iceURL
	for i := range c.turnURLs {
		if c.turnURLs[i].name() == kind {
			u = &c.turnURLs[i]
			break
		}
	}
	if u == nil {
		if kind == "tls" {
			return skip("the hub offers no turns: URL (tryst serve offers TURNS with --tls-cert)")
		}
		return fail("the hub should offer TURN over udp and tcp (turn:HOST:3478?transport=udp and ?transport=tcp)",
			"the hub offers no TURN over %s", kind)
	}
	a, res := c.allocate(ctx, *u)
	if a == nil {
		return res
	}
	if ap := addrPortOf(a.relay.LocalAddr()); ap.IsValid() && !c.relayed.IsValid() {
		c.relayed, c.relayFrom = ap, kind
	}
	if kind == "udp" {
		c.udpAlloc = a
	} else {
		a.close()
	}
	return res
}

// allocate makes an allocation at u; the result explains a failure, in
// which case the allocation is nil.
func (c *checker) allocate(ctx context.Context, u iceURL) (*allocation, Result) {
	server, err := resolveUDP4(ctx, u.hostPort)
	if err != nil {
		return nil, fail("check the DNS record of the TURN host (--turn-host)", "resolve %s: %v", u.hostPort, err)
	}
	transport := u.name()
	var (
		pc   net.PacketConn
		conn *connectedPacketConn
	)
	switch transport {
	case "udp":
		uc, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
		if err != nil {
			return nil, fail(hintUDPBlocked, "udp %s: %v", server, err)
		}
		conn = &connectedPacketConn{UDPConn: uc}
		pc = conn
	default:
		var nc net.Conn
		var err error
		if transport == "tls" {
			host, _, _ := net.SplitHostPort(u.hostPort)
			td := &tls.Dialer{Config: c.tlsConfig(host)}
			nc, err = td.DialContext(ctx, "tcp4", server.String())
		} else {
			var nd net.Dialer
			nc, err = nd.DialContext(ctx, "tcp4", server.String())
		}
		if err != nil {
			r := c.dialFailure(ctx, transport+" "+server.String(), err)
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				r.Hint = hintTCPBlocked
			}
			return nil, r
		}
		pc = turn.NewSTUNConn(nc)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	user, password := c.credential()
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Conn:           pc,
		Username:       user,
		Password:       password,
		Software:       "tryst-doctor",
		LoggerFactory:  lf,
	})
	if err != nil {
		_ = pc.Close()
		return nil, fail("", "%s %s: %v", transport, server, err)
	}
	a := &allocation{client: client, conn: pc}
	if err := client.Listen(); err != nil {
		a.close()
		return nil, fail("", "%s %s: %v", transport, server, err)
	}
	start := time.Now()
	err = whileCtx(ctx, func() error {
		relay, err := client.Allocate()
		a.relay = relay
		return err
	}, func() { client.Close(); _ = pc.Close() })
	if err != nil {
		a.close()
		return nil, c.turnFailure(ctx, transport, server, err, conn != nil && conn.refused())
	}
	return a, pass("%s %s: relayed address %s (%v)", transport, server, a.relay.LocalAddr(), roundDur(time.Since(start)))
}

// turnError finds the TURN error response in err, whether pion returned it
// as a value or a pointer.
func turnError(err error) *stun.TurnError {
	var te *stun.TurnError
	if !errors.As(err, &te) {
		var tv stun.TurnError
		if errors.As(err, &tv) {
			te = &tv
		}
	}
	return te
}

// turnFailure explains a failed allocation over transport.
func (c *checker) turnFailure(ctx context.Context, transport string, server netip.AddrPort, err error, refused bool) Result {
	if te := turnError(err); te != nil {
		code := te.ErrorCodeAttr.Code
		reason := string(te.ErrorCodeAttr.Reason)
		if reason == "" {
			reason = stunReasons[code]
		}
		what := fmt.Sprintf("%s %s: allocation refused: %d %s", transport, server, code, reason)
		switch code {
		case stun.CodeUnauthorized, stun.CodeBadRequest, stun.CodeStaleNonce, stun.CodeWrongCredentials:
			return fail(hintSecret, "%s (the relay does not accept the hub's credential)", what)
		case stun.CodeAllocQuotaReached:
			return fail("the relay's allocation quota is full: raise --turn-user-quota or --turn-max-allocations "+
				"(coturn: user-quota, total-quota), or look for a client that leaks allocations", "%s", what)
		case stun.CodeInsufficientCapacity:
			return fail("the relay has no free relay port or capacity: widen --turn-relay-ports, raise "+
				"--turn-max-allocations", "%s", what)
		case stun.CodeForbidden:
			return fail("the relay forbids this client: check its peer and source filters", "%s", what)
		}
		return fail("see the relay's log", "%s", what)
	}
	if transport == "udp" {
		return c.udpFailure(ctx, "TURN allocation", server, err, refused)
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || isTimeout(err) {
		return fail("something accepts connections there but does not answer TURN: is the port in the ICE URL "+
			"the relay's (--turn-listen, --turn-tls-listen, --turn-host)?", "%s %s: connected, but no TURN answer in %v",
			transport, server, c.cfg.Timeout)
	}
	return fail(hintTCPBlocked, "%s %s: %v", transport, server, err)
}

// stunReasons name the error codes a relay may send without a reason
// phrase.
var stunReasons = map[stun.ErrorCode]string{
	stun.CodeBadRequest:           "Bad Request",
	stun.CodeUnauthorized:         "Unauthorized",
	stun.CodeForbidden:            "Forbidden",
	stun.CodeAllocMismatch:        "Allocation Mismatch",
	stun.CodeStaleNonce:           "Stale Nonce",
	stun.CodeWrongCredentials:     "Wrong Credentials",
	stun.CodeAllocQuotaReached:    "Allocation Quota Reached",
	stun.CodeInsufficientCapacity: "Insufficient Capacity",
}
