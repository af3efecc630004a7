// The relay's address and a round trip through it.

package doctor

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/pion/stun/v3"
)

// isPublicAddr reports whether a is a globally routable unicast address:
// not loopback, private (RFC 1918, ULA), CGNAT, link-local or unspecified.
//
// It is not turnserver's peer filter, and must not become it. That filter
// decides where a relay may send traffic, so it refuses every special
// range, the documentation networks of RFC 5737 and RFC 3849 among them.
// This one answers a different question, whether a client on another
// network could reach the address, and only rules out the ranges that are
// certainly local. It counts documentation addresses as public on purpose:
// the tests stand in for public addresses with them (203.0.113.0/24,
// 198.51.100.0/24), which route nowhere should anything be sent to them.
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

// checkRelayAddress wants a public relayed address when the hub's is
// public (or with ExpectPublic): clients elsewhere cannot reach a private
// one.
func (c *checker) checkRelayAddress(ctx context.Context) Result {
	if !c.relayed.IsValid() {
		return skip("needs a TURN allocation")
	}
	hubPublic, why := false, ""
	host := c.base.Hostname()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	for _, a := range addrs {
		if isPublicAddr(a) {
			hubPublic, why = true, fmt.Sprintf("the hub %s is public (%s)", host, a.Unmap())
			break
		}
	}
	if !hubPublic && c.cfg.ExpectPublic {
		hubPublic, why = true, "--expect-public"
	}
	r := c.relayed.Addr()
	switch {
	case hubPublic && !isPublicAddr(r):
		return fail(hintPublicIP, "relayed address %s (from TURN over %s) is not public, but %s", c.relayed, c.relayFrom, why)
	case hubPublic:
		return pass("relayed address %s is public", c.relayed)
	case err != nil:
		return pass("relayed address %s (could not resolve the hub's host to compare: %v)", c.relayed, err)
	}
	return pass("relayed address %s (the hub is on a private or loopback address, so a private relay is expected)", c.relayed)
}

// checkRoundTrip sends a datagram through the UDP allocation to a second
// local socket, at its STUN-mapped address, and the answer back to the
// relayed address, as a remote peer would.
func (c *checker) checkRoundTrip(ctx context.Context, relayOK bool) Result {
	r := c.relayed
	if c.relayFrom != "udp" {
		r = addrPortOf(c.udpAlloc.relay.LocalAddr())
	}
	switch {
	case !r.IsValid() || r.Addr().IsUnspecified():
		return skip("the relayed address %s cannot be sent to", r)
	case mustNotSend(r.Addr()):
		return skip("the relayed address %s is private: no test traffic is sent to private addresses", r)
	case !relayOK:
		return skip("the relay address check failed")
	}
	server, err := resolveUDP4(ctx, c.stunURL)
	if err != nil {
		return fail("check the DNS record of the STUN host", "resolve %s: %v", c.stunURL, err)
	}
	// The peer: a second local socket, reached at its STUN-mapped address
	// like a remote client would be.
	peer, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return fail("", "peer socket: %v", err)
	}
	defer peer.Close()
	mapped, err := stunBinding(ctx, peer, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return c.udpFailure(ctx, "STUN binding for the peer socket", server, err, false)
	}
	if mapped.Addr().IsUnspecified() || mustNotSend(mapped.Addr()) {
		return skip("this machine's mapped address %s is private: no test traffic is sent to private addresses", mapped)
	}
	a := c.udpAlloc
	mappedAddr := net.UDPAddrFromAddrPort(mapped)
	err = whileCtx(ctx, func() error { return a.client.CreatePermission(mappedAddr) }, func() {
		a.close()
		c.udpAlloc = nil
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
	var lastErr Result
	for attempt := 0; ctx.Err() == nil; attempt++ {
		wait := min(time.Duration(250<<attempt)*time.Millisecond, 2*time.Second)
		start := time.Now()
		if _, err := a.relay.WriteTo(ping, mappedAddr); err != nil {
			return fail("see the relay's log", "send through the relay: %v", err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(wait))
		if !readDatagram(peer, buf, ping) {
			lastErr = fail("the relay did not forward to this machine: check that the relay may send from its relay "+
				"ports (--turn-relay-ports) and its peer filter", "nothing arrived at %s from relay %s", mapped, r)
			continue
		}
		// Answer to the advertised relayed address, as a remote peer would
		// (checked above: not a private address).
		if _, err := peer.WriteTo(pong, net.UDPAddrFromAddrPort(r)); err != nil {
			return fail("", "answer to %s: %v", r, err)
		}
		_ = a.relay.SetReadDeadline(time.Now().Add(wait))
		if !readDatagram(a.relay, buf, pong) {
			lastErr = fail("peers cannot reach the relayed address: open the relay port range (--turn-relay-ports, "+
				"default 49152-65535/udp) in the firewall and set --public-ip behind NAT",
				"relay %s reached %s, but the answer sent to %s did not come back", r, mapped, r)
			continue
		}
		return pass("relay %s <-> %s: round trip %v", r, mapped, roundDur(time.Since(start)))
	}
	if lastErr.Detail == "" {
		lastErr = fail("", "interrupted")
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
func permissionRefused(relayed, peer netip.AddrPort, err error) Result {
	te := turnError(err)
	var what string
	switch {
	case te != nil && te.ErrorCodeAttr.Code == stun.CodeForbidden:
		what = "forbidden by the relay's peer policy (403)"
	// pion's client reports an error response without ERROR-CODE as
	// "<method> error response", with no error type to match.
	case te == nil && strings.Contains(err.Error(), "error response"):
		what = "refused (error response without an error code)"
	default:
		return fail("see the relay's log", "CreatePermission for %s: %v", peer, err)
	}
	for _, a := range []netip.Addr{peer.Addr(), relayed.Addr()} {
		if isPublicAddr(a) {
			continue
		}
		kind, flag := "private", "--turn-allow-peer with this network"
		if a.IsLoopback() {
			kind, flag = "loopback", "--allow-loopback-peers"
		}
		return skip("CreatePermission for %s %s: the relay refuses %s peers by policy (the default); run serve "+
			"with %s for a local round trip", peer, what, kind, flag)
	}
	return fail("the relay's peer filter refuses this machine's public address: check --turn-deny-peer and "+
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

// addrPortOf is a's address and port, IPv4 unmapped; invalid when a is
// neither a *net.UDPAddr nor written as one.
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
