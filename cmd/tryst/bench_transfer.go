package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/bench/proc"
	"github.com/tryst-chat/tryst/internal/bench/stats"
	"github.com/tryst-chat/tryst/proto"
)

// benchTransferConfig holds the flags of "tryst bench transfer".
type benchTransferConfig struct {
	size      int64 // bytes per run on loopback
	delaySize int64 // bytes per run over the emulated delay
	repeats   int
	chunk     int
	rtt       time.Duration
	dir       string
	scenarios []string
	json      bool
	timeout   time.Duration // per run
	cpuprof   string
	isolate   bool // relay and peers on disjoint CPUs
}

// The scenarios, in the order they run and are reported.
const (
	scRaw        = "raw"
	scTryst      = "tryst"
	scRawRelay   = "raw-relay"
	scTrystRelay = "tryst-relay"
	scRawRTT     = "raw-rtt"
	scTrystRTT   = "tryst-rtt"

	// With the relay isolated on its own CPU, a relayed scenario is
	// compared with the same direct transfer with the peers on the same
	// CPUs (the "-pinned" baselines, added for the selected relayed
	// scenarios), so that the ratio measures the path and not the number
	// of CPUs. They are not selectable on their own.
	scRawPinned   = "raw-pinned"
	scTrystPinned = "tryst-pinned"
)

// allTransferScenarios are the selectable scenarios, in the order they
// run and are reported.
var allTransferScenarios = []string{scRaw, scTryst, scRawRelay, scTrystRelay, scRawRTT, scTrystRTT}

// runScenarios adds the pinned baselines the selection needs, in report
// order.
func runScenarios(selected []string, isolated bool) []string {
	var out []string
	for _, sc := range []string{scRaw, scTryst, scRawPinned, scTrystPinned, scRawRelay, scTrystRelay, scRawRTT, scTrystRTT} {
		base, pinned := strings.CutSuffix(sc, "-pinned")
		if slices.Contains(selected, sc) || pinned && isolated && slices.Contains(selected, base+"-relay") {
			out = append(out, sc)
		}
	}
	return out
}

// relayedBaseline names the direct scenario a relayed one is compared with.
func relayedBaseline(relayed string, isolated bool) string {
	base := strings.TrimSuffix(relayed, "-relay")
	if isolated {
		return base + "-pinned"
	}
	return base
}

