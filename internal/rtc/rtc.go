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

// Flow control of the benchmark's bare channels: a bulk sender waits while
// more than HighWater bytes sit in the data channel's send buffer and
// resumes when it drains below LowWater (the channel's
// buffered-amount-low threshold). Several megabytes in flight keep a long,
// fast path full (bandwidth-delay product: 20 MB/s × 50 ms = 1 MB) without
// stop-and-wait. The client paces its buffer to the path (client/pacer.go)
// with HighWater as the ceiling, so that control messages do not wait
// behind it.
const (
	HighWater = 8 << 20
	LowWater  = 2 << 20
)

// MaxReceiveMessage is the largest data-channel message a connection takes,
// and says so in its SDP (a=max-message-size); a larger one closes the
// channel. pion's default is 1 GiB, all of it buffered before the client
// sees a byte: this bounds what a hostile peer can make this side hold per
// message. It is four times proto.MaxMessageSize, the most a correct peer
// sends, so that a message somewhat over that still arrives and is judged
// (and ignored) by the client, as docs/PROTOCOL.md says.
const MaxReceiveMessage = 1 << 20

// udpSocketBuffer is the kernel receive and send buffer asked for on each
// ICE socket. SCTP sends a whole congestion window in a burst; with Linux's
// default 208 KiB receive buffer a burst of a few hundred 1.2 KB packets
// overflows it before pion's read loop drains it, and pion's SCTP recovers
// from such losses slowly (it halves its window and often waits for a
// retransmission timeout). 4 MiB is the common net.core.rmem_max; the
// kernel silently caps the request at that limit.
const udpSocketBuffer = 4 << 20

// AcceptanceWaits are ICE's acceptance minimum waits: how long after the
// connectivity checks start the controlling agent (the offerer) waits
// before it may nominate a candidate pair whose local or remote candidate
// is of each type. pion nominates once and, without its renomination
// extension, never switches, so a wait is what lets a better pair that
// succeeds later still be chosen: the direct path over the relayed one.
// Chromium has no such waits; it selects the first pair that works and
// switches to a better one when it succeeds.
type AcceptanceWaits struct {
	Host, Srflx, Prflx, Relay time.Duration
}

// Waits returns the acceptance waits NewAPI sets.
//
// A connection that may go direct (relayOnly false) keeps pion's defaults,
// host 0, server-reflexive 500 ms, peer-reflexive 1 s, relay 2 s: a host
// pair is taken as soon as it works; a relayed one only after direct pairs
// had 2 s to succeed (several rounds of pion's checks, which it repeats
// every 200 ms, even on a slow path). Taking the relay sooner would keep
// pairs on the relay that could have gone direct, for the whole
// connection. These are set explicitly so that Tryst, not a pion default,
// states the policy.
//
// A relay-only connection (relayOnly true) has nothing but relay
// candidates of its own, so every pair it can form is relayed and waiting
// for a better type buys nothing: all waits are 0, and the best pair that
// works is taken at once. pion means to do this by itself (a relay-only
// agent's relay wait defaults to 0), but pion/webrtc builds the agent with
// options, on which path the relay wait stays at 2 s; that was the 2 s
// `--relay` spent before its first byte (issue 13). All four are 0 rather
// than just the relay wait: with the server-reflexive wait still at 500 ms,
// a relay-to-relay pair (two hops through the relay) that succeeded first
// would win over the one-hop pair to the peer's server-reflexive address.
//
// The waits that count are the controlling side's (the offerer, the
// host): a host that may go direct would wait 2 s for a relay-only guest's
// relay candidates, the only ones it has. So its offer says so
// (`relay_wait`), and a relay-only guest asks for a restart with `relay`
// instead of answering; the host makes that one offer with an API built
// with RelayOnly (docs/PROTOCOL.md, restart request).
func Waits(relayOnly bool) AcceptanceWaits {
	if relayOnly {
		return AcceptanceWaits{}
	}
	return AcceptanceWaits{Host: 0, Srflx: 500 * time.Millisecond, Prflx: time.Second, Relay: 2 * time.Second}
}

// Apply sets w on se.
func (w AcceptanceWaits) Apply(se *webrtc.SettingEngine) {
	se.SetHostAcceptanceMinWait(w.Host)
	se.SetSrflxAcceptanceMinWait(w.Srflx)
	se.SetPrflxAcceptanceMinWait(w.Prflx)
	se.SetRelayAcceptanceMinWait(w.Relay)
}

// Options adjust the API NewAPI builds.
type Options struct {
	// LoopbackOnly gathers only loopback candidates: tests and local use.
	LoopbackOnly bool
	// RelayOnly gives the API's connections the waits of a relay-only
	// connection (see Waits): all 0, so the first relayed pair that works
	// is taken. For connections with ICETransportPolicyRelay, and for a
	// host's offer to a guest that has only relay candidates.
	RelayOnly bool
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
	se.SetSCTPMaxMessageSize(MaxReceiveMessage)
	Waits(opt.RelayOnly).Apply(&se)
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
