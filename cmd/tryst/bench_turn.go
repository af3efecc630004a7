package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"

	"github.com/tryst-chat/tryst/internal/bench/proc"
	"github.com/tryst-chat/tryst/internal/bench/stats"
	"github.com/tryst-chat/tryst/turnserver"
)

// benchTURNConfig holds the flags of "tryst bench turn".
type benchTURNConfig struct {
	server      string
	secretFile  string
	user        string
	allocations int
	duration    time.Duration
	warmup      time.Duration
	size        int
	rate        int
	window      int
	serverPID   int
	concurrency int
}

// benchTURNResult is what one run measured.
type benchTURNResult struct {
	Allocations      int
	AllocTime        time.Duration
	Duration         time.Duration
	Sent, Received   int64
	RTTp50, RTTp99   time.Duration
	ServerCPU        time.Duration // zero without --server-pid
	PacketsPerCPUSec float64
}

// runBenchTURN implements "tryst bench turn": N allocations on a TURN server
// using TURN REST API credentials (Tryst or coturn with use-auth-secret), each
// relaying to a local UDP echo peer for a fixed time, and reports round
// trips/s, Mbit/s, loss, RTT p50/p99, allocations/s and, with --server-pid,
// relayed packets per server CPU-second.
func runBenchTURN(ctx context.Context, args []string, std stdio) error {
	stdout, stderr := std.out, std.err
	cfg, err := parseBenchTURNFlags(args, stderr)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(cfg.secretFile)
	if err != nil {
		return fmt.Errorf("bench turn: %w", err)
	}
	secrets, err := turnserver.ParseSecrets(data)
	if err != nil {
		return fmt.Errorf("bench turn: %w", err)
	}
	res, err := benchTURN(ctx, cfg, secrets[0])
	if err != nil {
		return err
	}
	printBenchTURN(stdout, cfg, res)
	return nil
}

func parseBenchTURNFlags(args []string, stderr io.Writer) (benchTURNConfig, error) {
	var cfg benchTURNConfig
	fs := flag.NewFlagSet("tryst bench turn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.server, "server", "", "TURN server `HOST:PORT` (UDP)")
	fs.StringVar(&cfg.secretFile, "secret-file", "", "file with the TURN REST API shared secret (first line signs)")
	fs.StringVar(&cfg.user, "user", "bench", "id part of the REST usernames (suffixed with the allocation number)")
	fs.IntVar(&cfg.allocations, "allocations", 10, "number of allocations")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured relaying time")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured relaying before the measurement")
	fs.IntVar(&cfg.size, "size", 200, "UDP payload `BYTES` per packet (at least 16)")
	fs.IntVar(&cfg.rate, "rate", 50, "packets per second per allocation; 0 = as fast as the window allows")
	fs.IntVar(&cfg.window, "window", 16, "packets in flight per allocation when --rate=0")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "server `PID` (same host) whose CPU time from /proc/PID/stat is measured")
	fs.IntVar(&cfg.concurrency, "concurrency", 16, "allocations created in parallel")
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("bench turn: %w", err)
	}
	switch {
	case cfg.server == "":
		return cfg, errors.New("bench turn: --server is required")
	case cfg.secretFile == "":
		return cfg, errors.New("bench turn: --secret-file is required")
	case cfg.allocations < 1 || cfg.size < 16 || cfg.size > 1400 || cfg.rate < 0 || cfg.window < 1 || cfg.concurrency < 1:
		return cfg, errors.New("bench turn: need --allocations>=1, 16<=--size<=1400, --rate>=0, --window>=1, --concurrency>=1")
	case cfg.duration <= 0:
		return cfg, errors.New("bench turn: --duration must be positive")
	}
	return cfg, nil
}

// benchAlloc is one client socket, its allocation and its counters.
type benchAlloc struct {
	conn     net.PacketConn
	client   *turn.Client
	relay    net.PacketConn
	sent     atomic.Int64 // measured packets sent
	received atomic.Int64 // measured echoes received
	inflight atomic.Int64
	progress chan struct{}
	rtts     []time.Duration // written by the receiver only
}

