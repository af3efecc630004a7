// Package teststack runs a real hub and TURN relay on loopback for tests,
// wired the way `tryst serve` wires them: the hub hands out ICE servers with
// fresh credentials for the relay.
package teststack

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/turnserver"
)

// Options adjust the stack.
type Options struct {
	Store hub.Store    // nil: the hub's in-memory store
	Web   http.Handler // nil: the hub's placeholder page
	// HubKeys sign and verify resume tokens (hub.Config.HubKeys): stacks
	// started one after another with the same keys are one hub restarted.
	// Nil: a random key for this stack's life.
	HubKeys [][]byte
}

// Stack is a running hub and relay; both stop when the test ends.
type Stack struct {
	URL  string // the hub's http://127.0.0.1:port
	Hub  *hub.Hub
	TURN *turnserver.Server
	// TURNMetrics counts what the relay relays.
	TURNMetrics *metrics.TURN
}

// Start starts a stack. The relay may relay to loopback peers, as both
// peers of a test live on 127.0.0.1.
func Start(t testing.TB, opt Options) *Stack {
	t.Helper()
	tm := metrics.UnregisteredTURN()
	ts, err := turnserver.New(turnserver.Config{
		ListenAddr:         "127.0.0.1:0",
		Secrets:            [][]byte{[]byte("test-secret-0123456789")},
		AllowLoopbackPeers: true,
		PublicIP:           netip.MustParseAddr("127.0.0.1"),
		Metrics:            tm,
		Sockets:            1,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{
		Store:   opt.Store,
		Web:     opt.Web,
		HubKeys: opt.HubKeys,
		ICE: func(string) proto.ICEConfig {
			user, pass, _ := ts.Credential("test")
			addr := ts.UDPAddr().String()
			return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
				{URLs: []string{"stun:" + addr}},
				{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: user, Credential: pass},
			}}
		},
	})
	if err != nil {
		ts.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
		ts.Close()
	})
	return &Stack{URL: srv.URL, Hub: h, TURN: ts, TURNMetrics: tm}
}

// RelayedBytes is the payload the relay has forwarded, both directions.
func (s *Stack) RelayedBytes() float64 {
	return testutil.ToFloat64(s.TURNMetrics.RelayBytes.WithLabelValues("client_to_peer")) +
		testutil.ToFloat64(s.TURNMetrics.RelayBytes.WithLabelValues("peer_to_client"))
}
