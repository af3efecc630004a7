//go:build !linux

package turnserver

import "net/netip"

// mirroredChannel: there is no data plane to mirror channels outside Linux.
func mirroredChannel(*Server, netip.AddrPort, uint16) bool { return false }
