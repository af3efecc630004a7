package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/proto"
)

// HighWater and LowWater are rtc.HighWater and rtc.LowWater, kept until
// tryst bench transfer uses package rtc.
const (
	HighWater = rtc.HighWater
	LowWater  = rtc.LowWater
)

// peer is one WebRTC connection to the other member, with its own fresh
// session keys. A reconnect replaces the whole peer.
type peer struct {
	c    *Client
	role e2e.Role
	pc   *webrtc.PeerConnection

	// nonceHost identifies the offer this connection belongs to.
	nonceHost []byte

	mu          sync.Mutex // serialises sealing and sending, so sequence order is send order
	confirmSent bool       // the confirmation went out as frame 0
	dc          *webrtc.DataChannel
	sess        *e2e.Session
	// sealBuf is reused for every frame: pion's SCTP copies a message
	// into its own chunks before Send returns, so one buffer per
	// connection saves an allocation of a whole chunk per frame.
	sealBuf []byte

	confirmed atomic.Bool
	ready     chan struct{} // closed once both confirmations passed
	lowBuf    chan struct{} // signalled when the send buffer drains
	lastRecv  atomic.Int64  // unix nanos of the last frame received

	closed   chan struct{}
	failOnce sync.Once
	failErr  error
	wg       sync.WaitGroup // keepalive and file sender
}

func (c *Client) newAPI() *webrtc.API {
	return rtc.NewAPI(rtc.Options{LoopbackOnly: c.cfg.LoopbackOnly, SettingEngine: c.cfg.SettingEngine})
}

// NewAPI is rtc.NewAPI with cfg's LoopbackOnly and SettingEngine, kept
// until tryst bench transfer uses package rtc.
func NewAPI(cfg Config) *webrtc.API {
	return rtc.NewAPI(rtc.Options{LoopbackOnly: cfg.LoopbackOnly, SettingEngine: cfg.SettingEngine})
}

