//go:build !linux

package dataplane

import (
	"errors"
	"net"
	"net/netip"
)

// Supported reports whether this platform has the data plane.
const Supported = false

// Engine is the Linux epoll data plane (engine_linux.go). Elsewhere pion's
// own goroutines relay every datagram through net.UDPConn, and New fails.
type Engine struct{}

var errUnsupported = errors.New("dataplane: not available on this platform")

// New fails: there is no data plane on this platform.
func New(Config) (*Engine, error) { return nil, errUnsupported }

func (*Engine) ListenUDP(string) (net.PacketConn, error) { return nil, errUnsupported }
func (*Engine) BindRelay(netip.Addr, int, func(int) bool) (net.PacketConn, error) {
	return nil, errUnsupported
}
func (*Engine) AllocationCreated(netip.AddrPort, int)                 {}
func (*Engine) AllocationDeleted(netip.AddrPort)                      {}
func (*Engine) ChannelCreated(netip.AddrPort, uint16, netip.AddrPort) {}
func (*Engine) ChannelDeleted(netip.AddrPort, uint16, netip.AddrPort) {}
func (*Engine) Close()                                                {}
func (*Engine) Stats() Stats                                          { return Stats{} }
func (*Engine) Mirror() (map[netip.AddrPort]Route, int)               { return nil, 0 }
