// Package hubload load-tests a running hub over loopback (`tryst bench
// hub`): pairings per second, relay latency between the two members of many
// active rooms, and the hub's resident memory per idle connection, read
// from its metrics endpoint. Run returns the measurements; the command
// prints them as a table (Result.WriteTable) or as JSON (Result marshals).
//
// docs/BENCHMARKS.md has the method and the figures.
package hubload

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tryst-chat/tryst/proto"
)

// Phases are the phases in the order they run. The memory phase goes first
// so that its baseline is taken on a hub that has not yet grown its heap
// for the others; the abuse phase goes last, as it leaves rooms behind.
var Phases = []string{"mem", "pair", "relay", "abuse"}

// DefaultPhases are the phases run unless told otherwise: not abuse, which
// is meant for a hub with its default limits (the others need them off).
var DefaultPhases = []string{"mem", "pair", "relay"}

// Config is one run. Start from DefaultConfig. Validate's messages name the
// flags of `tryst bench hub` that set each field.
type Config struct {
	// Hub is the hub's base URL: ws://, wss://, http:// or https://; /v1/ws
	// is added (--hub).
	Hub string
	// RootCAs, if set, are the roots trusted for a wss:// or https://
	// hub in place of the system's (--ca-file adds its certificates to
	// the system's): a hub with a private or self-signed certificate.
	RootCAs *x509.CertPool
	// Metrics is the hub's metrics URL, such as
	// http://127.0.0.1:9464/metrics; the mem phase needs it (--metrics).
	Metrics string
	// Sources are the addresses to dial from, round robin; none lets the
	// system choose, which gives ~28k ports (--sources, see ParseSources).
	Sources []netip.Addr
	// Phases to run, of Phases (--phases).
	Phases []string

	// The pair phase: Workers loop create → offer → join → answer until
	// Pairings are done or PairDuration has passed.
	Pairings     int
	PairDuration time.Duration
	Workers      int

	// The relay phase: Rooms rooms whose members each send RelayRate
	// candidate frames a second of RelaySize bytes of data (at least 24),
	// measured for RelayDuration after RelayWarmup.
	Rooms         int
	RelayRate     float64
	RelayDuration time.Duration
	RelayWarmup   time.Duration
	RelaySize     int

	// The mem phase: Conns connections in rooms of two, held Settle before
	// the hub's memory is read again.
	Conns  int
	Settle time.Duration
	// Concurrency is how many rooms are set up at once (mem and relay).
	Concurrency int

	// The abuse phase: for AbuseDuration, one connection at a time from
	// AbuseSource, as fast as it goes: open a WebSocket, create, an offer
	// of AbuseOfferBytes, close without leave. Meanwhile an honest client
	// at HonestSource pairs every HonestInterval. A zero source is the
	// system's choice; HonestSource falls back to it when it cannot be
	// bound.
	AbuseDuration   time.Duration
	AbuseOfferBytes int
	AbuseSource     netip.Addr
	HonestSource    netip.Addr
	HonestInterval  time.Duration

	// Timeout is the longest wait for one hub reply.
	Timeout time.Duration
	// ServerPID, when not zero, is the hub's process on this host, whose
	// CPU time over the pair and relay phases is reported.
	ServerPID int
}

// DefaultConfig returns the settings `tryst bench hub` starts from.
func DefaultConfig() Config {
	return Config{
		Phases:          slices.Clone(DefaultPhases),
		Pairings:        30000,
		PairDuration:    10 * time.Second,
		Workers:         64,
		Rooms:           1000,
		RelayRate:       2,
		RelayDuration:   10 * time.Second,
		RelayWarmup:     2 * time.Second,
		RelaySize:       200,
		Conns:           20000,
		Settle:          3 * time.Second,
		Concurrency:     128,
		Timeout:         10 * time.Second,
		AbuseDuration:   20 * time.Second,
		AbuseOfferBytes: 60_000,
		HonestSource:    netip.AddrFrom4([4]byte{127, 0, 0, 2}),
		HonestInterval:  2 * time.Second,
	}
}