func benchTURN(ctx context.Context, cfg benchTURNConfig, secret []byte) (res benchTURNResult, err error) {
	serverAddr, err := net.ResolveUDPAddr("udp", cfg.server)
	if err != nil {
		return res, fmt.Errorf("bench turn: server: %w", err)
	}
	// The echo peer listens on the address this host uses to reach the server.
	probe, err := net.DialUDP("udp", nil, serverAddr)
	if err != nil {
		return res, fmt.Errorf("bench turn: %w", err)
	}
	localIP := probe.LocalAddr().(*net.UDPAddr).IP
	_ = probe.Close()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: localIP})
	if err != nil {
		return res, fmt.Errorf("bench turn: echo peer: %w", err)
	}
	_ = peer.SetReadBuffer(4 << 20)
	_ = peer.SetWriteBuffer(4 << 20)
	var peerWG sync.WaitGroup
	peerWG.Add(1)
	go func() {
		defer peerWG.Done()
		echo(peer)
	}()
	defer func() {
		_ = peer.Close()
		peerWG.Wait()
	}()

	allocs := make([]*benchAlloc, cfg.allocations)
	defer func() {
		for _, a := range allocs {
			if a != nil {
				a.close()
			}
		}
	}()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled

	// Create the allocations, cfg.concurrency at a time.
	start := time.Now()
	sem := make(chan struct{}, cfg.concurrency)
	errs := make(chan error, cfg.allocations)
	var wg sync.WaitGroup
	for i := range allocs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := newBenchAlloc(cfg, serverAddr, secret, i, lf)
			if err != nil {
				errs <- err
				return
			}
			allocs[i] = a
		}()
	}
	wg.Wait()
	res.AllocTime = time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	res.Allocations = cfg.allocations

	// Relay: warm-up (permissions, channel bindings), then the measurement.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var measuring atomic.Bool
	epoch := time.Now()
	var loops sync.WaitGroup
	for _, a := range allocs {
		loops.Add(2)
		go func() { defer loops.Done(); a.receive(epoch, &measuring) }()
		go func() { defer loops.Done(); a.send(runCtx, cfg, peer.LocalAddr(), epoch, &measuring) }()
	}
	timer := time.NewTimer(cfg.warmup)
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	cpu0, cpuErr := processCPU(cfg.serverPID)
	measureStart := time.Now()
	measuring.Store(true)
	timer.Reset(cfg.duration)
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	measuring.Store(false)
	res.Duration = time.Since(measureStart)
	cpu1, cpuErr1 := processCPU(cfg.serverPID)
	stop()
	// Let echoes of the last measured packets arrive, then stop receivers.
	drain := time.NewTimer(time.Second)
	select {
	case <-ctx.Done():
	case <-drain.C:
	}
	for _, a := range allocs {
		_ = a.relay.SetReadDeadline(time.Now())
	}
	loops.Wait()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench turn: %w", err)
	}

	var rtts []time.Duration
	for _, a := range allocs {
		res.Sent += a.sent.Load()
		res.Received += a.received.Load()
		rtts = append(rtts, a.rtts...)
	}
	slices.Sort(rtts)
	res.RTTp50, res.RTTp99 = stats.Percentile(rtts, 0.50), stats.Percentile(rtts, 0.99)
	if cfg.serverPID != 0 {
		if err := errors.Join(cpuErr, cpuErr1); err != nil {
			return res, err
		}
		res.ServerCPU = cpu1 - cpu0
		if res.ServerCPU > 0 {
			// Each round trip is two relayed packets: client->peer and peer->client.
			res.PacketsPerCPUSec = float64(2*res.Received) / res.ServerCPU.Seconds()
		}
	}
	return res, nil
}

func newBenchAlloc(cfg benchTURNConfig, server *net.UDPAddr, secret []byte, i int, lf logging.LoggerFactory) (*benchAlloc, error) {
	conn, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return nil, fmt.Errorf("bench turn: client socket: %w", err)
	}
	if u, ok := conn.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(1 << 20)
	}
	username, password := turnserver.MintCredential(secret, cfg.user+strconv.Itoa(i), time.Hour, time.Now())
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Conn:           conn,
		Username:       username,
		Password:       password,
		LoggerFactory:  lf,
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("bench turn: client: %w", err)
	}
	if err := client.Listen(); err != nil {
		client.Close()
		_ = conn.Close()
		return nil, fmt.Errorf("bench turn: client: %w", err)
	}
	relay, err := client.Allocate()
	if err != nil {
		client.Close()
		_ = conn.Close()
		return nil, fmt.Errorf("bench turn: allocation %d: %w", i, err)
	}
	return &benchAlloc{conn: conn, client: client, relay: relay, progress: make(chan struct{}, 1)}, nil
}

