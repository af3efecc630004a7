package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/hubload"
	"github.com/tryst-chat/tryst/internal/bench/transfer"
	"github.com/tryst-chat/tryst/internal/bench/turnload"
	"github.com/tryst-chat/tryst/internal/settings"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/turnserver"
)

// `tryst bench TARGET`: flags → the benchmark's Config → Run → print. The
// benchmarks themselves are packages under internal/bench.

// runBenchHub implements "tryst bench hub" (package hubload).
func runBenchHub(ctx context.Context, args []string, std stdio) error {
	cfg := hubload.DefaultConfig()
	var sources, phases, abuseSource, honestSource, caFile string
	var asJSON bool
	fs := flag.NewFlagSet("tryst bench hub", flag.ContinueOnError)
	fs.SetOutput(std.err)
	fs.StringVar(&cfg.Hub, "hub", "", "hub base `URL` (ws://, wss://, http:// or https://; /v1/ws is added)")
	fs.StringVar(&caFile, "ca-file", "", "PEM `FILE` of certificates to trust for a wss:// or https:// hub, besides the system roots (a private CA or a self-signed certificate)")
	fs.StringVar(&cfg.Metrics, "metrics", "", "hub metrics `URL` (e.g. http://127.0.0.1:9464/metrics); needed by the mem and abuse phases")
	fs.StringVar(&sources, "sources", "", "source addresses to dial from, round robin: a range 127.0.0.2-127.0.0.41 or a comma list; empty lets the system choose (one address gives ~28k ports)")
	fs.StringVar(&phases, "phases", strings.Join(cfg.Phases, ","), "phases to run, comma-separated: "+strings.Join(hubload.Phases, ", ")+" (abuse is meant for a hub with its default limits)")
	fs.IntVar(&cfg.Pairings, "pairings", cfg.Pairings, "pair phase: pairings to complete (stops earlier at --pair-duration)")
	fs.DurationVar(&cfg.PairDuration, "pair-duration", cfg.PairDuration, "pair phase: longest run")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "pair phase: concurrent pairing workers")
	fs.IntVar(&cfg.Rooms, "rooms", cfg.Rooms, "relay phase: active rooms (two connections each)")
	fs.Float64Var(&cfg.RelayRate, "relay-rate", cfg.RelayRate, "relay phase: candidate frames per second sent by each member (the hub allows 20/s)")
	fs.DurationVar(&cfg.RelayDuration, "relay-duration", cfg.RelayDuration, "relay phase: measured time")
	fs.DurationVar(&cfg.RelayWarmup, "relay-warmup", cfg.RelayWarmup, "relay phase: unmeasured sending before the measurement")
	fs.IntVar(&cfg.RelaySize, "relay-size", cfg.RelaySize, "relay phase: `BYTES` of candidate data per frame (at least 24)")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "mem phase: connections to hold, in rooms of two")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "mem phase: wait after opening before reading the hub's memory")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "rooms set up in parallel (mem and relay phases)")
	fs.DurationVar(&cfg.AbuseDuration, "abuse-duration", cfg.AbuseDuration, "abuse phase: how long the loop runs")
	fs.IntVar(&cfg.AbuseOfferBytes, "abuse-offer", cfg.AbuseOfferBytes, "abuse phase: `BYTES` of offer data per room")
	fs.StringVar(&abuseSource, "abuse-source", "", "abuse phase: the one `ADDRESS` the loop dials from; empty lets the system choose")
	fs.StringVar(&honestSource, "honest-source", cfg.HonestSource.String(), "abuse phase: `ADDRESS` the honest client pairs from (the system's choice when it cannot be bound or is empty)")
	fs.DurationVar(&cfg.HonestInterval, "honest-interval", cfg.HonestInterval, "abuse phase: time between the honest client's pairings")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "longest wait for one hub reply")
	fs.BoolVar(&asJSON, "json", false, "print the results as JSON")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "hub `PID` (same host) whose CPU time from /proc/PID/stat is reported for the pair and relay phases")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("bench hub: %w", err)
	}
	if fs.NArg() > 0 {
		return badSetting("bench hub: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.Sources, err = hubload.ParseSources(sources); err != nil {
		return badSetting("bench hub: --sources: %v", err)
	}
	for _, a := range []struct {
		flag, value string
		addr        *netip.Addr
	}{{"--abuse-source", abuseSource, &cfg.AbuseSource}, {"--honest-source", honestSource, &cfg.HonestSource}} {
		*a.addr = netip.Addr{}
		if a.value == "" {
			continue
		}
		if *a.addr, err = netip.ParseAddr(a.value); err != nil {
			return badSetting("bench hub: %s: %v", a.flag, err)
		}
	}
	if caFile != "" {
		if cfg.RootCAs, err = settings.RootsWith(caFile); err != nil {
			return badSetting("bench hub: --ca-file: %v", err)
		}
	}
	cfg.Phases = splitList(phases)
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	res, err := hubload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(std.out, res)
	}
	return res.WriteTable(std.out)
}

