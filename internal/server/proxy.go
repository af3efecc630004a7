package server

import (
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyListener reads the PROXY protocol header (v1 or v2) on connections
// from the trusted load balancers, where it is required, so that the hub
// sees the client's address rather than the balancer's (its per-address
// limits, the failed-join throttle above all, would otherwise count every
// client as one). Connections from anywhere else are served as they come:
// a header they send is not read, so nobody outside the list can claim an
// address.
func proxyListener(ln net.Listener, trusted []netip.Prefix) net.Listener {
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: 5 * time.Second,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ap, err := netip.ParseAddrPort(o.Upstream.String()); err == nil {
				for _, p := range trusted {
					if p.Contains(ap.Addr().Unmap()) {
						return proxyproto.REQUIRE, nil
					}
				}
			}
			return proxyproto.SKIP, nil
		},
	}
}
