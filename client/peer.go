package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/proto"
)

// peer is one WebRTC connection to the other member and its two data
// channels, control and bulk: the production transport. A reconnect
// replaces the whole peer. The hub loop creates and closes it; pion's
// callbacks only record what happened in its channels (frames in the
// bounded inboxes, the rest as level signals), which the session goroutine
// reads.
type peer struct {
	pc *webrtc.PeerConnection
	// nonceHost identifies the offer this connection belongs to; only the
	// hub loop uses it.
	nonceHost []byte

	dcs     [2]atomic.Pointer[webrtc.DataChannel] // indexed by channel number
	in      [2]inbox
	low     chan struct{} // signalled: bulk's send buffer drained to its low-water mark
	open    chan struct{} // closed when both data channels opened
	opening sync.Mutex
	nOpen   int // channels opened; guarded by opening
	ended   *latch
}

func newPeer(api *webrtc.API, cfg webrtc.Configuration) (*peer, error) {
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	p := &peer{pc: pc, low: make(chan struct{}, 1), open: make(chan struct{}), ended: newLatch()}
	p.in = newInboxes(p.ended.done())
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			p.fail(errors.New("connection failed (ICE)"))
		case webrtc.PeerConnectionStateClosed:
			p.fail(errors.New("connection closed"))
		}
	})
	return p, nil
}

// createChannels creates the data channels as the host: control, then
// bulk, both reliable and ordered (the WebRTC defaults), negotiated in
// band (docs/PROTOCOL.md, "The channels").
func (p *peer) createChannels() error {
	for _, ch := range []struct {
		n     int
		label string
	}{{proto.ControlChannel, proto.ControlLabel}, {proto.BulkChannel, proto.BulkLabel}} {
		dc, err := p.pc.CreateDataChannel(ch.label, nil)
		if err != nil {
			return fmt.Errorf("create data channel %s: %w", ch.label, err)
		}
		p.bind(ch.n, dc)
	}
	return nil
}

// accept takes a data channel the host opened, as the guest: by its label.
// A channel with another label, or a second one with a label already
// taken, is closed: nothing this version knows travels on it.
func (p *peer) accept(dc *webrtc.DataChannel) {
	ch := -1
	switch dc.Label() {
	case proto.ControlLabel:
		ch = proto.ControlChannel
	case proto.BulkLabel:
		ch = proto.BulkChannel
	}
	if ch < 0 || !p.dcs[ch].CompareAndSwap(nil, dc) {
		_ = dc.Close()
		return
	}
	p.wire(ch, dc)
}

// rtcConfig is the peer connection configuration for the ICE servers the
// hub handed out.
func rtcConfig(ice *proto.ICEConfig, relayOnly bool) webrtc.Configuration {
	var cfg webrtc.Configuration
	if ice != nil {
		for _, s := range ice.Servers {
			cfg.ICEServers = append(cfg.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	if relayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return cfg
}

// bind makes dc the peer's data channel ch and wires its callbacks.
func (p *peer) bind(ch int, dc *webrtc.DataChannel) {
	p.dcs[ch].Store(dc)
	p.wire(ch, dc)
}

func (p *peer) wire(ch int, dc *webrtc.DataChannel) {
	if ch == proto.BulkChannel {
		dc.SetBufferedAmountLowThreshold(pacerStart / 2) // until the pacer knows better
		dc.OnBufferedAmountLow(func() { notify(p.low) })
	}
	var once sync.Once
	dc.OnOpen(func() { once.Do(p.channelOpened) })
	dc.OnClose(func() { p.fail(errors.New("data channel " + dc.Label() + " closed")) })
	in := p.in[ch]
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if msg.IsString {
			// Every frame is binary (docs/PROTOCOL.md, "Sealed frames").
			p.fail(errors.New("unexpected text message on the data channel"))
			return
		}
		// pion hands every message in a fresh slice, so the session may
		// keep it and decrypt it in place. This blocks while the inbox is
		// full: see inbox.
		in.push(msg.Data)
	})
}

// channelOpened counts a data channel's opening; once both are open,
// frames can go out on either.
func (p *peer) channelOpened() {
	p.opening.Lock()
	defer p.opening.Unlock()
	p.nOpen++
	if p.nOpen == len(p.dcs) {
		close(p.open)
	}
}

func (p *peer) frames(ch int) <-chan []byte { return p.in[ch].ch }
func (p *peer) opened() <-chan struct{}     { return p.open }
func (p *peer) lowWater() <-chan struct{}   { return p.low }
func (p *peer) done() <-chan struct{}       { return p.ended.done() }
func (p *peer) err() error                  { return p.ended.get() }
func (p *peer) fail(err error)              { p.ended.set(err) }
func (p *peer) path() string                { return rtc.SelectedPath(p.pc) }

func (p *peer) sendFrame(ch int, frame []byte) error {
	dc := p.dcs[ch].Load()
	if dc == nil {
		return errNotOpen
	}
	return dc.Send(frame)
}

func (p *peer) bufferedAmount() uint64 {
	dc := p.dcs[proto.BulkChannel].Load()
	if dc == nil {
		return 0
	}
	return dc.BufferedAmount()
}

func (p *peer) setLowWater(n uint64) {
	if dc := p.dcs[proto.BulkChannel].Load(); dc != nil {
		dc.SetBufferedAmountLowThreshold(n)
	}
}

func (p *peer) pathRTT() time.Duration {
	return time.Duration(p.pc.SCTP().Stats().SmoothedRoundTripTime * float64(time.Second))
}

// close tears the connection down. The inbox gives up first, so that a
// pion goroutine blocked on it lets pion's Close finish.
func (p *peer) close() {
	p.fail(errors.New("closed"))
	_ = p.pc.Close()
}

// gather waits for ICE gathering so that the sealed offer or answer
// carries every candidate: the hub never stores trickled candidates.
func (p *peer) gather(ctx context.Context) error {
	done := webrtc.GatheringCompletePromise(p.pc)
	t := time.NewTimer(proto.GatherTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return nil // send what was gathered so far
	case <-ctx.Done():
		return ctx.Err()
	}
}