// runBenchTURN implements "tryst bench turn" (package turnload).
func runBenchTURN(ctx context.Context, args []string, std stdio) error {
	cfg := turnload.DefaultConfig()
	var secretFile string
	fs := flag.NewFlagSet("tryst bench turn", flag.ContinueOnError)
	fs.SetOutput(std.err)
	fs.StringVar(&cfg.Server, "server", "", "TURN server `HOST:PORT` (UDP)")
	fs.StringVar(&secretFile, "secret-file", "", "file with the TURN REST API shared secret (first line signs)")
	fs.StringVar(&cfg.User, "user", cfg.User, "id part of the REST usernames (suffixed with the allocation number)")
	fs.IntVar(&cfg.Allocations, "allocations", cfg.Allocations, "number of allocations")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured relaying time")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured relaying before the measurement")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "UDP payload `BYTES` per packet (at least 16)")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "packets per second per allocation; 0 = as fast as the window allows")
	fs.IntVar(&cfg.Window, "window", cfg.Window, "packets in flight per allocation when --rate=0")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server `PID` (same host) whose CPU time from /proc/PID/stat is measured")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "allocations created in parallel")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("bench turn: %w", err)
	}
	if cfg.Server != "" && secretFile != "" {
		data, err := os.ReadFile(secretFile)
		if err != nil {
			return fmt.Errorf("bench turn: %w", err)
		}
		secrets, err := turnserver.ParseSecrets(data)
		if err != nil {
			return fmt.Errorf("bench turn: %w", err)
		}
		cfg.Secret = secrets[0]
	}
	// A bad setting here has always been exit status 1, not 2.
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := turnload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return res.WriteTable(std.out)
}

// runBenchTransfer implements "tryst bench transfer" (package transfer):
// its relay is this binary's `tryst serve` in a child process.
func runBenchTransfer(ctx context.Context, args []string, std stdio) error {
	cfg := transfer.DefaultConfig()
	var scenarios, cpuprofile string
	var asJSON bool
	fs := flag.NewFlagSet("tryst bench transfer", flag.ContinueOnError)
	fs.SetOutput(std.err)
	fs.IntVar(&cfg.SizeMiB, "size", cfg.SizeMiB, "`MiB` sent per run on loopback")
	fs.IntVar(&cfg.RTTSizeMiB, "rtt-size", cfg.RTTSizeMiB, "`MiB` sent per run over the emulated delay")
	fs.IntVar(&cfg.Repeats, "repeats", cfg.Repeats, "runs per scenario; the median is reported")
	fs.IntVar(&cfg.Connects, "connects", cfg.Connects, "connections made for each of the connect scenarios")
	fs.BoolVar(&cfg.PionWaits, "pion-waits", false, "give every connection pion's own ICE acceptance waits, relay-only ones included (how Tryst connected before issue 13), for comparison")
	fs.IntVar(&cfg.Chunk, "chunk", cfg.Chunk, fmt.Sprintf("file data per chunk (the raw scenarios' message size) in `bytes`, %d..%d", transfer.MinChunk, proto.MaxChunkData))
	fs.DurationVar(&cfg.RTT, "rtt", cfg.RTT, "emulated round-trip time (pion vnet)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the temporary files (default: the system's)")
	fs.StringVar(&scenarios, "scenarios", strings.Join(cfg.Scenarios, ","), "comma-separated scenarios to run")
	fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "limit for one run")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the peers (both of them, and vnet) to `FILE`; the relay is another process")
	fs.BoolVar(&cfg.IsolateRelay, "isolate-relay", cfg.IsolateRelay, "during the loopback scenarios, run the relay process on the last CPU and the peers on the others, as if the relay were another host (Linux, 2+ CPUs)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("bench transfer: %w", err)
	}
	if fs.NArg() > 0 {
		return badSetting("bench transfer: unexpected argument %q", fs.Arg(0))
	}
	cfg.Scenarios = splitList(scenarios)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench transfer: relay: find own binary: %w", err)
	}
	cfg.Executable, cfg.RelayArgs, cfg.RelayEnv = exe, relayArgs(), relayEnv(os.Environ())
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	cfg.Log = std.err
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return fmt.Errorf("bench transfer: %w", err)
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	res, err := transfer.Run(ctx, cfg)
	if len(res.Results)+len(res.Connects) > 0 { // also when only stopping the relay failed
		if asJSON {
			err = errors.Join(writeJSON(std.out, res), err)
		} else {
			err = errors.Join(res.WriteTable(std.out), err)
		}
	}
	return err
}

// relayArgs are bench transfer's relay settings as serve's flags: loopback
// ports chosen by the kernel, no per-address limits (every benchmark client
// is on 127.0.0.1: limits meant for the Internet would measure themselves),
// JSON logs, the addresses reported on the pipe transfer.RelayReadyFile.
// They are rendered as differences from serve's defaults, so this list
// cannot drift from serve's.
func relayArgs() []string {
	return settings.Args(serveFlags(relayOptions()), serveFlags(newServeOptions()))
}

func relayOptions() *serveOptions {
	o := newServeOptions()
	o.Listen, o.MetricsListen, o.TURNListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	o.PublicIP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	o.AllowLoopbackPeers = true
	o.TURNUserQuota = 1000
	// Every peer is on 127.0.0.1: the per-address limits would refuse a
	// long run, and nothing balances load onto the relay (no drain delay).
	o.TURNAllocationsPerIP, o.CredentialsPerIP, o.RoomsPerIP, o.IdleRoomsPerIP = -1, -1, -1, -1
	o.DrainDelay, o.DrainTimeout = 0, 2*time.Second
	o.logFormat = "json"
	o.ReadyFile = transfer.RelayReadyFile
	return o
}

// relayEnv is the benchmark's environment without the settings serve reads
// from it: a TRYST_LISTEN of the user's must not move the relay, and the
// TURN secret is the benchmark's (package transfer adds it).
func relayEnv(environ []string) []string {
	drop := []string{"TRYST_TURN_SECRET"}
	for _, name := range settings.Names(serveFlags(newServeOptions())) {
		drop = append(drop, settings.EnvName(name))
	}
	return slices.DeleteFunc(slices.Clone(environ), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(drop, name)
	})
}

// splitList splits a comma-separated flag value, trimming each item.
func splitList(s string) []string {
	items := strings.Split(s, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items
}

// writeJSON prints v as the benchmarks' --json does: indented, one value.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