// Validate refuses settings Run could not work with.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// check returns c with the hub URL in its WebSocket form, or what is wrong.
func (c Config) check() (Config, error) {
	bad := func(format string, a ...any) (Config, error) {
		return c, fmt.Errorf("bench hub: "+format, a...)
	}
	var err error
	if c.Hub, err = proto.WebSocketURL(c.Hub); err != nil {
		return bad("--hub: %v", err)
	}
	if len(c.Phases) == 0 {
		return bad("--phases: no phase given (use %s)", strings.Join(Phases, ", "))
	}
	for _, p := range c.Phases {
		if !slices.Contains(Phases, p) {
			return bad("--phases: unknown phase %q (use %s)", p, strings.Join(Phases, ", "))
		}
	}
	switch {
	case c.runs("mem") && c.Metrics == "":
		return bad("the mem phase needs --metrics (or leave it out of --phases)")
	case c.runs("abuse") && c.Metrics == "":
		return bad("the abuse phase needs --metrics (or leave it out of --phases)")
	case c.AbuseDuration <= 0 || c.HonestInterval <= 0:
		return bad("need --abuse-duration>0, --honest-interval>0")
	case c.AbuseOfferBytes < 1 || c.AbuseOfferBytes > maxAbuseOffer:
		return bad("--abuse-offer must be 1..%d (the offer frame must fit the hub's 64 KiB message limit)", maxAbuseOffer)
	case c.Pairings < 1 || c.Workers < 1 || c.PairDuration <= 0:
		return bad("need --pairings>=1, --workers>=1, --pair-duration>0")
	case c.Rooms < 1 || c.RelayRate <= 0 || c.RelayRate > 1000 || c.RelayDuration <= 0 || c.RelayWarmup < 0:
		return bad("need --rooms>=1, 0<--relay-rate<=1000, --relay-duration>0, --relay-warmup>=0")
	case c.RelaySize < 24 || c.RelaySize > 32<<10:
		return bad("--relay-size must be 24..32768")
	case c.Conns < 2 || c.Concurrency < 1 || c.Timeout <= 0 || c.Settle < 0:
		return bad("need --conns>=2, --concurrency>=1, --timeout>0, --settle>=0")
	}
	if c.Metrics != "" {
		if u, err := url.Parse(c.Metrics); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return bad("--metrics: %q is not an http(s) URL", c.Metrics)
		}
	}
	return c, nil
}

// maxAbuseOffer leaves room in a 64 KiB message for the offer frame's JSON.
const maxAbuseOffer = 65_000

func (c Config) runs(phase string) bool { return slices.Contains(c.Phases, phase) }

// ParseSources reads source addresses written as an IPv4 range "A-B" or a
// list "A,B,C"; an empty string is none.
func ParseSources(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if !a.Is4() || !b.Is4() || b.Less(a) {
			return nil, fmt.Errorf("%q is not an ascending IPv4 range", s)
		}
		var out []netip.Addr
		for x := a; ; x = x.Next() {
			out = append(out, x)
			if x == b {
				break
			}
			if len(out) >= 4096 {
				return nil, fmt.Errorf("range %q holds more than 4096 addresses", s)
			}
		}
		return out, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Run runs the phases of cfg in order and returns what they measured.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.check()
	if err != nil {
		return Result{}, err
	}
	b := newClient(cfg)
	defer b.close()
	res := Result{Hub: cfg.Hub, Sources: len(cfg.Sources)}
	for _, p := range Phases {
		if !cfg.runs(p) {
			continue
		}
		switch p {
		case "mem":
			res.Mem, err = b.memory(ctx)
		case "pair":
			res.Pair, err = b.pairings(ctx)
		case "relay":
			res.Relay, err = b.relay(ctx)
		case "abuse":
			res.Abuse, err = b.abuse(ctx)
		}
		if err != nil {
			return Result{}, fmt.Errorf("bench hub: %s: %w", p, err)
		}
	}
	res.Targets = targets(res)
	return res, nil
}
