package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/internal/bench/stats"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// benchHubConfig holds the flags of "tryst bench hub".
type benchHubConfig struct {
	hubURL     string // ws:// URL of /v1/ws
	metricsURL string
	sources    []netip.Addr
	phases     map[string]bool

	pairings     int
	pairDuration time.Duration
	workers      int

	rooms         int
	relayRate     float64
	relayDuration time.Duration
	relayWarmup   time.Duration
	relaySize     int

	conns       int
	settle      time.Duration
	concurrency int

	timeout   time.Duration
	json      bool
	serverPID int
}

// The phases, in the order they run. The memory phase goes first so that its
// baseline is taken on a hub that has not yet grown its heap for the others.
var benchHubPhases = []string{"mem", "pair", "relay"}

// benchHubResult is what one run measured; phases not run are nil.
type benchHubResult struct {
	Hub     string           `json:"hub"`
	Sources int              `json:"source_addresses"`
	Pair    *pairResult      `json:"pairings,omitempty"`
	Relay   *relayResult     `json:"relay,omitempty"`
	Mem     *memResult       `json:"memory,omitempty"`
	Targets []benchHubTarget `json:"targets"`
}

type pairResult struct {
	Workers   int     `json:"workers"`
	Completed int     `json:"completed"`
	Failed    int     `json:"failed"`
	FirstErr  string  `json:"first_error,omitempty"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50ms     float64 `json:"latency_p50_ms"`
	P99ms     float64 `json:"latency_p99_ms"`
	// HubCPU is the hub's CPU time during the phase (with --server-pid).
	HubCPU          float64 `json:"hub_cpu_seconds,omitempty"`
	PerHubCPUSecond float64 `json:"per_hub_cpu_second,omitempty"`
}

type relayResult struct {
	Rooms          int     `json:"rooms"`
	RatePerMember  float64 `json:"rate_per_member"`
	FrameBytes     int     `json:"data_bytes"`
	Seconds        float64 `json:"seconds"`
	Sent           int64   `json:"sent"`
	Received       int64   `json:"received"`
	FramesPerSec   float64 `json:"frames_per_second"`
	P50ms          float64 `json:"latency_p50_ms"`
	P99ms          float64 `json:"latency_p99_ms"`
	Maxms          float64 `json:"latency_max_ms"`
	SetupFailed    int     `json:"setup_failed"`
	FirstSetupErr  string  `json:"first_setup_error,omitempty"`
	SendErrors     int64   `json:"send_errors"`
	ConnectionsCut int64   `json:"connections_cut"`
	HubCPU         float64 `json:"hub_cpu_seconds,omitempty"`
}

type memResult struct {
	Requested   int     `json:"requested"`
	Held        int     `json:"held"`
	Failed      int     `json:"failed"`
	FirstErr    string  `json:"first_error,omitempty"`
	OpenSeconds float64 `json:"open_seconds"`
	HubConns    float64 `json:"hub_connections_gauge"`
	RSSBefore   float64 `json:"rss_before_bytes"`
	RSSAfter    float64 `json:"rss_after_bytes"`
	KiBPerConn  float64 `json:"kib_per_connection"`
}

type benchHubTarget struct {
	Name   string  `json:"name"`
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	Reason string  `json:"note,omitempty"`
}

// runBenchHub implements "tryst bench hub": it load-tests a running hub over
// loopback and reports pairings per second, relay latency between the two
// members of many active rooms, and the hub's resident memory per idle
// connection (from its metrics endpoint).
func runBenchHub(ctx context.Context, args []string, std stdio) error {
	stdout, stderr := std.out, std.err
	cfg, err := parseBenchHubFlags(args, stderr)
	if err != nil {
		return err
	}
	b := newBenchHubClient(cfg)
	defer b.close()
	res := benchHubResult{Hub: cfg.hubURL, Sources: len(cfg.sources)}
	for _, p := range benchHubPhases {
		if !cfg.phases[p] {
			continue
		}
		switch p {
		case "mem":
			res.Mem, err = b.memory(ctx)
		case "pair":
			res.Pair, err = b.pairings(ctx)
		case "relay":
			res.Relay, err = b.relay(ctx)
		}
		if err != nil {
			return fmt.Errorf("bench hub: %s: %w", p, err)
		}
	}
	res.Targets = benchHubTargets(cfg, res)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBenchHub(stdout, cfg, res)
	return nil
}

func parseBenchHubFlags(args []string, stderr io.Writer) (benchHubConfig, error) {
	var cfg benchHubConfig
	var hubURL, sources, phases string
	fs := flag.NewFlagSet("tryst bench hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&hubURL, "hub", "", "hub base `URL` (ws://, wss://, http:// or https://; /v1/ws is added)")
	fs.StringVar(&cfg.metricsURL, "metrics", "", "hub metrics `URL` (e.g. http://127.0.0.1:9464/metrics); needed by the mem phase")
	fs.StringVar(&sources, "sources", "", "source addresses to dial from, round robin: a range 127.0.0.2-127.0.0.41 or a comma list; empty lets the system choose (one address gives ~28k ports)")
	fs.StringVar(&phases, "phases", "mem,pair,relay", "phases to run, comma-separated: mem, pair, relay")
	fs.IntVar(&cfg.pairings, "pairings", 30000, "pair phase: pairings to complete (stops earlier at --pair-duration)")
	fs.DurationVar(&cfg.pairDuration, "pair-duration", 10*time.Second, "pair phase: longest run")
	fs.IntVar(&cfg.workers, "workers", 64, "pair phase: concurrent pairing workers")
	fs.IntVar(&cfg.rooms, "rooms", 1000, "relay phase: active rooms (two connections each)")
	fs.Float64Var(&cfg.relayRate, "relay-rate", 2, "relay phase: candidate frames per second sent by each member (the hub allows 20/s)")
	fs.DurationVar(&cfg.relayDuration, "relay-duration", 10*time.Second, "relay phase: measured time")
	fs.DurationVar(&cfg.relayWarmup, "relay-warmup", 2*time.Second, "relay phase: unmeasured sending before the measurement")
	fs.IntVar(&cfg.relaySize, "relay-size", 200, "relay phase: `BYTES` of candidate data per frame (at least 24)")
	fs.IntVar(&cfg.conns, "conns", 20000, "mem phase: connections to hold, in rooms of two")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "mem phase: wait after opening before reading the hub's memory")
	fs.IntVar(&cfg.concurrency, "concurrency", 128, "rooms set up in parallel (mem and relay phases)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "longest wait for one hub reply")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "hub `PID` (same host) whose CPU time from /proc/PID/stat is reported for the pair and relay phases")
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("bench hub: %w", err)
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("bench hub: unexpected argument %q", fs.Arg(0))}
	}
	bad := func(format string, a ...any) (benchHubConfig, error) {
		return cfg, usageError{fmt.Errorf("bench hub: "+format, a...)}
	}
	var err error
	if cfg.hubURL, err = proto.WebSocketURL(hubURL); err != nil {
		return bad("--hub: %v", err)
	}
	if cfg.sources, err = parseSources(sources); err != nil {
		return bad("--sources: %v", err)
	}
	cfg.phases = make(map[string]bool)
	for _, p := range strings.Split(phases, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(benchHubPhases, p) {
			return bad("--phases: unknown phase %q (use mem, pair, relay)", p)
		}
		cfg.phases[p] = true
	}
	switch {
	case cfg.phases["mem"] && cfg.metricsURL == "":
		return bad("the mem phase needs --metrics (or leave it out of --phases)")
	case cfg.pairings < 1 || cfg.workers < 1 || cfg.pairDuration <= 0:
		return bad("need --pairings>=1, --workers>=1, --pair-duration>0")
	case cfg.rooms < 1 || cfg.relayRate <= 0 || cfg.relayRate > 1000 || cfg.relayDuration <= 0 || cfg.relayWarmup < 0:
		return bad("need --rooms>=1, 0<--relay-rate<=1000, --relay-duration>0, --relay-warmup>=0")
	case cfg.relaySize < 24 || cfg.relaySize > 32<<10:
		return bad("--relay-size must be 24..32768")
	case cfg.conns < 2 || cfg.concurrency < 1 || cfg.timeout <= 0 || cfg.settle < 0:
		return bad("need --conns>=2, --concurrency>=1, --timeout>0, --settle>=0")
	}
	if cfg.metricsURL != "" {
		if u, err := url.Parse(cfg.metricsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return bad("--metrics: %q is not an http(s) URL", cfg.metricsURL)
		}
	}
	return cfg, nil
}

// parseSources reads "A-B" (an IPv4 range) or "A,B,C".
func parseSources(s string) ([]netip.Addr, error) {
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

// benchHubClient dials the hub from the configured source addresses.
//
// The pair phase talks to the hub through hubconn. The relay and memory
// phases open their rooms on bare WebSockets (dial, send, await, openRoom):
// the relay stamps a frame's arrival at the socket read, before decoding, and
// a hand-off to another goroutine per frame would add to the latency it
// reports and take CPU from the hub it measures.
type benchHubClient struct {
	cfg       benchHubConfig
	transport *http.Transport
	opts      *websocket.DialOptions
	connOpts  *hubconn.Options
	next      atomic.Uint64 // round robin over cfg.sources
}

func newBenchHubClient(cfg benchHubConfig) *benchHubClient {
	b := &benchHubClient{cfg: cfg}
	b.transport = &http.Transport{
		DialContext:         b.dialTCP,
		TLSHandshakeTimeout: cfg.timeout,
	}
	b.opts = &websocket.DialOptions{HTTPClient: &http.Client{Transport: b.transport}}
	b.connOpts = &hubconn.Options{Dial: b.opts, WriteTimeout: cfg.timeout}
	return b
}

func (b *benchHubClient) close() { b.transport.CloseIdleConnections() }

// dialTCP opens a TCP connection from the next source address. Linger 0
// makes the bench's close a reset, so that no TIME_WAIT entries pile up and
// exhaust the ephemeral ports of a source address during the pair phase.
func (b *benchHubClient) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: b.cfg.timeout}
	if n := len(b.cfg.sources); n > 0 {
		src := b.cfg.sources[b.next.Add(1)%uint64(n)]
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c, nil
}

// dial opens one WebSocket to the hub.
func (b *benchHubClient) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, b.cfg.hubURL, b.opts)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

func (b *benchHubClient) send(ctx context.Context, ws *websocket.Conn, f proto.Frame) error {
	msg, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, msg)
}

// await reads frames until one of type typ arrives, skipping notices such as
// peer-joined; an error frame ends the wait.
func (b *benchHubClient) await(ctx context.Context, ws *websocket.Conn, typ string) (proto.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return proto.Frame{}, fmt.Errorf("waiting for %s: %w", typ, err)
		}
		f, err := proto.DecodeFrame(msg)
		if err != nil {
			return proto.Frame{}, fmt.Errorf("waiting for %s: %w", typ, err)
		}
		switch f.Type {
		case typ:
			return f, nil
		case proto.TypeError, proto.TypeRoomClosed:
			return f, fmt.Errorf("waiting for %s: hub sent %s %s: %s", typ, f.Type, f.Code, f.Message)
		}
	}
}

// openRoom creates a room and joins it, returning the host's and the guest's
// connections. On error both are closed.
func (b *benchHubClient) openRoom(ctx context.Context) (host, guest *websocket.Conn, err error) {
	defer func() {
		if err != nil {
			closeAll(host, guest)
		}
	}()
	if host, err = b.dial(ctx); err != nil {
		return nil, nil, err
	}
	if err = b.send(ctx, host, proto.Frame{Type: proto.TypeCreate}); err != nil {
		return host, nil, err
	}
	created, err := b.await(ctx, host, proto.TypeCreated)
	if err != nil {
		return host, nil, err
	}
	if guest, err = b.dial(ctx); err != nil {
		return host, nil, err
	}
	if err = b.send(ctx, guest, proto.Frame{Type: proto.TypeJoin, Room: created.Room}); err != nil {
		return host, guest, err
	}
	if _, err = b.await(ctx, guest, proto.TypeJoined); err != nil {
		return host, guest, err
	}
	// The host is told; reading it here keeps the relay phase's first
	// measured frame from queueing behind it.
	if _, err = b.await(ctx, host, proto.TypePeerJoined); err != nil {
		return host, guest, err
	}
	return host, guest, nil
}

func closeAll(conns ...*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.CloseNow()
		}
	}
}

// dialConn opens one connection to the hub for the pair phase.
func (b *benchHubClient) dialConn(ctx context.Context) (*hubconn.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	c, _, err := hubconn.Dial(ctx, b.cfg.hubURL, b.connOpts)
	return c, err
}

// awaitConn waits for a frame of type typ on c, skipping notices such as
// peer-joined; an error or room-closed frame ends the wait.
func (b *benchHubClient) awaitConn(ctx context.Context, c *hubconn.Conn, typ string) (proto.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	f, err := c.Await(ctx, typ, proto.TypeRoomClosed)
	if err == nil && f.Type != typ {
		return f, fmt.Errorf("waiting for %s: hub sent %s: %s", typ, f.Type, f.Reason)
	}
	return f, err
}

// pairOnce runs one full rendezvous on two new connections: create, offer,
// join, answer; it returns when the answer reaches the host.
func (b *benchHubClient) pairOnce(ctx context.Context, offer, answer string) error {
	host, err := b.dialConn(ctx)
	if err != nil {
		return err
	}
	defer host.Close()
	if err := host.Send(ctx, proto.Frame{Type: proto.TypeCreate}); err != nil {
		return err
	}
	created, err := b.awaitConn(ctx, host, proto.TypeCreated)
	if err != nil {
		return err
	}
	if err := host.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: offer}); err != nil {
		return err
	}
	guest, err := b.dialConn(ctx)
	if err != nil {
		return err
	}
	defer guest.Close()
	if err := guest.Send(ctx, proto.Frame{Type: proto.TypeJoin, Room: created.Room}); err != nil {
		return err
	}
	if _, err := b.awaitConn(ctx, guest, proto.TypeOffer); err != nil {
		return err
	}
	if err := guest.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: answer}); err != nil {
		return err
	}
	if _, err := b.awaitConn(ctx, host, proto.TypeAnswer); err != nil {
		return err
	}
	// Done: the host leaves so that the room does not wait out its TTL.
	// Best effort; the connections are reset right after.
	_ = host.Send(ctx, proto.Frame{Type: proto.TypeLeave})
	return nil
}

// pairings runs workers that pair until cfg.pairings are done or
// cfg.pairDuration has passed.
func (b *benchHubClient) pairings(ctx context.Context) (*pairResult, error) {
	cfg := b.cfg
	// Sealed SDP blobs are a few kilobytes in practice.
	offer, answer := strings.Repeat("o", 2000), strings.Repeat("a", 2000)
	runCtx, cancel := context.WithTimeout(ctx, cfg.pairDuration)
	defer cancel()
	var (
		claimed  atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		failed   int
		firstErr error
		wg       sync.WaitGroup
	)
	cpu0, cpuErr0 := processCPU(cfg.serverPID)
	start := time.Now()
	for range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for claimed.Add(1) <= int64(cfg.pairings) && runCtx.Err() == nil {
				t0 := time.Now()
				err := b.pairOnce(runCtx, offer, answer)
				if err == nil {
					mine = append(mine, time.Since(t0))
					continue
				}
				if runCtx.Err() != nil {
					return // cut off by the deadline: not a failure
				}
				mu.Lock()
				failed++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cpuErr1 := processCPU(cfg.serverPID)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := errors.Join(cpuErr0, cpuErr1); err != nil {
		return nil, err
	}
	slices.Sort(lat)
	r := &pairResult{
		Workers:   cfg.workers,
		Completed: len(lat),
		Failed:    failed,
		Seconds:   elapsed.Seconds(),
		PerSecond: float64(len(lat)) / elapsed.Seconds(),
		P50ms:     stats.Ms(stats.Percentile(lat, 0.50)),
		P99ms:     stats.Ms(stats.Percentile(lat, 0.99)),
	}
	if firstErr != nil {
		r.FirstErr = firstErr.Error()
	}
	if cpu := (cpu1 - cpu0).Seconds(); cfg.serverPID != 0 && cpu > 0 {
		r.HubCPU, r.PerHubCPUSecond = cpu, float64(len(lat))/cpu
	}
	return r, nil
}

// openRooms sets up n rooms, cfg.concurrency at a time, stopping early at the
// first failure. It returns the rooms opened, the failures and the first error.
func (b *benchHubClient) openRooms(ctx context.Context, n int) (rooms [][2]*websocket.Conn, failed int, firstErr error) {
	rooms = make([][2]*websocket.Conn, n)
	var (
		next, fails atomic.Int64
		mu          sync.Mutex
		wg          sync.WaitGroup
	)
	for range min(b.cfg.concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && fails.Load() == 0 {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				h, g, err := b.openRoom(ctx)
				if err != nil {
					fails.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				rooms[i] = [2]*websocket.Conn{h, g}
			}
		}()
	}
	wg.Wait()
	rooms = slices.DeleteFunc(rooms, func(r [2]*websocket.Conn) bool { return r[0] == nil })
	return rooms, int(fails.Load()), firstErr
}

// Candidate data in the relay phase: the send time in nanoseconds since the
// phase began, a space, padding.
func candidateData(sent time.Duration, size int) string {
	s := strconv.FormatInt(int64(sent), 10) + " "
	return s + strings.Repeat("c", max(size-len(s), 0))
}

func parseCandidateData(s string) (time.Duration, bool) {
	ns, _, ok := strings.Cut(s, " ")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(ns, 10, 64)
	return time.Duration(v), err == nil
}

// relay opens cfg.rooms rooms whose two members send candidate frames at
// cfg.relayRate, and measures the time from sending to receipt at the other
// member for frames sent during the measured window.
func (b *benchHubClient) relay(ctx context.Context) (*relayResult, error) {
	cfg := b.cfg
	rooms, failed, firstErr := b.openRooms(ctx, cfg.rooms)
	defer func() {
		for _, r := range rooms {
			closeAll(r[0], r[1])
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &relayResult{Rooms: len(rooms), RatePerMember: cfg.relayRate, FrameBytes: cfg.relaySize, SetupFailed: failed}
	if firstErr != nil {
		res.FirstSetupErr = firstErr.Error()
	}
	if len(rooms) == 0 {
		return res, fmt.Errorf("no room could be set up: %w", firstErr)
	}

	// Frames sent in [from, to) since epoch are measured, on both ends.
	cpu0, cpuErr0 := processCPU(cfg.serverPID)
	epoch := time.Now()
	from := cfg.relayWarmup
	to := from + cfg.relayDuration
	sendCtx, stopSending := context.WithTimeout(ctx, to)
	defer stopSending()
	var (
		sent, sendErrs, cut atomic.Int64
		mu                  sync.Mutex
		lat                 []time.Duration
		senders, readers    sync.WaitGroup
	)
	period := time.Duration(float64(time.Second) / cfg.relayRate)
	for _, r := range rooms {
		for _, ws := range r {
			readers.Add(1)
			go func() {
				defer readers.Done()
				var mine []time.Duration
				defer func() {
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
				for {
					// No deadline: the connection is closed to end this loop.
					_, msg, err := ws.Read(context.Background())
					now := time.Since(epoch)
					if err != nil {
						if sendCtx.Err() == nil {
							cut.Add(1)
						}
						return
					}
					f, err := proto.DecodeFrame(msg)
					if err != nil || f.Type != proto.TypeCandidate {
						continue
					}
					if at, ok := parseCandidateData(f.Data); ok && at >= from && at < to {
						mine = append(mine, now-at)
					}
				}
			}()
			senders.Add(1)
			go func() {
				defer senders.Done()
				// A random phase spreads the members' sends over the period.
				t := time.NewTimer(rand.N(period))
				defer t.Stop()
				for {
					select {
					case <-sendCtx.Done():
						return
					case <-t.C:
					}
					t.Reset(period)
					at := time.Since(epoch)
					if err := b.send(sendCtx, ws, proto.Frame{Type: proto.TypeCandidate, Data: candidateData(at, cfg.relaySize)}); err != nil {
						if sendCtx.Err() == nil {
							sendErrs.Add(1)
						}
						continue
					}
					if at >= from && at < to {
						sent.Add(1)
					}
				}
			}()
		}
	}
	senders.Wait()
	cpu1, cpuErr1 := processCPU(cfg.serverPID)
	if err := errors.Join(cpuErr0, cpuErr1); err != nil {
		return nil, err
	}
	if cfg.serverPID != 0 {
		res.HubCPU = (cpu1 - cpu0).Seconds()
	}
	// Give the last measured frames time to arrive, then close to stop the
	// readers.
	drain := time.NewTimer(min(time.Second, cfg.timeout))
	select {
	case <-ctx.Done():
	case <-drain.C:
	}
	drain.Stop()
	for _, r := range rooms {
		closeAll(r[0], r[1])
	}
	readers.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(lat)
	res.Seconds = cfg.relayDuration.Seconds()
	res.Sent = sent.Load()
	res.Received = int64(len(lat))
	res.FramesPerSec = float64(res.Received) / res.Seconds
	res.P50ms = stats.Ms(stats.Percentile(lat, 0.50))
	res.P99ms = stats.Ms(stats.Percentile(lat, 0.99))
	if len(lat) > 0 {
		res.Maxms = stats.Ms(lat[len(lat)-1])
	}
	res.SendErrors = sendErrs.Load()
	res.ConnectionsCut = cut.Load()
	return res, nil
}

// memory holds cfg.conns idle connections (cfg.conns/2 rooms, both members
// joined) and reads the hub's resident memory before and after.
func (b *benchHubClient) memory(ctx context.Context) (*memResult, error) {
	cfg := b.cfg
	res := &memResult{Requested: cfg.conns}
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	res.RSSBefore = before["process_resident_memory_bytes"]
	if res.RSSBefore == 0 {
		return nil, fmt.Errorf("%s has no process_resident_memory_bytes", cfg.metricsURL)
	}

	start := time.Now()
	rooms, failed, firstErr := b.openRooms(ctx, cfg.conns/2)
	res.OpenSeconds = time.Since(start).Seconds()
	res.Held, res.Failed = 2*len(rooms), failed
	if firstErr != nil {
		res.FirstErr = firstErr.Error()
		if errors.Is(firstErr, syscall.EMFILE) {
			res.FirstErr += " (raise ulimit -n or lower --conns)"
		}
	}
	// Idle members still read, so that the hub's pings are answered.
	var readers sync.WaitGroup
	for _, r := range rooms {
		for _, ws := range r {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					if _, _, err := ws.Read(context.Background()); err != nil {
						return
					}
				}
			}()
		}
	}
	defer func() {
		for _, r := range rooms {
			closeAll(r[0], r[1])
		}
		readers.Wait()
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	settle := time.NewTimer(cfg.settle)
	select {
	case <-ctx.Done():
		settle.Stop()
		return nil, ctx.Err()
	case <-settle.C:
	}
	after, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	res.RSSAfter = after["process_resident_memory_bytes"]
	res.HubConns = after["tryst_hub_connections"]
	if res.Held > 0 {
		res.KiBPerConn = (res.RSSAfter - res.RSSBefore) / float64(res.Held) / 1024
	}
	return res, nil
}

// scrape reads the unlabelled samples of the hub's Prometheus text exposition.
func (b *benchHubClient) scrape(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	// A client of its own: the bench transport resets its connections.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		val, _, _ = strings.Cut(strings.TrimSpace(val), " ") // drop a timestamp
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return out, nil
}

// The hub's performance targets on a 2-core machine.
const (
	targetPairingsPerSec = 3000
	targetRelayP99ms     = 5
	targetRelayRooms     = 1000
	targetKiBPerConn     = 25
	targetConns          = 20000
)

func benchHubTargets(cfg benchHubConfig, r benchHubResult) []benchHubTarget {
	var ts []benchHubTarget
	if m := r.Mem; m != nil {
		t := benchHubTarget{Name: "memory per connection", Goal: fmt.Sprintf("< %d KiB at %d connections", targetKiBPerConn, targetConns),
			Value: m.KiBPerConn, Unit: "KiB", Met: m.KiBPerConn < targetKiBPerConn && m.Held > 0}
		if m.Held < targetConns {
			t.Reason = fmt.Sprintf("measured at %d connections", m.Held)
		}
		ts = append(ts, t)
	}
	if p := r.Pair; p != nil {
		ts = append(ts, benchHubTarget{Name: "pairings per second", Goal: fmt.Sprintf(">= %d", targetPairingsPerSec),
			Value: p.PerSecond, Unit: "/s", Met: p.PerSecond >= targetPairingsPerSec && p.Failed == 0})
	}
	if l := r.Relay; l != nil {
		t := benchHubTarget{Name: "relay latency p99", Goal: fmt.Sprintf("< %d ms at %d rooms", targetRelayP99ms, targetRelayRooms),
			Value: l.P99ms, Unit: "ms", Met: l.P99ms < targetRelayP99ms && l.Received > 0}
		if l.Rooms < targetRelayRooms {
			t.Reason = fmt.Sprintf("measured at %d rooms", l.Rooms)
		}
		ts = append(ts, t)
	}
	return ts
}

func printBenchHub(w io.Writer, cfg benchHubConfig, r benchHubResult) {
	src := "system-chosen source address"
	if r.Sources > 0 {
		src = fmt.Sprintf("%d source addresses", r.Sources)
	}
	fmt.Fprintf(w, "hub %s, %s\n\n", r.Hub, src)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if p := r.Pair; p != nil {
		fmt.Fprintf(tw, "pairings\t%.0f/s\t%d done in %.1fs by %d workers, %d failed\n", p.PerSecond, p.Completed, p.Seconds, p.Workers, p.Failed)
		fmt.Fprintf(tw, "pairing time p50/p99\t%.2f / %.2f ms\tcreate → answer at host, two new connections\n", p.P50ms, p.P99ms)
		if p.HubCPU > 0 {
			fmt.Fprintf(tw, "pairings per hub CPU-second\t%.0f\t%.2fs of hub CPU (%.0f%% of one core)\n", p.PerHubCPUSecond, p.HubCPU, 100*p.HubCPU/p.Seconds)
		}
		if p.FirstErr != "" {
			fmt.Fprintf(tw, "  first failure\t%s\t\n", p.FirstErr)
		}
	}
	if l := r.Relay; l != nil {
		fmt.Fprintf(tw, "relay latency p50/p99\t%.2f / %.2f ms\t%d rooms, %.4g frames/s per member, %d-byte data, max %.2f ms\n",
			l.P50ms, l.P99ms, l.Rooms, l.RatePerMember, l.FrameBytes, l.Maxms)
		fmt.Fprintf(tw, "relayed frames\t%.0f/s\t%d sent, %d received in %.1fs, %d send errors, %d connections cut\n",
			l.FramesPerSec, l.Sent, l.Received, l.Seconds, l.SendErrors, l.ConnectionsCut)
		if l.HubCPU > 0 {
			fmt.Fprintf(tw, "hub CPU while relaying\t%.0f%% of one core\t%.2fs over warm-up and measurement\n",
				100*l.HubCPU/(cfg.relayWarmup+cfg.relayDuration).Seconds(), l.HubCPU)
		}
		if l.SetupFailed > 0 {
			fmt.Fprintf(tw, "  room setup failed\t%d\t%s\n", l.SetupFailed, l.FirstSetupErr)
		}
	}
	if m := r.Mem; m != nil {
		fmt.Fprintf(tw, "memory per connection\t%.1f KiB\t%d held (of %d) for %.1fs; hub RSS %.1f → %.1f MiB; hub gauge %.0f\n",
			m.KiBPerConn, m.Held, m.Requested, cfg.settle.Seconds(), m.RSSBefore/(1<<20), m.RSSAfter/(1<<20), m.HubConns)
		fmt.Fprintf(tw, "connections opened\t%.0f/s\t\n", float64(m.Held)/m.OpenSeconds)
		if m.FirstErr != "" {
			fmt.Fprintf(tw, "  first failure\t%s\t\n", m.FirstErr)
		}
	}
	_ = tw.Flush()
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (2-core machine):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%.4g %s\t%s\t%s\n", t.Name, t.Goal, t.Value, t.Unit, mark, t.Reason)
		}
		_ = tw.Flush()
	}
}