func (a *benchAlloc) close() {
	_ = a.relay.Close()
	a.client.Close()
	_ = a.conn.Close()
}

// Packet layout: 8-byte send time (ns since epoch of the run), 1 byte
// "measured" flag, padding.
func (a *benchAlloc) send(ctx context.Context, cfg benchTURNConfig, peer net.Addr, epoch time.Time, measuring *atomic.Bool) {
	buf := make([]byte, cfg.size)
	var tick <-chan time.Time
	if cfg.rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(cfg.rate))
		defer t.Stop()
		tick = t.C
	}
	stall := time.NewTimer(time.Hour)
	defer stall.Stop()
	for {
		if cfg.rate > 0 {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		} else {
			for a.inflight.Load() >= int64(cfg.window) {
				stall.Reset(200 * time.Millisecond)
				select {
				case <-ctx.Done():
					return
				case <-a.progress:
				case <-stall.C:
					a.inflight.Store(0) // echoes lost: reopen the window
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
		m := measuring.Load()
		binary.BigEndian.PutUint64(buf, uint64(time.Since(epoch)))
		buf[8] = 0
		if m {
			buf[8] = 1
		}
		a.inflight.Add(1)
		if _, err := a.relay.WriteTo(buf, peer); err != nil {
			a.inflight.Add(-1)
			continue
		}
		if m {
			a.sent.Add(1)
		}
	}
}

func (a *benchAlloc) receive(epoch time.Time, measuring *atomic.Bool) {
	buf := make([]byte, 2048)
	for {
		n, _, err := a.relay.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 9 {
			continue
		}
		a.inflight.Add(-1)
		select {
		case a.progress <- struct{}{}:
		default:
		}
		if buf[8] == 1 {
			a.received.Add(1)
			sentAt := time.Duration(binary.BigEndian.Uint64(buf))
			a.rtts = append(a.rtts, time.Since(epoch)-sentAt)
		}
	}
}

func echo(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// processCPU is proc.CPUTime with the benchmark's error prefix.
func processCPU(pid int) (time.Duration, error) {
	d, err := proc.CPUTime(pid)
	if err != nil {
		return 0, fmt.Errorf("bench turn: server CPU: %w", err)
	}
	return d, nil
}

func printBenchTURN(w io.Writer, cfg benchTURNConfig, r benchTURNResult) {
	secs := r.Duration.Seconds()
	loss := 0.0
	if r.Sent > 0 {
		loss = 100 * float64(r.Sent-r.Received) / float64(r.Sent)
	}
	rate := strconv.Itoa(cfg.rate)
	if cfg.rate == 0 {
		rate = "max (window " + strconv.Itoa(cfg.window) + ")"
	}
	fmt.Fprintf(w, "server %s, %d allocations, %d-byte payloads, rate %s pps/allocation, %.1fs\n",
		cfg.server, r.Allocations, cfg.size, rate, secs)
	fmt.Fprintf(w, "allocations/s:     %.1f (%d in %v)\n", float64(r.Allocations)/r.AllocTime.Seconds(), r.Allocations, r.AllocTime.Round(time.Millisecond))
	fmt.Fprintf(w, "round trips/s:     %.0f\n", float64(r.Received)/secs)
	// Relayed payload through the server, both legs of every round trip.
	fmt.Fprintf(w, "relayed Mbit/s:    %.2f\n", float64(2*r.Received*int64(cfg.size)*8)/secs/1e6)
	fmt.Fprintf(w, "loss:              %.3f%% (%d sent, %d echoed)\n", loss, r.Sent, r.Received)
	fmt.Fprintf(w, "RTT p50/p99:       %v / %v\n", r.RTTp50.Round(time.Microsecond), r.RTTp99.Round(time.Microsecond))
	if cfg.serverPID != 0 {
		fmt.Fprintf(w, "server CPU:        %.2fs (%.0f%% of one core)\n", r.ServerCPU.Seconds(), 100*r.ServerCPU.Seconds()/secs)
		fmt.Fprintf(w, "packets/CPU-s:     %.0f (relayed packets per server CPU-second)\n", r.PacketsPerCPUSec)
	}
}
