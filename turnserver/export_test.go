package turnserver

import (
	"net/netip"

	"github.com/tryst-chat/tryst/turnserver/internal/dataplane"
)

// allocationCount returns the number of allocations pion holds, which the
// relay's own books (s.live) are checked against.
func (s *Server) allocationCount() int { return s.pion.AllocationCount() }

// dataPlane returns the data plane, nil on pion's portable path.
func (s *Server) dataPlane() *dataplane.Engine {
	e, _ := s.engine.(*dataplane.Engine)
	return e
}

// mirroredChannel reports whether the data plane forwards ChannelData on
// channel num of the UDP client at client.
func mirroredChannel(s *Server, client netip.AddrPort, num uint16) bool {
	routes, _ := s.dataPlane().Mirror()
	_, ok := routes[client].Chans[num]
	return ok
}
