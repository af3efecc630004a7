package turnserver

import (
	"net/netip"
)

// Peer classes refused by default. The string is used in log messages only.
const (
	classPublic      = ""
	classLoopback    = "loopback"
	classUnspecified = "unspecified"
	classPrivate     = "private"
	classCGNAT       = "cgnat"
	classLinkLocal   = "link-local"
	classMulticast   = "multicast"
	classBroadcast   = "broadcast"
	classReserved    = "reserved"
	classOwn         = "own-address"
	classDenied      = "deny-list"
)

var (
	pfx4This      = netip.MustParsePrefix("0.0.0.0/8")
	pfx4CGNAT     = netip.MustParsePrefix("100.64.0.0/10")
	pfx4Reserved  = netip.MustParsePrefix("240.0.0.0/4")
	pfx4IETF      = netip.MustParsePrefix("192.0.0.0/24")    // IETF protocol assignments
	pfx4Bench     = netip.MustParsePrefix("198.18.0.0/15")   // benchmarking
	pfx4Test1     = netip.MustParsePrefix("192.0.2.0/24")    // TEST-NET-1
	pfx4Test2     = netip.MustParsePrefix("198.51.100.0/24") // TEST-NET-2
	pfx4Test3     = netip.MustParsePrefix("203.0.113.0/24")  // TEST-NET-3
	pfx6Mapped    = netip.MustParsePrefix("::ffff:0:0/96")
	pfx6Compat    = netip.MustParsePrefix("::/96")
	pfx6To4       = netip.MustParsePrefix("2002::/16")
	pfx6NAT64     = netip.MustParsePrefix("64:ff9b::/96")
	pfx6NAT64Loc  = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215 local-use NAT64
	pfx6Teredo    = netip.MustParsePrefix("2001::/32")
	pfx6Discard   = netip.MustParsePrefix("100::/64")
	pfx6Doc       = netip.MustParsePrefix("2001:db8::/32")
	pfx6SiteLocal = netip.MustParsePrefix("fec0::/10") // deprecated, still routed internally by some
)

// classify returns the default-deny class of a single address, ignoring any
// IPv4 address embedded in it (see embeddedIPv4), or classPublic.
func classify(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return classReserved
	case a.IsLoopback():
		return classLoopback
	case a.IsUnspecified():
		return classUnspecified
	case a.IsPrivate(): // RFC 1918 and fc00::/7
		return classPrivate
	case a.IsLinkLocalUnicast(): // 169.254/16 (cloud metadata) and fe80::/10
		return classLinkLocal
	case a.IsMulticast():
		return classMulticast
	}
	if a.Is4() {
		switch {
		case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return classBroadcast
		case pfx4This.Contains(a):
			return classUnspecified
		case pfx4CGNAT.Contains(a):
			return classCGNAT
		case pfx4Reserved.Contains(a), pfx4IETF.Contains(a), pfx4Bench.Contains(a),
			pfx4Test1.Contains(a), pfx4Test2.Contains(a), pfx4Test3.Contains(a):
			return classReserved
		}
		return classPublic
	}
	switch {
	case pfx6NAT64Loc.Contains(a), pfx6Discard.Contains(a), pfx6Doc.Contains(a):
		return classReserved
	case pfx6SiteLocal.Contains(a):
		return classPrivate
	}
	return classPublic
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries in the
// forms that end up delivered to, or translated to, that IPv4 address:
// IPv4-mapped, IPv4-compatible, 6to4, NAT64 (well-known prefix) and Teredo
// (server and de-obfuscated client).
func embeddedIPv4(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	switch {
	case pfx6Mapped.Contains(a), pfx6NAT64.Contains(a):
		return []netip.Addr{v4(12)}
	case pfx6Compat.Contains(a) && !a.IsLoopback() && !a.IsUnspecified():
		// ::/96 also holds :: and ::1, which classify catches as themselves.
		return []netip.Addr{v4(12)}
	case pfx6To4.Contains(a):
		return []netip.Addr{v4(2)}
	case pfx6Teredo.Contains(a):
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []netip.Addr{v4(4), client}
	}
	return nil
}

// peerFilter decides which peer addresses an allocation may relay to.
//
// The rule, applied to the address and to every IPv4 address embedded in it
// (see embeddedIPv4): a candidate is refused if it is in DenyPeers; otherwise
// it is refused if it belongs to a default-deny class or is one of the
// server's own addresses, unless it is in AllowPeers (or is a loopback
// address and AllowLoopbackPeers is set). The peer is allowed only if no
// candidate is refused. DenyPeers therefore always wins over AllowPeers.
type peerFilter struct {
	allow, deny   []netip.Prefix
	allowLoopback bool
	own           map[netip.Addr]struct{}
}

// check returns "" when relaying to a is allowed, else the class refused.
func (f *peerFilter) check(a netip.Addr) string {
	// An IPv4-mapped address is sent to as the IPv4 address itself.
	a = a.WithZone("").Unmap()
	if c := f.checkOne(a); c != classPublic {
		return c
	}
	for _, e := range embeddedIPv4(a) {
		if c := f.checkOne(e); c != classPublic {
			return c
		}
	}
	return classPublic
}

func (f *peerFilter) checkOne(a netip.Addr) string {
	if matchAny(f.deny, a) {
		return classDenied
	}
	c := classify(a)
	if _, own := f.own[a.Unmap()]; own && (c == classPublic || c == classPrivate || c == classCGNAT) {
		c = classOwn
	}
	if c == classPublic {
		return classPublic
	}
	if matchAny(f.allow, a) || (c == classLoopback && f.allowLoopback) {
		return classPublic
	}
	return c
}

func matchAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
