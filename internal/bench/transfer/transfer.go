// Package transfer measures how fast Tryst connects and transfers files
// (`tryst bench transfer`): the time two Clients take to connect, direct
// and relay-only; then a bare pion data channel against Tryst's encrypted
// file transfer with the same settings and flow control, direct, through a
// TURN relay, and over pion's emulated network with a round-trip delay. The hub
// and relay are a real `tryst serve` run as a child process (see
// relayProcess), on a CPU of its own where it can be; Run reports the
// median of repeated rounds and paired ratios between scenarios.
//
// docs/BENCHMARKS.md has the method and the figures.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/internal/bench/stats"
	"github.com/tryst-chat/tryst/proto"
)

// Config is one run. Start from DefaultConfig. Validate's messages name the
// flags of `tryst bench transfer` that set each field.
type Config struct {
	// Executable is the tryst binary: `Executable serve RelayArgs...` is
	// the relay. The command passes its own (os.Executable).
	Executable string
	// RelayArgs are serve's arguments for the relay. They must keep every
	// listener on loopback, allow loopback peers, lift the per-address
	// limits (every peer is 127.0.0.1) and write the bound addresses to
	// RelayReadyFile, as --ready-file does.
	RelayArgs []string
	// RelayEnv is the relay's environment; the TURN secret the benchmark
	// signs credentials with is added as TRYST_TURN_SECRET, in place of any.
	RelayEnv []string

	// SizeMiB is sent per run on loopback (--size), RTTSizeMiB over the
	// emulated delay (--rtt-size); 1..65536 each.
	SizeMiB, RTTSizeMiB int
	// Repeats is the number of rounds; the median is reported (--repeats).
	Repeats int
	// Connects is the number of connections made for each connect
	// scenario, 1..1000 (--connects).
	Connects int
	// PionWaits gives every connection pion's own ICE acceptance waits, a
	// relay-only one included: how Tryst connected before issue 13, for
	// comparison (--pion-waits; see rtc.Waits).
	PionWaits bool
	// Chunk is the file data per chunk in bytes, and the raw scenarios'
	// message size, MinChunk..proto.MaxChunkData (--chunk).
	Chunk int
	// RTT is the emulated round-trip time, 2ms..2s (--rtt).
	RTT time.Duration
	// Dir holds the temporary files; empty: the system's (--dir).
	Dir string
	// Scenarios to run, of Scenarios (--scenarios).
	Scenarios []string
	// Timeout limits one run (--timeout).
	Timeout time.Duration
	// CPUProfile, if not nil, receives a CPU profile of this process (the
	// peers and vnet; the relay is another process) while the scenarios
	// run (--cpuprofile).
	CPUProfile io.Writer
	// IsolateRelay runs the relay on the last CPU and the peers on the
	// others during the relayed scenarios and their baselines, as if the
	// relay were another host (Linux, 2+ CPUs; --isolate-relay). Where
	// that cannot be done, Run says so on Log and runs unpinned.
	IsolateRelay bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// MinChunk is the smallest Config.Chunk, the client's smallest chunk.
const MinChunk = client.MinChunkSize

// DefaultConfig returns the settings `tryst bench transfer` starts from.
func DefaultConfig() Config {
	return Config{
		SizeMiB:      256,
		RTTSizeMiB:   64,
		Repeats:      3,
		Connects:     20,
		Chunk:        proto.DefaultChunkData,
		RTT:          50 * time.Millisecond,
		Scenarios:    slices.Clone(Scenarios),
		Timeout:      5 * time.Minute,
		IsolateRelay: true,
	}
}

// Validate refuses settings Run could not work with.
func (c Config) Validate() error {
	if len(c.Scenarios) == 0 {
		return errors.New("bench transfer: no scenario given")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("bench transfer: unknown scenario %q (known: %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	switch {
	case c.SizeMiB < 1 || c.RTTSizeMiB < 1 || c.SizeMiB > 64<<10 || c.RTTSizeMiB > 64<<10:
		return errors.New("bench transfer: --size and --rtt-size must be 1..65536 MiB")
	case c.Repeats < 1 || c.Repeats > 100:
		return errors.New("bench transfer: --repeats must be 1..100")
	case c.Connects < 1 || c.Connects > 1000:
		return errors.New("bench transfer: --connects must be 1..1000")
	case c.Chunk < MinChunk || c.Chunk > proto.MaxChunkData:
		return fmt.Errorf("bench transfer: --chunk must be %d..%d", MinChunk, proto.MaxChunkData)
	case c.RTT < 2*time.Millisecond || c.RTT > 2*time.Second:
		return errors.New("bench transfer: --rtt must be 2ms..2s")
	case c.Timeout <= 0:
		return errors.New("bench transfer: --timeout must be positive")
	case c.Executable == "":
		return errors.New("bench transfer: no executable to run the relay (`tryst serve`) from")
	}
	return nil
}

// Result is one run: what `tryst bench transfer --json` prints.
type Result struct {
	RTT       string           `json:"rtt"`
	Chunk     int              `json:"chunk_bytes"`
	Repeats   int              `json:"repeats"`
	PeerCPUs  []int            `json:"peer_cpus,omitempty"`  // loopback scenarios; empty: not isolated
	RelayCPUs []int            `json:"relay_cpus,omitempty"` // empty: not isolated
	PionWaits bool             `json:"pion_waits,omitempty"` // Config.PionWaits
	Connects  []ConnectResult  `json:"connects,omitempty"`   // the connect scenarios
	Results   []ScenarioResult `json:"results"`              // the throughput scenarios
}

// ScenarioResult is one scenario's measurement.
type ScenarioResult struct {
	Scenario string    `json:"scenario"`
	Bytes    int64     `json:"bytes"`
	Seconds  []float64 `json:"seconds"` // one per run
	// HashSeconds is, per run, how long SendFile hashed the file before
	// the transfer started (Tryst only; not part of Seconds).
	HashSeconds []float64 `json:"hash_seconds,omitempty"`
	MBps        float64   `json:"mb_per_s"` // median run, 10^6 bytes/s
	// VsRaw (Tryst scenarios) is the median over the rounds of this
	// scenario's throughput over the raw data channel's on the same path in
	// the same round; VsDirect (relayed scenarios) the same against the
	// direct scenario of the same kind. Pairing runs of one round cancels
	// most of the drift in background load on a shared machine.
	VsRaw    float64 `json:"vs_raw,omitempty"`
	VsDirect float64 `json:"vs_direct,omitempty"`
}

// pairedRatio is the median over rounds of r's throughput over base's.
func pairedRatio(r, base *ScenarioResult) float64 {
	if base == nil || len(base.Seconds) != len(r.Seconds) {
		return 0
	}
	ratios := make([]float64, len(r.Seconds))
	for i := range ratios {
		// Throughput ratio: bytes over seconds, each side.
		ratios[i] = float64(r.Bytes) / r.Seconds[i] / (float64(base.Bytes) / base.Seconds[i])
	}
	return stats.Median(ratios)
}

func findResult(rs []ScenarioResult, scenario string) *ScenarioResult {
	for i := range rs {
		if rs[i].Scenario == scenario {
			return &rs[i]
		}
	}
	return nil
}

// Run starts the relay and the hubs, connects every selected scenario,
// runs cfg.Repeats rounds and returns the results. Should only stopping the
// relay fail, Run returns the results with that error.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	cpus, err := newCPULayout(cfg.IsolateRelay)
	if err != nil {
		fmt.Fprintf(log, "bench transfer: relay not isolated: %v\n", err)
	}
	env, err := startStack(ctx, cfg, cpus)
	if err != nil {
		return res, fmt.Errorf("bench transfer: %w", err)
	}
	fmt.Fprintf(log, "bench transfer: relay: tryst serve, pid %d, hub %s, TURN %s, metrics %s (pprof: /debug/pprof/)\n",
		env.relay.cmd.Process.Pid, env.relay.addrs.Hub, env.relay.addrs.TURNUDP, env.relay.addrs.Metrics)
	defer func() {
		if cerr := env.close(); cerr != nil && err == nil {
			err = fmt.Errorf("bench transfer: %w", cerr)
		}
	}()
	dir, err := os.MkdirTemp(cfg.Dir, "tryst-bench-")
	if err != nil {
		return res, fmt.Errorf("bench transfer: %w", err)
	}
	defer os.RemoveAll(dir)
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return res, fmt.Errorf("bench transfer: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	// Connections first: the throughput scenarios' connections stay open.
	connects, err := runConnects(ctx, env, cfg, dir, log)
	if err != nil {
		return res, fmt.Errorf("bench transfer: %w", err)
	}
	results, err := runRounds(ctx, env, cfg, dir, log)
	if err != nil {
		return res, fmt.Errorf("bench transfer: %w", err)
	}
	for i := range results {
		r := &results[i]
		if strings.HasPrefix(r.Scenario, scTryst) {
			r.VsRaw = pairedRatio(r, findResult(results, scRaw+strings.TrimPrefix(r.Scenario, scTryst)))
		}
		if strings.HasSuffix(r.Scenario, "-relay") {
			r.VsDirect = pairedRatio(r, findResult(results, relayedBaseline(r.Scenario, cpus.isolated())))
		}
	}
	return Result{RTT: cfg.RTT.String(), Chunk: cfg.Chunk, Repeats: cfg.Repeats,
		PeerCPUs: cpus.peers, RelayCPUs: cpus.relay, PionWaits: cfg.PionWaits, Connects: connects, Results: results}, nil
}
