package rtc_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/turnserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNewAPI: the caller's SettingEngine hook runs, and a connection that has
// selected no candidate pair yet reports its path as unknown.
func TestNewAPI(t *testing.T) {
	called := false
	api := rtc.NewAPI(rtc.Options{LoopbackOnly: true, SettingEngine: func(*webrtc.SettingEngine) { called = true }})
	if !called {
		t.Error("SettingEngine hook not called")
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if got := rtc.SelectedPath(pc); got != "unknown" {
		t.Errorf("path before connecting = %q, want unknown", got)
	}
	if rtc.LowWater >= rtc.HighWater {
		t.Errorf("LowWater %d not below HighWater %d", rtc.LowWater, rtc.HighWater)
	}
}

func TestConnectWaits(t *testing.T) {
	if w := rtc.Waits(true); w != (rtc.AcceptanceWaits{}) {
		t.Errorf("relay-only waits %+v, want all 0", w)
	}
	// A pair that may go direct: a host pair at once, and every other type
	// later than the one before it, the relay last.
	w := rtc.Waits(false)
	if w.Host != 0 || w.Srflx <= w.Host || w.Prflx <= w.Srflx || w.Relay <= w.Prflx {
		t.Errorf("waits %+v do not favour the direct path", w)
	}
}

// pionRelayWait is pion's relay acceptance wait where none is set: a
// controlling agent cannot nominate a relayed pair before it.
const pionRelayWait = 2 * time.Second

// TestConnectRelayOnlyFast: two relay-only peers connect through the relay
// sooner than pion's relay wait allows, and so does a relay-only offerer
// with an answerer that may go direct (`tryst send --relay` and a plain
// `tryst receive`).
func TestConnectRelayOnlyFast(t *testing.T) {
	ice := relayICE(t)
	for _, tc := range []struct {
		name                  string
		offerRelay, answRelay bool
	}{{"both", true, true}, {"offerer", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			path, d := connect(t, ice, tc.offerRelay, tc.answRelay)
			if path != "relay" {
				t.Errorf("path %q, want relay", path)
			}
			if d >= pionRelayWait {
				t.Errorf("connected in %v, not before pion's relay wait of %v", d, pionRelayWait)
			}
			t.Logf("relay-only (%s) connected in %v", tc.name, d)
		})
	}
}

// TestConnectDirectWins: with STUN and TURN handed out and host candidates on
// loopback, both relayed and direct pairs work; the direct one is taken.
func TestConnectDirectWins(t *testing.T) {
	path, d := connect(t, relayICE(t), false, false)
	if path != "direct (host)" {
		t.Errorf("path %q, want direct (host)", path)
	}
	t.Logf("connected in %v", d)
}

// relayICE starts a TURN relay on loopback and returns the ICE servers
// the hub would hand out for it.
func relayICE(t *testing.T) []webrtc.ICEServer {
	t.Helper()
	secret := []byte("rtc test secret, 16+ bytes")
	ts, err := turnserver.New(turnserver.Config{
		ListenAddr:         "127.0.0.1:0",
		Secrets:            [][]byte{secret},
		AllowLoopbackPeers: true,
		PublicIP:           netip.MustParseAddr("127.0.0.1"),
		Sockets:            1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	user, pass := turnserver.MintCredential(secret, "rtc", time.Hour, time.Now())
	addr := ts.UDPAddr().String()
	return []webrtc.ICEServer{
		{URLs: []string{"stun:" + addr}},
		{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: user, Credential: pass},
	}
}

// connect connects two peers as the Client does (complete candidate lists
// in the offer and answer) and returns the path the offerer selected and
// the time from the offer until the answerer received the first message.
func connect(t *testing.T, ice []webrtc.ICEServer, offerRelay, answRelay bool) (string, time.Duration) {
	t.Helper()
	newPC := func(relay bool) *webrtc.PeerConnection {
		cfg := webrtc.Configuration{ICEServers: ice}
		if relay {
			cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
		}
		pc, err := rtc.NewAPI(rtc.Options{LoopbackOnly: true, RelayOnly: relay}).NewPeerConnection(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		return pc
	}
	offerer, answerer := newPC(offerRelay), newPC(answRelay)
	got := make(chan struct{}, 1)
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(webrtc.DataChannelMessage) {
			select {
			case got <- struct{}{}:
			default:
			}
		})
	})
	dc, err := offerer.CreateDataChannel("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { _ = dc.SendText("hello") })
	start := time.Now()
	exchange := func(from, to *webrtc.PeerConnection, sdp webrtc.SessionDescription, err error) {
		t.Helper()
		if err == nil {
			err = from.SetLocalDescription(sdp)
		}
		if err != nil {
			t.Fatal(err)
		}
		<-webrtc.GatheringCompletePromise(from)
		if err := to.SetRemoteDescription(*from.LocalDescription()); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := offerer.CreateOffer(nil)
	exchange(offerer, answerer, offer, err)
	answer, err := answerer.CreateAnswer(nil)
	exchange(answerer, offerer, answer, err)
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no message within 30 s")
	}
	return rtc.SelectedPath(offerer), time.Since(start)
}
