package transfer

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/internal/bench/stats"
	"github.com/tryst-chat/tryst/internal/rtc"
)

// The connect scenarios time how long two Clients take to connect: the
// host has created a room; the guest joins with the code; the time runs
// until both report EventConnected, i.e. each has received the other's
// key confirmation, the first frame on the data channel. That is what a
// user meets between typing the code and being able to chat: the host's
// gathering (with its TURN allocation) after the join, the sealed offer
// and answer through the hub, ICE, DTLS, SCTP, the password's key
// derivation on both sides, and key confirmation.
const (
	scConnect      = "connect"       // direct: host candidates, STUN and TURN handed out
	scConnectRelay = "connect-relay" // both sides relay-only (Config.Relay)
	// The guest relay-only, the host not (tryst chat --room CODE --relay
	// with a plain host): the guest's relay restart request makes the
	// host's connection take the relay without its 2 s wait.
	scConnectRelayGuest = "connect-relay-guest"
)

// ConnectResult is one connect scenario's measurement.
type ConnectResult struct {
	Scenario string `json:"scenario"`
	// Path is what the host's Client reported ("direct (host)", "relay");
	// every connection of the scenario selected it.
	Path string `json:"path"`
	// Ms is, per connection in the order made, the time from the guest's
	// start until both Clients were connected, in milliseconds.
	Ms  []float64 `json:"ms"`
	P50 float64   `json:"p50_ms"` // nearest rank
	P99 float64   `json:"p99_ms"` // nearest rank: the slowest below 100 connections
	// VsDirect (connect-relay, connect-relay-guest) is its P50 over
	// connect's, measured in the same run, alternately.
	VsDirect float64 `json:"vs_direct,omitempty"`
}

// runConnects makes cfg.Connects connections for each selected connect
// scenario through the relay's hub, one at a time, alternating the
// scenarios and reversing their order each time so that neither always
// goes first. Each pair is closed before the next starts.
func runConnects(ctx context.Context, env *stack, cfg Config, dir string, log io.Writer) ([]ConnectResult, error) {
	var scs []string
	for _, sc := range []string{scConnect, scConnectRelay, scConnectRelayGuest} {
		if slices.Contains(cfg.Scenarios, sc) {
			scs = append(scs, sc)
		}
	}
	if len(scs) == 0 {
		return nil, nil
	}
	// Every CPU: what is measured is waiting (the hub, ICE's checks and
	// acceptance waits), and direct and relayed get the same CPUs.
	if err := env.cpus.forScenario(false); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench transfer: %d connections each for %s\n", cfg.Connects, strings.Join(scs, ", "))
	res := make([]ConnectResult, len(scs))
	samples := make([][]time.Duration, len(scs))
	for i, sc := range scs {
		res[i].Scenario = sc
	}
	order := make([]int, len(scs))
	for i := range order {
		order[i] = i
	}
	for range cfg.Connects {
		slices.Reverse(order)
		for _, i := range order {
			hostRelay := scs[i] == scConnectRelay
			guestRelay := hostRelay || scs[i] == scConnectRelayGuest
			p, err := startTrystPairWith(ctx, env, nil, hostRelay, guestRelay, cfg, dir)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", scs[i], err)
			}
			p.close()
			if scs[i] == scConnect && p.path != "direct (host)" {
				return nil, fmt.Errorf("%s: path %q, want direct (host): the relay won over a working direct path", scs[i], p.path)
			}
			res[i].Path = p.path
			res[i].Ms = append(res[i].Ms, stats.Ms(p.connect))
			samples[i] = append(samples[i], p.connect)
		}
	}
	for i := range res {
		slices.Sort(samples[i])
		res[i].P50 = stats.Ms(stats.Percentile(samples[i], 0.5))
		res[i].P99 = stats.Ms(stats.Percentile(samples[i], 0.99))
	}
	if direct := findConnect(res, scConnect); direct != nil && direct.P50 > 0 {
		for _, sc := range []string{scConnectRelay, scConnectRelayGuest} {
			if r := findConnect(res, sc); r != nil {
				r.VsDirect = r.P50 / direct.P50
			}
		}
	}
	return res, nil
}

func findConnect(rs []ConnectResult, scenario string) *ConnectResult {
	for i := range rs {
		if rs[i].Scenario == scenario {
			return &rs[i]
		}
	}
	return nil
}

// pionWaits gives a connection pion's own acceptance waits, whatever its
// transport policy: how every connection was made before issue 13
// (Config.PionWaits).
func pionWaits(se *webrtc.SettingEngine) { rtc.Waits(false).Apply(se) }