func (c *Client) rtcConfig(ice *proto.ICEConfig) webrtc.Configuration {
	var cfg webrtc.Configuration
	if ice != nil {
		for _, s := range ice.Servers {
			cfg.ICEServers = append(cfg.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	if c.cfg.Relay {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return cfg
}

func (c *Client) newPeer(role e2e.Role, ice *proto.ICEConfig) (*peer, error) {
	pc, err := c.api.NewPeerConnection(c.rtcConfig(ice))
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	p := &peer{
		c:      c,
		role:   role,
		pc:     pc,
		ready:  make(chan struct{}),
		lowBuf: make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
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

// attach wires the data channel's callbacks.
func (p *peer) attach(dc *webrtc.DataChannel) {
	p.mu.Lock()
	p.dc = dc
	p.mu.Unlock()
	dc.SetBufferedAmountLowThreshold(rtc.LowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case p.lowBuf <- struct{}{}:
		default:
		}
	})
	dc.OnOpen(func() {
		p.lastRecv.Store(time.Now().UnixNano())
		p.mu.Lock()
		err := p.confirmLocked()
		p.mu.Unlock()
		if err != nil {
			p.fail(err)
		}
	})
	dc.OnClose(func() { p.fail(errors.New("data channel closed")) })
	dc.OnMessage(p.onMessage)
}

// confirmLocked sends this side's key confirmation, once, as the first
// frame of the connection.
func (p *peer) confirmLocked() error {
	if p.confirmSent {
		return nil
	}
	if p.sess == nil || p.dc == nil {
		return errors.New("data channel opened before the keys were agreed")
	}
	p.confirmSent = true
	p.sealBuf = p.sess.SealTo(p.sealBuf[:0], msgConfirm, p.sess.Confirmation(p.role))
	if err := p.dc.Send(p.sealBuf); err != nil {
		return fmt.Errorf("send confirmation: %w", err)
	}
	return nil
}

func (p *peer) setSession(s *e2e.Session) {
	p.mu.Lock()
	p.sess = s
	p.mu.Unlock()
}

func (p *peer) onMessage(msg webrtc.DataChannelMessage) {
	select {
	case <-p.closed:
		// Once a frame was rejected (or the connection failed), nothing
		// more from this connection counts, even frames that would open.
		return
	default:
	}
	p.mu.Lock()
	sess := p.sess
	p.mu.Unlock()
	if sess == nil || msg.IsString {
		p.fail(errors.New("unexpected message before key agreement"))
		return
	}
	// pion hands every message in a fresh slice, so it may be decrypted
	// in place.
	typ, payload, err := sess.OpenInPlace(msg.Data)
	if err != nil {
		if !p.confirmed.Load() && errors.Is(err, e2e.ErrMismatch) {
			p.c.fatal(ErrPasswordMismatch)
			p.fail(ErrPasswordMismatch)
			return
		}
		// DTLS already guarantees integrity between the two endpoints, so a
		// frame that fails here was forged, replayed or reordered by one of
		// them: drop the connection and start again with fresh keys.
		p.c.emit(Event{Kind: EventWarning, Text: "rejected a data-channel frame: " + err.Error()})
		p.fail(fmt.Errorf("rejected frame: %w", err))
		return
	}
	p.lastRecv.Store(time.Now().UnixNano())
	if !p.confirmed.Load() {
		if typ != msgConfirm || sess.CheckConfirmation(payload) != nil {
			p.c.fatal(ErrPasswordMismatch)
			p.fail(ErrPasswordMismatch)
			return
		}
		p.confirmed.Store(true)
		close(p.ready)
		p.c.peerReady(p)
		return
	}
	p.c.handleMessage(p, typ, payload)
}

// send seals and sends one frame. Control messages skip flow control: they
// are small and must not wait behind bulk data.
func (p *peer) send(typ byte, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess == nil || p.dc == nil {
		return errors.New("not connected")
	}
	// The confirmation must be frame 0. pion runs OnOpen on its own
	// goroutine, so the peer's confirmation can arrive, and this side start
	// sending, before OnOpen has sent ours: send it first here.
	if err := p.confirmLocked(); err != nil {
		return err
	}
	p.sealBuf = p.sess.SealTo(p.sealBuf[:0], typ, payload)
	if err := p.dc.Send(p.sealBuf); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// sendBulk is send with flow control on the channel's buffered amount.
func (p *peer) sendBulk(ctx context.Context, typ byte, payload []byte) error {
	for {
		p.mu.Lock()
		dc := p.dc
		p.mu.Unlock()
		if dc.BufferedAmount() <= rtc.HighWater {
			break
		}
		select {
		case <-p.lowBuf:
		case <-p.closed:
			return p.failErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.send(typ, payload)
}

// fail ends this connection once; the client decides how to reconnect.
func (p *peer) fail(err error) {
	p.failOnce.Do(func() {
		p.failErr = err
		close(p.closed)
		p.c.peerFailed(p, err)
	})
}

// close tears the connection down and waits for its goroutines.
func (p *peer) close() {
	p.fail(errors.New("closed"))
	p.pc.Close()
	p.wg.Wait()
}

// keepalive sends an encrypted ping every PingInterval and fails the
// connection after PeerTimeout without any frame from the peer.
func (p *peer) keepalive() {
	defer p.wg.Done()
	t := time.NewTicker(p.c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case now := <-t.C:
			if now.Sub(time.Unix(0, p.lastRecv.Load())) > p.c.cfg.PeerTimeout {
				p.fail(fmt.Errorf("peer silent for %v", p.c.cfg.PeerTimeout))
				return
			}
			b, _ := jsonMarshal(pingPayload{T: time.Now().UnixNano()})
			if err := p.send(msgPing, b); err != nil {
				p.fail(err)
				return
			}
		}
	}
}

// path reports the selected candidate pair of this connection.
func (p *peer) path() string { return rtc.SelectedPath(p.pc) }

// SelectedPath is rtc.SelectedPath, kept until tryst bench transfer uses
// package rtc.
func SelectedPath(pc *webrtc.PeerConnection) string { return rtc.SelectedPath(pc) }

// gather waits for ICE gathering so that the sealed offer or answer
// carries every candidate: the hub never stores trickled candidates.
func (p *peer) gather(ctx context.Context) error {
	done := webrtc.GatheringCompletePromise(p.pc)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return nil // send what was gathered so far
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fingerprint returns the a=fingerprint value of an SDP.
func fingerprint(sdp string) (string, error) {
	for _, line := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:"); ok {
			return e2e.NormalizeFingerprint(v), nil
		}
	}
	return "", errors.New("SDP has no DTLS fingerprint")
}
