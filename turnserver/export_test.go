package turnserver

// allocationCount returns the number of allocations pion holds, which the
// relay's own books (s.live) are checked against.
func (s *Server) allocationCount() int { return s.pion.AllocationCount() }