// transferResult is one scenario's measurement.
type transferResult struct {
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

// runBenchTransfer implements "tryst bench transfer": in one process, a hub
// and a TURN relay on loopback, then the throughput of a bare pion data
// channel and of Tryst's encrypted file transfer (same settings, same flow
// control), direct and through TURN, and both again over an emulated
// network with a round-trip delay. It reports the median of N runs.
func runBenchTransfer(ctx context.Context, args []string, std stdio) (err error) {
	stdout, stderr := std.out, std.err
	cfg, err := parseBenchTransferFlags(args, stderr)
	if err != nil {
		return err
	}
	cpus, err := newCPULayout(cfg.isolate)
	if err != nil {
		fmt.Fprintf(stderr, "bench transfer: relay not isolated: %v\n", err)
	}
	env, err := startTransferEnv(ctx, cpus)
	if err != nil {
		return fmt.Errorf("bench transfer: %w", err)
	}
	fmt.Fprintf(stderr, "bench transfer: relay: tryst serve, pid %d, hub %s, TURN %s, metrics %s (pprof: /debug/pprof/)\n",
		env.relay.cmd.Process.Pid, env.relay.addrs.Hub, env.relay.addrs.TURNUDP, env.relay.addrs.Metrics)
	defer func() {
		if cerr := env.close(); cerr != nil && err == nil {
			err = fmt.Errorf("bench transfer: %w", cerr)
		}
	}()
	dir, err := os.MkdirTemp(cfg.dir, "tryst-bench-")
	if err != nil {
		return fmt.Errorf("bench transfer: %w", err)
	}
	defer os.RemoveAll(dir)
	if cfg.cpuprof != "" {
		f, err := os.Create(cfg.cpuprof)
		if err != nil {
			return fmt.Errorf("bench transfer: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench transfer: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	results, err := benchTransfers(ctx, env, cfg, dir, stderr)
	if err != nil {
		return fmt.Errorf("bench transfer: %w", err)
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
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			RTT       string           `json:"rtt"`
			Chunk     int              `json:"chunk_bytes"`
			Repeats   int              `json:"repeats"`
			PeerCPUs  []int            `json:"peer_cpus,omitempty"`  // loopback scenarios; empty: not isolated
			RelayCPUs []int            `json:"relay_cpus,omitempty"` // empty: not isolated
			Results   []transferResult `json:"results"`
		}{cfg.rtt.String(), cfg.chunk, cfg.repeats, cpus.peers, cpus.relay, results})
	}
	printBenchTransfer(stdout, cfg, cpus.String(), results)
	return nil
}

func parseBenchTransferFlags(args []string, stderr io.Writer) (benchTransferConfig, error) {
	var cfg benchTransferConfig
	var sizeMiB, delayMiB int
	var scenarios string
	fs := flag.NewFlagSet("tryst bench transfer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&sizeMiB, "size", 256, "`MiB` sent per run on loopback")
	fs.IntVar(&delayMiB, "rtt-size", 64, "`MiB` sent per run over the emulated delay")
	fs.IntVar(&cfg.repeats, "repeats", 3, "runs per scenario; the median is reported")
	fs.IntVar(&cfg.chunk, "chunk", 16<<10, "chunk (message) size in `bytes`, 1 KiB..64 KiB")
	fs.DurationVar(&cfg.rtt, "rtt", 50*time.Millisecond, "emulated round-trip time (pion vnet)")
	fs.StringVar(&cfg.dir, "dir", "", "directory for the temporary files (default: the system's)")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allTransferScenarios, ","), "comma-separated scenarios to run")
	fs.BoolVar(&cfg.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "limit for one run")
	fs.StringVar(&cfg.cpuprof, "cpuprofile", "", "write a CPU profile of the peers (both of them, and vnet) to `FILE`; the relay is another process")
	fs.BoolVar(&cfg.isolate, "isolate-relay", true, "during the loopback scenarios, run the relay process on the last CPU and the peers on the others, as if the relay were another host (Linux, 2+ CPUs)")
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("bench transfer: %w", err)
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("bench transfer: unexpected argument %q", fs.Arg(0))}
	}
	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allTransferScenarios, s) {
			return cfg, usageError{fmt.Errorf("bench transfer: unknown scenario %q (known: %s)", s,
				strings.Join(allTransferScenarios, ", "))}
		}
		cfg.scenarios = append(cfg.scenarios, s)
	}
	switch {
	case sizeMiB < 1 || delayMiB < 1 || sizeMiB > 64<<10 || delayMiB > 64<<10:
		return cfg, usageError{errors.New("bench transfer: --size and --rtt-size must be 1..65536 MiB")}
	case cfg.repeats < 1 || cfg.repeats > 100:
		return cfg, usageError{errors.New("bench transfer: --repeats must be 1..100")}
	case cfg.chunk < 1<<10 || cfg.chunk > 64<<10:
		return cfg, usageError{errors.New("bench transfer: --chunk must be 1024..65536")}
	case cfg.rtt < 2*time.Millisecond || cfg.rtt > 2*time.Second:
		return cfg, usageError{errors.New("bench transfer: --rtt must be 2ms..2s")}
	case cfg.timeout <= 0:
		return cfg, usageError{errors.New("bench transfer: --timeout must be positive")}
	}
	cfg.size, cfg.delaySize = int64(sizeMiB)<<20, int64(delayMiB)<<20
	return cfg, nil
}

func findResult(rs []transferResult, scenario string) *transferResult {
	for i := range rs {
		if rs[i].Scenario == scenario {
			return &rs[i]
		}
	}
	return nil
}

