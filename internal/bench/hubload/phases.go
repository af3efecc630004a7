package hubload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/internal/bench/stats"
	"github.com/tryst-chat/tryst/proto"
)

// pairings runs workers that pair until cfg.Pairings are done or
// cfg.PairDuration has passed.
func (b *client) pairings(ctx context.Context) (*PairResult, error) {
	cfg := b.cfg
	// Sealed SDP blobs are a few kilobytes in practice.
	offer, answer := strings.Repeat("o", 2000), strings.Repeat("a", 2000)
	runCtx, cancel := context.WithTimeout(ctx, cfg.PairDuration)
	defer cancel()
	var (
		claimed  atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		failed   int
		firstErr error
		wg       sync.WaitGroup
	)
	cpu0, cpuErr0 := serverCPU(cfg.ServerPID)
	start := time.Now()
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for claimed.Add(1) <= int64(cfg.Pairings) && runCtx.Err() == nil {
				t0 := time.Now()
				err := b.pairOnce(runCtx, offer, answer, false)
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
	cpu1, cpuErr1 := serverCPU(cfg.ServerPID)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := errors.Join(cpuErr0, cpuErr1); err != nil {
		return nil, err
	}
	slices.Sort(lat)
	r := &PairResult{
		Workers:   cfg.Workers,
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
	if cpu := (cpu1 - cpu0).Seconds(); cfg.ServerPID != 0 && cpu > 0 {
		r.HubCPU, r.PerHubCPUSecond = cpu, float64(len(lat))/cpu
	}
	return r, nil
}

// openRooms sets up n rooms, cfg.Concurrency at a time, stopping early at the
// first failure. It returns the rooms opened, the failures and the first error.
func (b *client) openRooms(ctx context.Context, n int) (rooms [][2]*websocket.Conn, failed int, firstErr error) {
	rooms = make([][2]*websocket.Conn, n)
	var (
		next, fails atomic.Int64
		mu          sync.Mutex
		wg          sync.WaitGroup
	)
	for range min(b.cfg.Concurrency, n) {
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

// relay opens cfg.Rooms rooms whose two members send candidate frames at
// cfg.RelayRate, and measures the time from sending to receipt at the other
// member for frames sent during the measured window.
func (b *client) relay(ctx context.Context) (*RelayResult, error) {
	cfg := b.cfg
	rooms, failed, firstErr := b.openRooms(ctx, cfg.Rooms)
	defer func() {
		for _, r := range rooms {
			closeAll(r[0], r[1])
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &RelayResult{Rooms: len(rooms), RatePerMember: cfg.RelayRate, FrameBytes: cfg.RelaySize, SetupFailed: failed,
		HubCPUWindow: cfg.RelayWarmup + cfg.RelayDuration}
	if firstErr != nil {
		res.FirstSetupErr = firstErr.Error()
	}
	if len(rooms) == 0 {
		return res, fmt.Errorf("no room could be set up: %w", firstErr)
	}

	// Frames sent in [from, to) since epoch are measured, on both ends.
	cpu0, cpuErr0 := serverCPU(cfg.ServerPID)
	epoch := time.Now()
	from := cfg.RelayWarmup
	to := from + cfg.RelayDuration
	sendCtx, stopSending := context.WithTimeout(ctx, to)
	defer stopSending()
	var (
		sent, sendErrs, cut atomic.Int64
		mu                  sync.Mutex
		lat                 []time.Duration
		senders, readers    sync.WaitGroup
	)
	period := time.Duration(float64(time.Second) / cfg.RelayRate)
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
					if err := b.send(sendCtx, ws, proto.Frame{Type: proto.TypeCandidate, Data: candidateData(at, cfg.RelaySize)}); err != nil {
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
	cpu1, cpuErr1 := serverCPU(cfg.ServerPID)
	if err := errors.Join(cpuErr0, cpuErr1); err != nil {
		return nil, err
	}
	if cfg.ServerPID != 0 {
		res.HubCPU = (cpu1 - cpu0).Seconds()
	}
	// Give the last measured frames time to arrive, then close to stop the
	// readers.
	drain := time.NewTimer(min(time.Second, cfg.Timeout))
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
	res.Seconds = cfg.RelayDuration.Seconds()
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

// memory holds cfg.Conns idle connections (cfg.Conns/2 rooms, both members
// joined) and reads the hub's resident memory before and after.
func (b *client) memory(ctx context.Context) (*MemResult, error) {
	cfg := b.cfg
	res := &MemResult{Requested: cfg.Conns, Settle: cfg.Settle}
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	res.RSSBefore = before["process_resident_memory_bytes"]
	if res.RSSBefore == 0 {
		return nil, fmt.Errorf("%s has no process_resident_memory_bytes", cfg.Metrics)
	}

	start := time.Now()
	rooms, failed, firstErr := b.openRooms(ctx, cfg.Conns/2)
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
	settle := time.NewTimer(cfg.Settle)
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

// scrape reads the samples of the hub's Prometheus text exposition, keyed by
// name, or by name and labels as written (name{label="value"}).
func (b *client) scrape(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.Metrics, nil)
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
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the samples of a Prometheus text exposition, keyed by
// name, or by name and labels as written (name{label="value"}).
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// A label value may hold spaces: the name ends at the last '}'.
		split := strings.IndexByte(line, ' ')
		if i := strings.LastIndexByte(line, '}'); strings.IndexByte(line, '{') >= 0 && i >= 0 {
			split = i + 1
		}
		if split <= 0 || split >= len(line) {
			continue
		}
		name, val := line[:split], line[split:]
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
