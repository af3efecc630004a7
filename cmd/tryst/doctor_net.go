// The network checks of tryst doctor: STUN, TURN over each transport, the
// relay address and a relayed round trip.

package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// ---- STUN ----

func (d *doctor) checkSTUN(ctx context.Context) checkResult {
	server, err := resolveUDP4(ctx, d.stunURL)
	if err != nil {
		return checkFail("check the DNS record of the STUN host (--turn-host)", "resolve %s: %v", d.stunURL, err)
	}
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return checkFail("this machine cannot send UDP there", "udp %s: %v", server, err)
	}
	pc := &connectedPacketConn{UDPConn: c}
	defer pc.Close()
	start := time.Now()
	mapped, err := stunBinding(ctx, pc, pc.RemoteAddr())
	if err != nil {
		return d.udpFailure(ctx, "STUN binding", server, err, pc.refused())
	}
	return checkPass("udp %s answered in %v: this machine is %s", server, roundDur(time.Since(start)), mapped)
}

func (d *doctor) udpFailure(ctx context.Context, what string, server netip.AddrPort, err error, refused bool) checkResult {
	switch {
	case refused || errors.Is(err, syscall.ECONNREFUSED):
		return checkFail(hintUDPBlocked, "%s to udp %s: refused (ICMP port unreachable): nothing listens there", what, server)
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || isTimeout(err):
		return checkFail(hintUDPBlocked, "%s to udp %s: no answer in %v", what, server, d.cfg.timeout)
	}
	return checkFail(hintUDPBlocked, "%s to udp %s: %v", what, server, err)
}

func resolveUDP4(ctx context.Context, hostPort string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", hostPort)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%s has no IPv4 address", host)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(p)), nil
}

// stunBinding sends Binding requests from pc to server, retransmitting with
// backoff, until a matching answer arrives or ctx ends, and returns the
// mapped address.
func stunBinding(ctx context.Context, pc net.PacketConn, server net.Addr) (netip.AddrPort, error) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1500)
	rto := 250 * time.Millisecond
	for {
		if _, err := pc.WriteTo(req.Raw, server); err != nil {
			return netip.AddrPort{}, err
		}
		_ = pc.SetReadDeadline(time.Now().Add(rto))
		if ctx.Err() != nil {
			return netip.AddrPort{}, ctx.Err()
		}
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return netip.AddrPort{}, ctx.Err()
				}
				if isTimeout(err) {
					break // retransmit
				}
				return netip.AddrPort{}, err
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() != nil || res.TransactionID != req.TransactionID {
				continue
			}
			return bindingMapped(res)
		}
		rto = min(2*rto, 2*time.Second)
	}
}

// connectedPacketConn is a connected UDP socket seen as a PacketConn, so
// that an ICMP port unreachable surfaces as "connection refused" instead of
// a silent timeout. It remembers whether that happened.
type connectedPacketConn struct {
	*net.UDPConn
	mu      sync.Mutex
	refuse  bool
	closeMu sync.Once
}

func (c *connectedPacketConn) note(err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		c.mu.Lock()
		c.refuse = true
		c.mu.Unlock()
	}
}

func (c *connectedPacketConn) refused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refuse
}

func (c *connectedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.UDPConn.Read(p)
	c.note(err)
	return n, c.RemoteAddr(), err
}

func (c *connectedPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	n, err := c.UDPConn.Write(p)
	c.note(err)
	return n, err
}

func (c *connectedPacketConn) Close() error {
	var err error
	c.closeMu.Do(func() { err = c.UDPConn.Close() })
	return err
}

// ---- TURN ----

// doctorAlloc is a TURN client with its socket and relayed address.
type doctorAlloc struct {
	client *turn.Client
	conn   net.PacketConn
	relay  net.PacketConn
}

// close releases the allocation (Refresh with lifetime 0) and the sockets.
func (a *doctorAlloc) close() {
	if a.relay != nil {
		_ = a.relay.Close()
	}
	a.client.Close()
	_ = a.conn.Close()
}