// transferEnv is what the scenarios connect through: `tryst serve` as a
// child process (hub and TURN relay on loopback, see relayProcess), plus an
// in-process hub that hands out no ICE servers for the peers on the emulated
// network (they could not reach the loopback relay).
type transferEnv struct {
	relay     *relayProcess
	cpus      cpuLayout
	hubs      []*hub.Hub
	servers   []*http.Server
	serveDone sync.WaitGroup
	hubURL    string // the relay's hub: hands out STUN and TURN
	bareURL   string // hands out nothing
}

func startTransferEnv(ctx context.Context, cpus cpuLayout) (env *transferEnv, err error) {
	env = &transferEnv{cpus: cpus}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	if env.relay, err = startRelayProcess(ctx, cpus.relay); err != nil {
		return env, err
	}
	env.hubURL = env.relay.addrs.Hub
	if env.bareURL, err = env.startBareHub(); err != nil {
		return env, err
	}
	return env, nil
}

// iceConfig is what the relay's hub hands a Client, for the raw pairs.
func (env *transferEnv) iceConfig() proto.ICEConfig {
	user, pass := env.relay.credential("bench")
	addr := env.relay.addrs.TURNUDP
	return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
		{URLs: []string{"stun:" + addr}},
		{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: user, Credential: pass},
	}}
}

