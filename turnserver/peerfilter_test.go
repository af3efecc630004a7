package turnserver

import (
	"net/netip"
	"testing"
)

func TestPeerFilterDefaults(t *testing.T) {
	t.Parallel()
	f := &peerFilter{own: map[netip.Addr]struct{}{netip.MustParseAddr("203.0.113.77"): {}, netip.MustParseAddr("198.51.7.7"): {}}}
	cases := []struct {
		ip    string
		class string // "" = allowed
	}{
		// IPv4 default-deny classes.
		{"127.0.0.1", classLoopback},
		{"127.255.255.254", classLoopback},
		{"0.0.0.0", classUnspecified},
		{"0.1.2.3", classUnspecified},
		{"10.0.0.1", classPrivate},
		{"172.16.0.1", classPrivate},
		{"172.31.255.255", classPrivate},
		{"192.168.1.1", classPrivate},
		{"100.64.0.1", classCGNAT},
		{"100.127.255.255", classCGNAT},
		{"169.254.169.254", classLinkLocal},
		{"169.254.0.1", classLinkLocal},
		{"224.0.0.1", classMulticast},
		{"239.255.255.250", classMulticast},
		{"255.255.255.255", classBroadcast},
		{"240.0.0.1", classReserved},
		{"192.0.0.8", classReserved},
		{"198.18.0.1", classReserved},
		{"192.0.2.1", classReserved},
		{"198.51.100.1", classReserved},
		{"203.0.113.1", classReserved},
		// IPv4 allowed.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.32.0.1", ""},
		{"172.15.255.255", ""},
		{"169.253.255.255", ""},
		{"223.255.255.255", ""},
		// Own addresses.
		{"198.51.7.7", classOwn},
		{"::ffff:198.51.7.7", classOwn},
		// IPv6 classes.
		{"::1", classLoopback},
		{"::", classUnspecified},
		{"fc00::1", classPrivate},
		{"fd12:3456::1", classPrivate},
		{"fe80::1", classLinkLocal},
		{"febf::1", classLinkLocal},
		{"fec0::1", classPrivate},
		{"ff02::1", classMulticast},
		{"ff05::2", classMulticast},
		{"100::1", classReserved},
		{"2001:db8::1", classReserved},
		{"64:ff9b:1::1", classReserved},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001::1", ""},
		// IPv4 embedded in IPv6.
		{"::ffff:127.0.0.1", classLoopback},
		{"::ffff:0.0.0.0", classUnspecified},
		{"::ffff:10.0.0.1", classPrivate},
		{"::ffff:169.254.169.254", classLinkLocal},
		{"::ffff:255.255.255.255", classBroadcast},
		{"::ffff:8.8.8.8", ""},
		{"::127.0.0.1", classLoopback},
		{"::10.0.0.1", classPrivate},
		{"::169.254.169.254", classLinkLocal},
		{"::8.8.8.8", ""},
		{"2002:7f00:1::", classLoopback},
		{"2002:a00:1::1", classPrivate},
		{"2002:a9fe:a9fe::", classLinkLocal},
		{"2002:c0a8:101:1::1", classPrivate},
		{"2002:808:808::1", ""},
		{"64:ff9b::127.0.0.1", classLoopback},
		{"64:ff9b::a00:1", classPrivate},
		{"64:ff9b::169.254.169.254", classLinkLocal},
		{"64:ff9b::100.64.0.1", classCGNAT},
		{"64:ff9b::8.8.8.8", ""},
		// Teredo: server 65.54.227.120, client 127.0.0.1 obfuscated (~7f000001 = 80fffffe).
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", classLoopback},
		// Teredo with a private server address.
		{"2001:0:a00:1:8000:63bf:f7f7:f7f7", classPrivate},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", ""},
	}
	for _, tc := range cases {
		a := netip.MustParseAddr(tc.ip)
		if got := f.check(a); got != tc.class {
			t.Errorf("check(%s) = %q, want %q", tc.ip, got, tc.class)
		}
	}
}

func TestPeerFilterLists(t *testing.T) {
	t.Parallel()
	p := netip.MustParsePrefix
	f := &peerFilter{
		allow:         []netip.Prefix{p("10.0.0.0/8"), p("169.254.0.0/16"), p("fd00::/8")},
		deny:          []netip.Prefix{p("10.9.0.0/16"), p("8.8.4.0/24"), p("2a00::/16")},
		allowLoopback: true,
		own:           map[netip.Addr]struct{}{p("198.51.7.7/32").Addr(): {}},
	}
	cases := []struct {
		ip    string
		class string
	}{
		{"10.1.2.3", ""},                     // allow overrides the default deny
		{"::ffff:10.1.2.3", ""},              // also in its mapped form
		{"10.9.1.1", classDenied},            // deny wins over allow
		{"::ffff:10.9.1.1", classDenied},     // embedded too
		{"64:ff9b::10.9.1.1", classDenied},   // and NAT64
		{"8.8.4.4", classDenied},             // deny refuses public addresses
		{"8.8.8.8", ""},                      // other public addresses allowed
		{"169.254.169.254", ""},              // explicitly allowed
		{"127.0.0.1", ""},                    // AllowLoopbackPeers
		{"::1", ""},                          // AllowLoopbackPeers, IPv6
		{"::ffff:127.0.0.1", ""},             // AllowLoopbackPeers, mapped
		{"192.168.1.1", classPrivate},        // not allowed
		{"fd00::1", ""},                      // ULA allowed by list
		{"fc00::1", classPrivate},            // other ULA not
		{"2a00:1450::1", classDenied},        // IPv6 deny
		{"198.51.7.7", classOwn},             // own address stays refused
		{"0.0.0.0", classUnspecified},        // not loopback
		{"255.255.255.255", classBroadcast},  // not loopback
		{"2002:a09:101::", classDenied},      // 6to4 of 10.9.1.1
		{"2002:a01:101::", ""},               // 6to4 of allowed 10.1.1.1
		{"2002:c0a8:101::", classPrivate},    // 6to4 of 192.168.1.1
		{"::ffff:192.168.1.1", classPrivate}, // mapped private
		{"fe80::1%eth0", classLinkLocal},     // zones ignored
		{"64:ff9b::255.255.255.255", classBroadcast},
	}
	for _, tc := range cases {
		a := netip.MustParseAddr(tc.ip)
		if got := f.check(a); got != tc.class {
			t.Errorf("check(%s) = %q, want %q", tc.ip, got, tc.class)
		}
	}
}

func TestPeerFilterOwnAllowedExplicitly(t *testing.T) {
	t.Parallel()
	own := netip.MustParseAddr("198.51.7.7")
	f := &peerFilter{own: map[netip.Addr]struct{}{own: {}}, allow: []netip.Prefix{netip.PrefixFrom(own, 32)}}
	if got := f.check(own); got != "" {
		t.Errorf("own address in AllowPeers: %q", got)
	}
}

func FuzzPeerFilter(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "8.8.8.8", "2001:0:4136:e378:8000:63bf:80ff:fffe"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	pf := &peerFilter{}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		got := pf.check(a)
		// Whatever the spelling, an address whose IPv4 form is refused is refused.
		if a.Is4In6() && pf.check(a.Unmap()) != "" && got == "" {
			t.Errorf("%v allowed but %v refused", a, a.Unmap())
		}
	})
}
