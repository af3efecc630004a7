//go:build !linux

package turnserver

import (
	"errors"
	"net"
	"net/netip"
)

// dataPlane is the Linux epoll data plane (dataplane_linux.go). Elsewhere
// pion's own goroutines relay every datagram through net.UDPConn.
type dataPlane struct{}

func newDataPlane(*Server) (*dataPlane, error) { return nil, nil }

var errNoDataPlane = errors.New("turnserver: no data plane on this platform")

func (*dataPlane) listenUDP(string) (net.PacketConn, error) { return nil, errNoDataPlane }
func (*dataPlane) bindRelay(netip.Addr, int, *relayConn) (net.PacketConn, error) {
	return nil, errNoDataPlane
}
func (*dataPlane) close()                                            {}
func (*dataPlane) allocationCreated(net.Addr, string, net.Addr)      {}
func (*dataPlane) allocationDeleted(net.Addr, string)                {}
func (*dataPlane) channelCreated(net.Addr, string, net.Addr, uint16) {}
func (*dataPlane) channelDeleted(net.Addr, string, net.Addr, uint16) {}