// doctorWhileCtx runs f, and if ctx ends first calls abort (which must make f
// return) and waits for f.
func doctorWhileCtx(ctx context.Context, f func() error, abort func()) error {
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

func (d *doctor) checkTURN(ctx context.Context, kind string) checkResult {
	var u *iceURL
	for i := range d.turnURLs {
		if d.turnURLs[i].name() == kind {
			u = &d.turnURLs[i]
			break
		}
	}
	if u == nil {
		if kind == "tls" {
			return checkSkip("the hub offers no turns: URL (tryst serve offers TURNS with --tls-cert)")
		}
		return checkFail("the hub should offer TURN over udp and tcp (turn:HOST:3478?transport=udp and ?transport=tcp)",
			"the hub offers no TURN over %s", kind)
	}
	a, res := d.allocate(ctx, *u)
	if a == nil {
		return res
	}
	if ap := addrPortOf(a.relay.LocalAddr()); ap.IsValid() && !d.relayed.IsValid() {
		d.relayed, d.relayFrom = ap, kind
	}
	if kind == "udp" {
		d.udpAlloc = a
	} else {
		a.close()
	}
	return res
}

func (d *doctor) allocate(ctx context.Context, u iceURL) (*doctorAlloc, checkResult) {
	server, err := resolveUDP4(ctx, u.hostPort)
	if err != nil {
		return nil, checkFail("check the DNS record of the TURN host (--turn-host)", "resolve %s: %v", u.hostPort, err)
	}
	proto := u.name()
	var (
		pc   net.PacketConn
		conn *connectedPacketConn
	)
	switch u.name() {
	case "udp":
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
		if err != nil {
			return nil, checkFail(hintUDPBlocked, "udp %s: %v", server, err)
		}
		conn = &connectedPacketConn{UDPConn: c}
		pc = conn
	default:
		var nc net.Conn
		var err error
		if u.name() == "tls" {
			host, _, _ := net.SplitHostPort(u.hostPort)
			td := &tls.Dialer{Config: d.tlsConfig(host)}
			nc, err = td.DialContext(ctx, "tcp4", server.String())
		} else {
			var nd net.Dialer
			nc, err = nd.DialContext(ctx, "tcp4", server.String())
		}
		if err != nil {
			r := d.dialFailure(ctx, proto+" "+server.String(), err)
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				r.hint = hintTCPBlocked
			}
			return nil, r
		}
		pc = turn.NewSTUNConn(nc)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	user, password := d.credential()
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
		return nil, checkFail("", "%s %s: %v", proto, server, err)
	}
	a := &doctorAlloc{client: client, conn: pc}
	if err := client.Listen(); err != nil {
		a.close()
		return nil, checkFail("", "%s %s: %v", proto, server, err)
	}
	start := time.Now()
	err = doctorWhileCtx(ctx, func() error {
		relay, err := client.Allocate()
		a.relay = relay
		return err
	}, func() { client.Close(); _ = pc.Close() })
	if err != nil {
		a.close()
		return nil, d.turnFailure(ctx, proto, server, err, conn != nil && conn.refused())
	}
	return a, checkPass("%s %s: relayed address %s (%v)", proto, server, a.relay.LocalAddr(), roundDur(time.Since(start)))
}

