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

// peer is one WebRTC connection to the other member and the data channel
// that carries its frames: the production transport. A reconnect replaces
// the whole peer. The hub loop creates and closes it; pion's callbacks only
// record what happened in its channels (frames in the bounded inbox, the
// rest as level signals), which the session goroutine reads.
type peer struct {
	pc *webrtc.PeerConnection
	// nonceHost identifies the offer this connection belongs to; only the
	// hub loop uses it.
	nonceHost []byte

	dc       atomic.Pointer[webrtc.DataChannel]
	in       inbox
	low      chan struct{} // signalled: the send buffer drained to rtc.LowWater
	open     chan struct{} // closed when the data channel opened
	openOnce sync.Once
	ended    *latch
}

func newPeer(api *webrtc.API, cfg webrtc.Configuration) (*peer, error) {
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	p := &peer{pc: pc, low: make(chan struct{}, 1), open: make(chan struct{}), ended: newLatch()}
	p.in = newInbox(p.ended.done())
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

// bind makes dc the peer's data channel and wires its callbacks.
func (p *peer) bind(dc *webrtc.DataChannel) {
	p.dc.Store(dc)
	dc.SetBufferedAmountLowThreshold(rtc.LowWater)
	dc.OnBufferedAmountLow(func() { notify(p.low) })
	dc.OnOpen(func() { p.openOnce.Do(func() { close(p.open) }) })
	dc.OnClose(func() { p.fail(errors.New("data channel closed")) })
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if msg.IsString {
			// Every frame is binary (docs/PROTOCOL.md, "Sealed frames").
			p.fail(errors.New("unexpected message before key agreement"))
			return
		}
		// pion hands every message in a fresh slice, so the session may
		// keep it and decrypt it in place. This blocks while the inbox is
		// full: see inbox.
		p.in.push(msg.Data)
	})
}

func (p *peer) frames() <-chan []byte     { return p.in.ch }
func (p *peer) opened() <-chan struct{}   { return p.open }
func (p *peer) lowWater() <-chan struct{} { return p.low }
func (p *peer) done() <-chan struct{}     { return p.ended.done() }
func (p *peer) err() error                { return p.ended.get() }
func (p *peer) fail(err error)            { p.ended.set(err) }
func (p *peer) path() string              { return rtc.SelectedPath(p.pc) }

func (p *peer) sendFrame(frame []byte) error {
	dc := p.dc.Load()
	if dc == nil {
		return errNotOpen
	}
	return dc.Send(frame)
}

func (p *peer) bufferedAmount() uint64 {
	dc := p.dc.Load()
	if dc == nil {
		return 0
	}
	return dc.BufferedAmount()
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
	t := time.NewTimer(10 * time.Second)
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
