package transfer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/internal/rtc"
)

// vnetPair is pion's emulated network: one router that delays every packet
// by half the round-trip time, and two hosts on it.
type vnetPair struct {
	router *vnet.Router
	a, b   *vnet.Net
}

func newVnetPair(rtt time.Duration) (*vnetPair, error) {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	r, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.50.0.0/24", MinDelay: rtt / 2, LoggerFactory: lf})
	if err != nil {
		return nil, fmt.Errorf("vnet: %w", err)
	}
	p := &vnetPair{router: r}
	for i, ip := range []string{"10.50.0.1", "10.50.0.2"} {
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		if err != nil {
			return nil, fmt.Errorf("vnet: %w", err)
		}
		if err := r.AddNet(n); err != nil {
			return nil, fmt.Errorf("vnet: %w", err)
		}
		if i == 0 {
			p.a = n
		} else {
			p.b = n
		}
	}
	if err := r.Start(); err != nil {
		return nil, fmt.Errorf("vnet: %w", err)
	}
	return p, nil
}

func (p *vnetPair) close() { _ = p.router.Stop() }

// settings returns the client configuration fields that place a peer on
// loopback or, with nets, on one side of the emulated network.
func (p *vnetPair) settings(side int) (loopbackOnly bool, hook func(*webrtc.SettingEngine)) {
	if p == nil {
		return true, nil
	}
	n := p.a
	if side == 1 {
		n = p.b
	}
	return false, func(se *webrtc.SettingEngine) {
		se.SetNet(n)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
}

// peerSettings is what a peer on side gets of the client configuration:
// nets.settings, and pion's own acceptance waits with cfg.PionWaits.
func peerSettings(nets *vnetPair, side int, cfg Config) (loopbackOnly bool, hook func(*webrtc.SettingEngine)) {
	lo, netHook := nets.settings(side)
	if !cfg.PionWaits {
		return lo, netHook
	}
	return lo, func(se *webrtc.SettingEngine) {
		pionWaits(se)
		if netHook != nil {
			netHook(se)
		}
	}
}

// rawPair is two PeerConnections built with the Client's settings and a
// data channel between them, driven with the Client's flow control but no
// application crypto, framing or acks.
type rawPair struct {
	pcs      [2]*webrtc.PeerConnection
	dc       *webrtc.DataChannel
	buf      []byte
	lowBuf   chan struct{} // the send buffer drained below LowWater
	failed   chan struct{} // closed when ICE fails
	got      atomic.Int64  // bytes received, over all runs
	runSize  atomic.Int64  // bytes per run
	received chan struct{} // a run's last byte arrived
}

func startRawPair(ctx context.Context, env *stack, nets *vnetPair, relay bool, cfg Config) (_ *rawPair, err error) {
	var rc webrtc.Configuration
	if nets == nil {
		// The same ICE servers the hub hands a Client.
		for _, s := range env.iceConfig().Servers {
			rc.ICEServers = append(rc.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	if relay {
		rc.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	p := &rawPair{
		buf:      make([]byte, cfg.Chunk),
		lowBuf:   make(chan struct{}, 1),
		failed:   make(chan struct{}),
		received: make(chan struct{}, 1),
	}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	for i := range p.pcs {
		lo, hook := peerSettings(nets, i, cfg)
		pc, err := rtc.NewAPI(rtc.Options{LoopbackOnly: lo, RelayOnly: relay, SettingEngine: hook}).NewPeerConnection(rc)
		if err != nil {
			return nil, fmt.Errorf("peer connection: %w", err)
		}
		p.pcs[i] = pc
	}
	var failOnce sync.Once
	for _, pc := range p.pcs {
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateFailed {
				failOnce.Do(func() { close(p.failed) })
			}
		})
	}
	if p.dc, err = p.pcs[0].CreateDataChannel("bench", nil); err != nil {
		return nil, fmt.Errorf("data channel: %w", err)
	}
	opened := make(chan struct{})
	p.dc.OnOpen(func() { close(opened) })
	p.dc.SetBufferedAmountLowThreshold(rtc.LowWater)
	p.dc.OnBufferedAmountLow(func() {
		select {
		case p.lowBuf <- struct{}{}:
		default:
		}
	})
	p.pcs[1].OnDataChannel(func(d *webrtc.DataChannel) {
		d.OnMessage(func(m webrtc.DataChannelMessage) {
			if p.got.Add(int64(len(m.Data)))%p.runSize.Load() == 0 {
				select {
				case p.received <- struct{}{}:
				default:
				}
			}
		})
	})
	p.runSize.Store(1 << 62)
	if err := connectPair(ctx, p.pcs[0], p.pcs[1]); err != nil {
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.wait(setup, opened); err != nil {
		return nil, err
	}
	if path := rtc.SelectedPath(p.pcs[0]); relay != (path == "relay") {
		return nil, fmt.Errorf("path is %q with relay=%v", path, relay)
	}
	return p, nil
}

func (p *rawPair) wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-p.failed:
		return errors.New("connection failed (ICE)")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transfer sends size bytes and times it until the receiver has them all.
func (p *rawPair) transfer(ctx context.Context, size int64) (time.Duration, error) {
	if p.got.Load() != 0 && p.got.Load()%size != 0 {
		return 0, errors.New("an earlier run did not finish")
	}
	p.runSize.Store(size)
	start := time.Now()
	for sent := int64(0); sent < size; {
		for p.dc.BufferedAmount() > rtc.HighWater {
			if err := p.wait(ctx, p.lowBuf); err != nil {
				return 0, err
			}
		}
		b := p.buf[:min(int64(len(p.buf)), size-sent)]
		if err := p.dc.Send(b); err != nil {
			return 0, fmt.Errorf("send: %w", err)
		}
		sent += int64(len(b))
	}
	if err := p.wait(ctx, p.received); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (p *rawPair) close() {
	for _, pc := range p.pcs {
		if pc != nil {
			_ = pc.Close()
		}
	}
}

// connectPair runs offer and answer between two local PeerConnections with
// complete candidate lists, as the Client does through the hub.
func connectPair(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	gathered := func(pc *webrtc.PeerConnection) error {
		select {
		case <-webrtc.GatheringCompletePromise(pc):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	offer, err := offerer.CreateOffer(nil)
	if err == nil {
		err = offerer.SetLocalDescription(offer)
	}
	if err == nil {
		err = gathered(offerer)
	}
	if err == nil {
		err = answerer.SetRemoteDescription(*offerer.LocalDescription())
	}
	if err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err == nil {
		err = answerer.SetLocalDescription(answer)
	}
	if err == nil {
		err = gathered(answerer)
	}
	if err == nil {
		err = offerer.SetRemoteDescription(*answerer.LocalDescription())
	}
	if err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return nil
}

// trystPair is a host and a guest Client in one room, connected.
type trystPair struct {
	host, guest *client.Client
	hostEv      chan client.Event
	guestEv     chan client.Event
	cancel      context.CancelFunc
	done        sync.WaitGroup
	// connect is the time from the guest's start until both were
	// connected; path is the host's selected path.
	connect time.Duration
	path    string
}

// benchEvents forwards the events the benchmark waits for; progress is
// dropped, and so is anything beyond the buffer rather than blocking the
// client.
func benchEvents(ch chan client.Event) func(client.Event) {
	return func(ev client.Event) {
		if ev.Kind == client.EventProgress {
			return
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

func startTrystPair(ctx context.Context, env *stack, nets *vnetPair, relay bool, cfg Config, dir string) (*trystPair, error) {
	return startTrystPairWith(ctx, env, nets, relay, relay, cfg, dir)
}

// startTrystPairWith is startTrystPair with each side's relay-only policy
// of its own; the pair must select the relay if either is relay-only.
func startTrystPairWith(ctx context.Context, env *stack, nets *vnetPair, hostRelay, guestRelay bool, cfg Config, dir string) (*trystPair, error) {
	relay := hostRelay || guestRelay
	hubURL := env.hubURL
	if nets != nil {
		hubURL = env.bareURL
	}
	out := filepath.Join(dir, "received")
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	p := &trystPair{hostEv: make(chan client.Event, 64), guestEv: make(chan client.Event, 64)}
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	start := func(room string, side int, events chan client.Event) (*client.Client, error) {
		lo, hook := peerSettings(nets, side, cfg)
		c, err := client.New(client.Config{
			Hub: hubURL, Room: room, Password: fmt.Sprintf("%x", pw), Relay: side == 0 && hostRelay || side == 1 && guestRelay, OutDir: out,
			ChunkSize: cfg.Chunk, LoopbackOnly: lo, SettingEngine: hook, OnEvent: benchEvents(events),
		})
		if err != nil {
			return nil, err
		}
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			if err := c.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				select {
				case events <- client.Event{Kind: client.EventWarning, Text: "client stopped: " + err.Error()}:
				default:
				}
			}
		}()
		return c, nil
	}
	var err error
	if p.host, err = start("", 0, p.hostEv); err != nil {
		p.close()
		return nil, err
	}
	setup, cancelSetup := context.WithTimeout(ctx, time.Minute)
	defer cancelSetup()
	room, err := waitEvent(setup, p.hostEv, client.EventRoom)
	joined := time.Now()
	if err == nil {
		p.guest, err = start(room.Text, 1, p.guestEv)
	}
	var conn, guestConn client.Event
	if err == nil {
		conn, err = waitEvent(setup, p.hostEv, client.EventConnected)
	}
	if err == nil {
		guestConn, err = waitEvent(setup, p.guestEv, client.EventConnected)
	}
	if err == nil && relay != (conn.Path == "relay") {
		err = fmt.Errorf("path is %q with relay=%v", conn.Path, relay)
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("connect two clients: %w", err)
	}
	// Each event carries the time the Client emitted it.
	p.connect = max(conn.Time.Sub(joined), guestConn.Time.Sub(joined))
	p.path = conn.Path
	return p, nil
}

// waitEvent returns the next event of kind; a client that stops fails it.
func waitEvent(ctx context.Context, ch <-chan client.Event, kind client.EventKind) (client.Event, error) {
	for {
		select {
		case ev := <-ch:
			if ev.Kind == kind {
				return ev, nil
			}
			if ev.Kind == client.EventWarning && strings.HasPrefix(ev.Text, "client stopped") {
				return ev, errors.New(ev.Text)
			}
		case <-ctx.Done():
			return client.Event{}, fmt.Errorf("waiting for event %d: %w", kind, ctx.Err())
		}
	}
}

// transfer sends src and times it from the moment it is queued until the
// sender has the receiver's verdict (written, hashed, synced and renamed).
// SendFile hashes the whole file first, for the offer; that time is
// returned separately.
func (p *trystPair) transfer(ctx context.Context, src string) (transfer, hash time.Duration, err error) {
	t0 := time.Now()
	if err := p.host.SendFile(src); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	sent, err := waitEvent(ctx, p.hostEv, client.EventFileSent)
	if err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	if !sent.File.OK {
		return 0, 0, fmt.Errorf("transfer failed: %s", sent.File.Err)
	}
	got, err := waitEvent(ctx, p.guestEv, client.EventFileReceived)
	if err != nil {
		return 0, 0, err
	}
	if !got.File.OK {
		return 0, 0, fmt.Errorf("receiver: %s", got.File.Err)
	}
	if err := os.Remove(got.File.Path); err != nil {
		return 0, 0, err
	}
	return d, start.Sub(t0), nil
}

func (p *trystPair) close() {
	p.cancel()
	p.done.Wait()
}