// startBareHub starts an in-process hub that hands out no ICE servers.
func (env *transferEnv) startBareHub() (string, error) {
	h, err := hub.New(hub.Config{})
	if err != nil {
		return "", fmt.Errorf("start hub: %w", err)
	}
	env.hubs = append(env.hubs, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("start hub: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	env.servers = append(env.servers, srv)
	env.serveDone.Add(1)
	go func() {
		defer env.serveDone.Done()
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), nil
}

func (env *transferEnv) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range env.servers {
		_ = s.Shutdown(ctx)
	}
	for _, h := range env.hubs {
		_ = h.Shutdown(ctx)
	}
	env.serveDone.Wait()
	if env.relay != nil {
		if err := env.relay.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := env.cpus.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cpuLayout places the relay process and the peers on disjoint CPUs (the
// relay on the last one) for the relayed scenarios and their direct
// baselines, as if the relay were another host. Sharing their CPUs, the
// relayed path is CPU-bound by construction: the relay's system calls come
// out of the peers' CPU time, which no deployment does (docs/BENCHMARKS.md
// has the figures). The other scenarios do not use the relay and run on
// every CPU.
type cpuLayout struct {
	all, peers, relay []int // relay empty: not isolated
	procs             int   // GOMAXPROCS outside the pinned scenarios
}

func newCPULayout(isolate bool) (cpuLayout, error) {
	l := cpuLayout{procs: runtime.GOMAXPROCS(0)}
	if !isolate {
		return l, nil
	}
	cpus, err := proc.CPUs()
	if err != nil {
		return l, err
	}
	if len(cpus) < 2 {
		return l, fmt.Errorf("it needs 2 CPUs, this process may use %d", len(cpus))
	}
	// Setting the mask it already has tells whether this process may set
	// one at all (a seccomp profile may forbid sched_setaffinity).
	if err := proc.Pin(cpus); err != nil {
		return l, err
	}
	l.all, l.peers, l.relay = cpus, cpus[:len(cpus)-1], cpus[len(cpus)-1:]
	return l, nil
}

func (l cpuLayout) isolated() bool { return len(l.relay) > 0 }

// forScenario confines the peers to their CPUs for a pinned scenario and
// gives them every CPU back for the others. GOMAXPROCS follows, as it
// would had the process started with that affinity.
func (l cpuLayout) forScenario(pinned bool) error {
	if !l.isolated() {
		return nil
	}
	if !pinned {
		return l.release()
	}
	if err := proc.Pin(l.peers); err != nil {
		return err
	}
	runtime.GOMAXPROCS(len(l.peers))
	return nil
}

// release undoes forScenario.
func (l cpuLayout) release() error {
	if !l.isolated() {
		return nil
	}
	runtime.GOMAXPROCS(l.procs)
	return proc.Pin(l.all)
}

func (l cpuLayout) String() string {
	if !l.isolated() {
		return "relay: `tryst serve` process sharing every CPU with the peers; relayed compared with direct"
	}
	return fmt.Sprintf("relay: `tryst serve` process on CPU %v; peers on CPU %v for -relay and -pinned, every CPU otherwise;\n"+
		"relayed compared with -pinned (direct, same CPUs)", l.relay, l.peers)
}

// pairedRatio is the median over rounds of r's throughput over base's.
func pairedRatio(r, base *transferResult) float64 {
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

// benchTransfers sets every selected scenario up first (connections stay
// open and idle between runs), then runs cfg.repeats rounds, each running
// every scenario once in turn, alternately forwards and backwards: raw and
// Tryst, direct and relayed, see the same background load and equally warm
// connections.
func benchTransfers(ctx context.Context, env *transferEnv, cfg benchTransferConfig, dir string, stderr io.Writer) ([]transferResult, error) {
	type scenario struct {
		name    string
		size    int64
		pinned  bool // peers kept off the relay's CPU
		measure func(ctx context.Context) (transfer, hash time.Duration, err error)
	}
	var (
		scs   []scenario
		nets  *vnetPair
		files = map[int64]string{}
	)
	defer func() {
		if nets != nil {
			nets.close()
		}
	}()
	var cleanup []func()
	defer func() {
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}()
	for _, sc := range runScenarios(cfg.scenarios, env.cpus.isolated()) {
		fmt.Fprintf(stderr, "bench transfer: connecting %s\n", sc)
		relay := strings.HasSuffix(sc, "-relay")
		size := cfg.size
		var n *vnetPair
		if strings.HasSuffix(sc, "-rtt") {
			size = cfg.delaySize
			if nets == nil {
				var err error
				if nets, err = newVnetPair(cfg.rtt); err != nil {
					return nil, err
				}
			}
			n = nets
		}
		// Peers pinned away from the relay's CPU for the relayed scenarios
		// and their baselines; every CPU for the others.
		pinned := relay || strings.HasSuffix(sc, "-pinned")
		if strings.HasPrefix(sc, scRaw) {
			rp, err := startRawPair(ctx, env, n, relay, cfg.chunk)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc, err)
			}
			cleanup = append(cleanup, rp.close)
			scs = append(scs, scenario{sc, size, pinned, func(ctx context.Context) (time.Duration, time.Duration, error) {
				d, err := rp.transfer(ctx, size)
				return d, 0, err
			}})
			continue
		}
		tp, err := startTrystPair(ctx, env, n, relay, cfg, dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc, err)
		}
		cleanup = append(cleanup, tp.close)
		src, ok := files[size]
		if !ok {
			src = filepath.Join(dir, fmt.Sprintf("payload-%d.bin", size))
			if err := writeRandomFile(src, size); err != nil {
				return nil, err
			}
			files[size] = src
		}
		scs = append(scs, scenario{sc, size, pinned, func(ctx context.Context) (time.Duration, time.Duration, error) {
			return tp.transfer(ctx, src)
		}})
	}
	results := make([]transferResult, len(scs))
	for i, sc := range scs {
		results[i] = transferResult{Scenario: sc.name, Bytes: sc.size}
	}
	order := make([]int, len(scs))
	for i := range order {
		order[i] = i
	}
	for round := range cfg.repeats {
		fmt.Fprintf(stderr, "bench transfer: round %d of %d\n", round+1, cfg.repeats)
		// Every other round runs backwards, so neither side of a pair
		// always runs first (on a warmer or cooler machine).
		slices.Reverse(order)
		for _, i := range order {
			sc := scs[i]
			if err := env.cpus.forScenario(sc.pinned); err != nil {
				return nil, err
			}
			rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
			d, hash, err := sc.measure(rctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc.name, err)
			}
			results[i].Seconds = append(results[i].Seconds, d.Seconds())
			if hash > 0 {
				results[i].HashSeconds = append(results[i].HashSeconds, hash.Seconds())
			}
		}
	}
	for i := range results {
		if med := stats.Median(results[i].Seconds); med > 0 {
			results[i].MBps = float64(results[i].Bytes) / med / 1e6
		}
	}
	return results, nil
}

func writeRandomFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		b := buf[:min(int64(len(buf)), left)]
		_, _ = rand.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

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

func startRawPair(ctx context.Context, env *transferEnv, nets *vnetPair, relay bool, chunk int) (_ *rawPair, err error) {
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
		buf:      make([]byte, chunk),
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
		lo, hook := nets.settings(i)
		pc, err := client.NewAPI(client.Config{LoopbackOnly: lo, SettingEngine: hook}).NewPeerConnection(rc)
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
	p.dc.SetBufferedAmountLowThreshold(client.LowWater)
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
	if path := client.SelectedPath(p.pcs[0]); relay != (path == "relay") {
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
		for p.dc.BufferedAmount() > client.HighWater {
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

func startTrystPair(ctx context.Context, env *transferEnv, nets *vnetPair, relay bool, cfg benchTransferConfig, dir string) (*trystPair, error) {
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
		lo, hook := nets.settings(side)
		c, err := client.New(client.Config{
			Hub: hubURL, Room: room, Password: fmt.Sprintf("%x", pw), Relay: relay, OutDir: out,
			ChunkSize: cfg.chunk, LoopbackOnly: lo, SettingEngine: hook, OnEvent: benchEvents(events),
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
	if err == nil {
		p.guest, err = start(room.Text, 1, p.guestEv)
	}
	var conn client.Event
	if err == nil {
		conn, err = waitEvent(setup, p.hostEv, client.EventConnected)
	}
	if err == nil {
		_, err = waitEvent(setup, p.guestEv, client.EventConnected)
	}
	if err == nil && relay != (conn.Path == "relay") {
		err = fmt.Errorf("path is %q with relay=%v", conn.Path, relay)
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("connect two clients: %w", err)
	}
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

func printBenchTransfer(w io.Writer, cfg benchTransferConfig, layout string, rs []transferResult) {
	fmt.Fprintf(w, "tryst bench transfer: %d-byte chunks, %d rounds, emulated RTT %v; MB = 10^6 bytes\n",
		cfg.chunk, cfg.repeats, cfg.rtt)
	fmt.Fprintf(w, "%s\n", layout)
	fmt.Fprintf(w, "MB/s is the median run; ratios are medians of per-round ratios\n\n")
	fmt.Fprintf(w, "%-12s %9s %7s %13s %7s %9s  %s\n", "scenario", "size", "MB/s", "min..max", "vs raw", "vs direct", "target")
	pct := func(x float64) string {
		if x <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*x)
	}
	for _, r := range rs {
		lo, hi := slices.Max(r.Seconds), slices.Min(r.Seconds)
		spread := fmt.Sprintf("%.1f..%.1f", float64(r.Bytes)/lo/1e6, float64(r.Bytes)/hi/1e6)
		fmt.Fprintf(w, "%-12s %5d MiB %7.1f %13s %7s %9s  %s\n", r.Scenario, r.Bytes>>20, r.MBps, spread,
			pct(r.VsRaw), pct(r.VsDirect), transferTarget(r))
	}
	for _, r := range rs {
		if len(r.HashSeconds) > 0 {
			h := stats.Median(r.HashSeconds)
			fmt.Fprintf(w, "\n%s: SendFile hashed the file in %.2f s before each transfer (median, %.0f MB/s; not included above)",
				r.Scenario, h, float64(r.Bytes)/h/1e6)
		}
	}
	fmt.Fprintln(w)
}

// transferTarget states the target for a scenario and whether the
// measurement meets it.
func transferTarget(r transferResult) string {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	switch {
	case r.Scenario == scTryst && r.VsRaw > 0:
		return ">= 90% of raw: " + verdict(r.VsRaw >= 0.9)
	case r.Scenario == scTrystRelay && r.VsDirect > 0:
		return ">= 70% of direct: " + verdict(r.VsDirect >= 0.7)
	case r.Scenario == scTrystRTT:
		return ">= 20 MB/s: " + verdict(r.MBps >= 20)
	}
	return ""
}
