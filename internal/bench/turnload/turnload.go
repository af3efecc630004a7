// Package turnload load-tests a TURN server (`tryst bench turn`): N
// allocations with TURN REST API credentials (Tryst, or coturn with
// use-auth-secret), each relaying to a UDP echo peer on this host for a
// fixed time. Run returns round trips, loss, RTT percentiles, the time the
// allocations took and, given the server's pid, relayed packets per server
// CPU-second; Result.WriteTable prints them.
//
// docs/BENCHMARKS.md compares Tryst with coturn this way.
package turnload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
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

// Config is one run. Start from DefaultConfig. Validate's messages name the
// flags of `tryst bench turn` that set each field.
type Config struct {
	// Server is the TURN server's HOST:PORT, over UDP (--server).
	Server string
	// Secret is the TURN REST API shared secret the credentials are signed
	// with (the first line of --secret-file).
	Secret []byte
	// User is the id part of the REST usernames, suffixed with the
	// allocation number (--user).
	User        string
	Allocations int
	// Duration is the measured relaying time, after Warmup.
	Duration time.Duration
	Warmup   time.Duration
	// Size is the UDP payload per packet, 16..1400 bytes.
	Size int
	// Rate is packets per second per allocation; 0 sends as fast as Window
	// packets in flight per allocation allow.
	Rate   int
	Window int
	// ServerPID, when not zero, is the server's process on this host, whose
	// CPU time over the measurement is reported.
	ServerPID int
	// Concurrency is how many allocations are created at once.
	Concurrency int
}

// DefaultConfig returns the settings `tryst bench turn` starts from.
func DefaultConfig() Config {
	return Config{
		User:        "bench",
		Allocations: 10,
		Duration:    10 * time.Second,
		Warmup:      time.Second,
		Size:        200,
		Rate:        50,
		Window:      16,
		Concurrency: 16,
	}
}

// Validate refuses settings Run could not work with.
func (c Config) Validate() error {
	switch {
	case c.Server == "":
		return errors.New("bench turn: --server is required")
	case len(c.Secret) == 0:
		return errors.New("bench turn: --secret-file is required")
	case c.Allocations < 1 || c.Size < 16 || c.Size > 1400 || c.Rate < 0 || c.Window < 1 || c.Concurrency < 1:
		return errors.New("bench turn: need --allocations>=1, 16<=--size<=1400, --rate>=0, --window>=1, --concurrency>=1")
	case c.Duration <= 0:
		return errors.New("bench turn: --duration must be positive")
	}
	return nil
}

// Result is what one run measured, and the settings its report states.
type Result struct {
	Allocations    int
	AllocTime      time.Duration
	Duration       time.Duration
	Sent, Received int64
	RTTp50, RTTp99 time.Duration
	// ServerCPU is zero unless CPUMeasured.
	ServerCPU        time.Duration
	PacketsPerCPUSec float64

	Server             string
	Size, Rate, Window int
	CPUMeasured        bool // Config.ServerPID was set
}

// allocation is one client socket, its allocation and its counters.
type allocation struct {
	conn     net.PacketConn
	client   *turn.Client
	relay    net.PacketConn
	sent     atomic.Int64 // measured packets sent
	received atomic.Int64 // measured echoes received
	inflight atomic.Int64
	progress chan struct{}
	rtts     []time.Duration // written by the receiver only
}

// Run creates cfg.Allocations allocations, relays through them to a UDP
// echo peer on this host for cfg.Warmup and then the measured cfg.Duration,
// and returns what it measured.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	secret := cfg.Secret
	res.Server, res.Size, res.Rate, res.Window, res.CPUMeasured = cfg.Server, cfg.Size, cfg.Rate, cfg.Window, cfg.ServerPID != 0
	serverAddr, err := net.ResolveUDPAddr("udp", cfg.Server)
	if err != nil {
		return res, fmt.Errorf("bench turn: server: %w", err)
	}
	// The echo peer listens on the address this host uses to reach the server.
	probe, err := net.DialUDP("udp", nil, serverAddr)
	if err != nil {
		return res, fmt.Errorf("bench turn: %w", err)
	}
	local, ok := probe.LocalAddr().(*net.UDPAddr)
	_ = probe.Close()
	if !ok {
		return res, fmt.Errorf("bench turn: no local address towards %s", serverAddr)
	}
	localIP := local.IP
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

	allocs := make([]*allocation, cfg.Allocations)
	defer func() {
		for _, a := range allocs {
			if a != nil {
				a.close()
			}
		}
	}()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled

	// Create the allocations, cfg.Concurrency at a time.
	start := time.Now()
	sem := make(chan struct{}, cfg.Concurrency)
	errs := make(chan error, cfg.Allocations)
	var wg sync.WaitGroup
	for i := range allocs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := newAllocation(cfg, serverAddr, secret, i, lf)
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
	res.Allocations = cfg.Allocations

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
	timer := time.NewTimer(cfg.Warmup)
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	cpu0, cpuErr := serverCPU(cfg.ServerPID)
	measureStart := time.Now()
	measuring.Store(true)
	timer.Reset(cfg.Duration)
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	measuring.Store(false)
	res.Duration = time.Since(measureStart)
	cpu1, cpuErr1 := serverCPU(cfg.ServerPID)
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
	if cfg.ServerPID != 0 {
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

func newAllocation(cfg Config, server *net.UDPAddr, secret []byte, i int, lf logging.LoggerFactory) (*allocation, error) {
	conn, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return nil, fmt.Errorf("bench turn: client socket: %w", err)
	}
	if u, ok := conn.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(1 << 20)
	}
	username, password := turnserver.MintCredential(secret, cfg.User+strconv.Itoa(i), time.Hour, time.Now())
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
	return &allocation{conn: conn, client: client, relay: relay, progress: make(chan struct{}, 1)}, nil
}

func (a *allocation) close() {
	_ = a.relay.Close()
	a.client.Close()
	_ = a.conn.Close()
}

// Packet layout: 8-byte send time (ns since epoch of the run), 1 byte
// "measured" flag, padding.
func (a *allocation) send(ctx context.Context, cfg Config, peer net.Addr, epoch time.Time, measuring *atomic.Bool) {
	buf := make([]byte, cfg.Size)
	var tick <-chan time.Time
	if cfg.Rate > 0 {
		// At least a nanosecond: a rate beyond 10^9/s is as fast as it goes.
		t := time.NewTicker(max(time.Second/time.Duration(cfg.Rate), time.Nanosecond))
		defer t.Stop()
		tick = t.C
	}
	stall := time.NewTimer(time.Hour)
	defer stall.Stop()
	for {
		if cfg.Rate > 0 {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		} else {
			for a.inflight.Load() >= int64(cfg.Window) {
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

func (a *allocation) receive(epoch time.Time, measuring *atomic.Bool) {
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

// serverCPU is the CPU time of the server's process so far; zero without a
// pid.
func serverCPU(pid int) (time.Duration, error) {
	d, err := proc.CPUTime(pid)
	if err != nil {
		return 0, fmt.Errorf("bench turn: server CPU: %w", err)
	}
	return d, nil
}
