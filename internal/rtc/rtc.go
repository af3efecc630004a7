// Package rtc holds the WebRTC settings that Tryst's Go client and the
// transfer benchmark (tryst bench transfer) share: how the pion API is
// built, the data channel's flow-control thresholds, and which candidate
// pair a connection selected. The benchmark drives bare data channels with
// them, so that what it measures is what a client does; nothing else is
// meant to depend on them, hence internal.
package rtc

import (
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Flow control: a bulk sender waits while more than HighWater bytes sit in
// the data channel's send buffer and resumes when it drains below LowWater
// (the channel's buffered-amount-low threshold). Several megabytes in
// flight keep a long, fast path full (bandwidth-delay product: 20 MB/s ×
// 50 ms = 1 MB) without stop-and-wait.
const (
	HighWater = 8 << 20
	LowWater  = 2 << 20
)

// udpSocketBuffer is the kernel receive and send buffer asked for on each
// ICE socket. SCTP sends a whole congestion window in a burst; with Linux's
// default 208 KiB receive buffer a burst of a few hundred 1.2 KB packets
// overflows it before pion's read loop drains it, and pion's SCTP recovers
// from such losses slowly (it halves its window and often waits for a
// retransmission timeout). 4 MiB is the common net.core.rmem_max; the
// kernel silently caps the request at that limit.
const udpSocketBuffer = 4 << 20

// Options adjust the API NewAPI builds.
type Options struct {
	// LoopbackOnly gathers only loopback candidates: tests and local use.
	LoopbackOnly bool
	// SettingEngine, if set, adjusts pion's settings after Tryst's own
	// (benchmarks use it to run over an emulated network).
	SettingEngine func(*webrtc.SettingEngine)
}

// NewAPI returns a pion API with the settings every client uses.
func NewAPI(opt Options) *webrtc.API {
	var se webrtc.SettingEngine
	// Host candidates carry real addresses; mDNS names would need
	// multicast, which servers and containers often lack.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Detect a dead path in seconds rather than the default 30 s.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	// SCTP receive window: large enough for the bandwidth-delay product of
	// a fast path at 50 ms (the default 1 MiB caps it near 20 MB/s).
	se.SetSCTPMaxReceiveBufferSize(16 << 20)
	// Larger UDP socket buffers for every ICE socket (host candidates and
	// the TURN client's).
	if n, err := stdnet.NewNet(); err == nil {
		se.SetNet(bufferedNet{n})
	}
	if opt.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	}
	if opt.SettingEngine != nil {
		opt.SettingEngine(&se)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// SelectedPath reports the candidate pair pc selected: "relay" when either
// end is a TURN relay candidate, else "direct (host)", "direct (srflx)", …,
// and "unknown" before one is selected.
func SelectedPath(pc *webrtc.PeerConnection) string {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil {
		return "unknown"
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return "unknown"
	}
	if pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
		return "relay"
	}
	return "direct (" + pair.Local.Typ.String() + ")"
}

// bufferedNet is the standard network with udpSocketBuffer on its UDP
// sockets.
type bufferedNet struct{ transport.Net }

func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err == nil {
		_ = c.SetReadBuffer(udpSocketBuffer)
		_ = c.SetWriteBuffer(udpSocketBuffer)
	}
	return c, err
}

func (n bufferedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if u, ok := c.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(udpSocketBuffer)
		_ = u.SetWriteBuffer(udpSocketBuffer)
	}
	return c, err
}