func (d *doctor) turnFailure(ctx context.Context, proto string, server netip.AddrPort, err error, refused bool) checkResult {
	var te *stun.TurnError
	if !errors.As(err, &te) {
		var tv stun.TurnError
		if errors.As(err, &tv) {
			te = &tv
		}
	}
	if te != nil {
		code := te.ErrorCodeAttr.Code
		reason := string(te.ErrorCodeAttr.Reason)
		if reason == "" {
			reason = stunReasons[code]
		}
		what := fmt.Sprintf("%s %s: allocation refused: %d %s", proto, server, code, reason)
		switch code {
		case stun.CodeUnauthorized, stun.CodeBadRequest, stun.CodeStaleNonce, stun.CodeWrongCredentials:
			return checkFail(hintSecret, "%s (the relay does not accept the hub's credential)", what)
		case stun.CodeAllocQuotaReached:
			return checkFail("the relay's allocation quota is full: raise --turn-user-quota or --turn-max-allocations "+
				"(coturn: user-quota, total-quota), or look for a client that leaks allocations", "%s", what)
		case stun.CodeInsufficientCapacity:
			return checkFail("the relay has no free relay port or capacity: widen --turn-relay-ports, raise "+
				"--turn-max-allocations", "%s", what)
		case stun.CodeForbidden:
			return checkFail("the relay forbids this client: check its peer and source filters", "%s", what)
		}
		return checkFail("see the relay's log", "%s", what)
	}
	if proto == "udp" {
		return d.udpFailure(ctx, "TURN allocation", server, err, refused)
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || isTimeout(err) {
		return checkFail("something accepts connections there but does not answer TURN: is the port in the ICE URL "+
			"the relay's (--turn-listen, --turn-tls-listen, --turn-host)?", "%s %s: connected, but no TURN answer in %v",
			proto, server, d.cfg.timeout)
	}
	return checkFail(hintTCPBlocked, "%s %s: %v", proto, server, err)
}

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

// ---- relay address ----

// isPublicAddr reports whether a is a globally routable unicast address:
// not loopback, private (RFC 1918, ULA), CGNAT, link-local or unspecified.
func isPublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// mustNotSend is the rule for relayed test traffic: never to private,
// CGNAT, link-local or unspecified addresses; loopback is fine.
func mustNotSend(a netip.Addr) bool {
	a = a.Unmap()
	return !a.IsLoopback() && !isPublicAddr(a)
}

func (d *doctor) checkRelayAddress(ctx context.Context) checkResult {
	if !d.relayed.IsValid() {
		return checkSkip("needs a TURN allocation")
	}
	hubPublic, why := false, ""
	host := d.base.Hostname()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	for _, a := range addrs {
		if isPublicAddr(a) {
			hubPublic, why = true, fmt.Sprintf("the hub %s is public (%s)", host, a.Unmap())
			break
		}
	}
	if !hubPublic && d.cfg.expectPublic {
		hubPublic, why = true, "--expect-public"
	}
	r := d.relayed.Addr()
	switch {
	case hubPublic && !isPublicAddr(r):
		return checkFail(hintPublicIP, "relayed address %s (from TURN over %s) is not public, but %s", d.relayed, d.relayFrom, why)
	case hubPublic:
		return checkPass("relayed address %s is public", d.relayed)
	case err != nil:
		return checkPass("relayed address %s (could not resolve the hub's host to compare: %v)", d.relayed, err)
	}
	return checkPass("relayed address %s (the hub is on a private or loopback address, so a private relay is expected)", d.relayed)
}

// ---- round trip ----

func (d *doctor) checkRoundTrip(ctx context.Context, relayOK bool) checkResult {
	r := d.relayed
	if d.relayFrom != "udp" {
		r = addrPortOf(d.udpAlloc.relay.LocalAddr())
	}
	switch {
	case !r.IsValid() || r.Addr().IsUnspecified():
		return checkSkip("the relayed address %s cannot be sent to", r)
	case mustNotSend(r.Addr()):
		return checkSkip("the relayed address %s is private: no test traffic is sent to private addresses", r)
	case !relayOK:
		return checkSkip("the relay address check failed")
	}
	server, err := resolveUDP4(ctx, d.stunURL)
	if err != nil {
		return checkFail("check the DNS record of the STUN host", "resolve %s: %v", d.stunURL, err)
	}
	// The peer: a second local socket, reached at its STUN-mapped address
	// like a remote client would be.
	peer, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return checkFail("", "peer socket: %v", err)
	}
	defer peer.Close()
	mapped, err := stunBinding(ctx, peer, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return d.udpFailure(ctx, "STUN binding for the peer socket", server, err, false)
	}
	if mapped.Addr().IsUnspecified() || mustNotSend(mapped.Addr()) {
		return checkSkip("this machine's mapped address %s is private: no test traffic is sent to private addresses", mapped)
	}
	a := d.udpAlloc
	mappedAddr := net.UDPAddrFromAddrPort(mapped)
	err = doctorWhileCtx(ctx, func() error { return a.client.CreatePermission(mappedAddr) }, func() {
		a.close()
		d.udpAlloc = nil
	})
	if err != nil {
		return permissionRefused(r, mapped, err)
	}

	stop := context.AfterFunc(ctx, func() {
		_ = peer.SetReadDeadline(time.Now())
		_ = a.relay.SetReadDeadline(time.Now())
	})
	defer stop()
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	ping := append([]byte("tryst-doctor ping "), nonce[:]...)
	pong := append([]byte("tryst-doctor pong "), nonce[:]...)
	buf := make([]byte, 1500)
	var lastErr checkResult
	for attempt := 0; ctx.Err() == nil; attempt++ {
		wait := min(time.Duration(250<<attempt)*time.Millisecond, 2*time.Second)
		start := time.Now()
		if _, err := a.relay.WriteTo(ping, mappedAddr); err != nil {
			return checkFail("see the relay's log", "send through the relay: %v", err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(wait))
		if !readDatagram(peer, buf, ping) {
			lastErr = checkFail("the relay did not forward to this machine: check that the relay may send from its relay "+
				"ports (--turn-relay-ports) and its peer filter", "nothing arrived at %s from relay %s", mapped, r)
			continue
		}
		// Answer to the advertised relayed address, as a remote peer would
		// (checked above: not a private address).
		if _, err := peer.WriteTo(pong, net.UDPAddrFromAddrPort(r)); err != nil {
			return checkFail("", "answer to %s: %v", r, err)
		}
		_ = a.relay.SetReadDeadline(time.Now().Add(wait))
		if !readDatagram(a.relay, buf, pong) {
			lastErr = checkFail("peers cannot reach the relayed address: open the relay port range (--turn-relay-ports, "+
				"default 49152-65535/udp) in the firewall and set --public-ip behind NAT",
				"relay %s reached %s, but the answer sent to %s did not come back", r, mapped, r)
			continue
		}
		return checkPass("relay %s <-> %s: round trip %v", r, mapped, roundDur(time.Since(start)))
	}
	if lastErr.detail == "" {
		lastErr = checkFail("", "interrupted")
	}
	return lastErr
}

// permissionRefused explains a CreatePermission for peer (through the relay
// at relayed) that failed with err. A relay refuses the peers its policy
// denies: coturn, and tryst since it says so, with 403 Forbidden; older
// tryst relays with an error response that carries no ERROR-CODE. Both deny
// loopback and private peers by default, so on a local deployment that
// refusal is the policy working, and the round trip is skipped rather than
// failed.
func permissionRefused(relayed, peer netip.AddrPort, err error) checkResult {
	var te *stun.TurnError
	if !errors.As(err, &te) {
		var tv stun.TurnError
		if errors.As(err, &tv) {
			te = &tv
		}
	}
	var what string
	switch {
	case te != nil && te.ErrorCodeAttr.Code == stun.CodeForbidden:
		what = "forbidden by the relay's peer policy (403)"
	// pion's client reports an error response without ERROR-CODE as
	// "<method> error response", with no error type to match.
	case te == nil && strings.Contains(err.Error(), "error response"):
		what = "refused (error response without an error code)"
	default:
		return checkFail("see the relay's log", "CreatePermission for %s: %v", peer, err)
	}
	for _, a := range []netip.Addr{peer.Addr(), relayed.Addr()} {
		if isPublicAddr(a) {
			continue
		}
		kind, flag := "private", "--turn-allow-peer with this network"
		if a.IsLoopback() {
			kind, flag = "loopback", "--allow-loopback-peers"
		}
		return checkSkip("CreatePermission for %s %s: the relay refuses %s peers by policy (the default); run serve "+
			"with %s for a local round trip", peer, what, kind, flag)
	}
	return checkFail("the relay's peer filter refuses this machine's public address: check --turn-deny-peer and "+
		"--turn-allow-peer (coturn: denied-peer-ip, allowed-peer-ip)", "CreatePermission for %s %s", peer, what)
}

// readDatagram reads from pc until a datagram equal to want arrives (true) or
// the read deadline passes (false).
func readDatagram(pc net.PacketConn, buf, want []byte) bool {
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == string(want) {
			return true
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// roundDur keeps about three significant digits of a short duration.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < 100*time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// bindingMapped returns the XOR-MAPPED-ADDRESS of a Binding success.
func bindingMapped(res *stun.Message) (netip.AddrPort, error) {
	if res.Type != stun.BindingSuccess {
		return netip.AddrPort{}, fmt.Errorf("answer %s", res.Type)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(res); err != nil {
		return netip.AddrPort{}, err
	}
	a, ok := netip.AddrFromSlice(xor.IP)
	if !ok {
		return netip.AddrPort{}, errors.New("bad XOR-MAPPED-ADDRESS")
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(xor.Port)), nil
}
