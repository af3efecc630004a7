package hubload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/internal/bench/stats"
	"github.com/tryst-chat/tryst/proto"
)

// The hub's gauges the abuse phase reads before and after.
var abuseSeries = []string{"tryst_hub_rooms", "tryst_hub_mailbox_bytes", "process_resident_memory_bytes"}

// abuseSync is a message type no hub knows: the hub answers it unknown_type
// once it has handled everything sent before it, so its answer tells that
// the offer was stored (or, before it, why not).
const abuseSync = "sync"

// abuse runs the abuse loop of issue 12 from one address while an honest
// client at another pairs now and then, and reads the hub's rooms, mailbox
// bytes and resident memory before and after.
func (b *client) abuse(ctx context.Context) (*AbuseResult, error) {
	cfg := b.cfg
	res := &AbuseResult{
		Source:         sourceName(cfg.AbuseSource),
		OfferBytes:     cfg.AbuseOfferBytes,
		Refused:        map[string]int{},
		HonestInterval: cfg.HonestInterval,
	}
	var notes []string
	honestFrom := cfg.HonestSource
	if honestFrom.IsValid() {
		if err := canBind(honestFrom); err != nil {
			notes = append(notes, fmt.Sprintf("%s cannot be bound (%v): the honest client dials from the system-chosen address", honestFrom, err))
			honestFrom = netip.Addr{}
		}
	}
	if honestFrom == cfg.AbuseSource {
		notes = append(notes, "the honest client shares the abuser's address, so the per-address limits apply to both")
	}
	res.HonestSource, res.HonestNote = sourceName(honestFrom), strings.Join(notes, "; ")
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	res.Before = pick(before, abuseSeries)
	if _, ok := res.Before["process_resident_memory_bytes"]; !ok {
		return nil, fmt.Errorf("%s has no process_resident_memory_bytes", cfg.Metrics)
	}

	abuser := b.from(cfg.AbuseSource)
	defer abuser.close()
	honest := b.from(honestFrom)
	defer honest.close()

	runCtx, cancel := context.WithTimeout(ctx, cfg.AbuseDuration)
	defer cancel()
	var wg sync.WaitGroup
	var hr honestTally
	wg.Add(1)
	go func() {
		defer wg.Done()
		hr = honest.honestPairings(runCtx)
	}()
	offer := strings.Repeat("o", cfg.AbuseOfferBytes)
	start := time.Now()
	for runCtx.Err() == nil {
		abuser.abuseOnce(runCtx, offer, res)
	}
	res.Seconds = time.Since(start).Seconds()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Honest = hr.result()

	after, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	res.After = pick(after, abuseSeries)
	res.HubRejections = rejections(before, after)
	if res.Attempts > 0 {
		res.AttemptsPerSec = float64(res.Attempts) / res.Seconds
	}
	return res, nil
}

// from returns a client like b that dials from src alone (the system's
// choice when src is the zero Addr).
func (b *client) from(src netip.Addr) *client {
	cfg := b.cfg
	cfg.Sources = nil
	if src.IsValid() {
		cfg.Sources = []netip.Addr{src}
	}
	return newClient(cfg)
}

func sourceName(a netip.Addr) string {
	if !a.IsValid() {
		return "system-chosen"
	}
	return a.String()
}

// canBind reports whether this host can dial from a.
func canBind(a netip.Addr) error {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return err
	}
	return ln.Close()
}

func pick(m map[string]float64, names []string) map[string]float64 {
	out := make(map[string]float64)
	for _, n := range names {
		if v, ok := m[n]; ok {
			out[n] = v
		}
	}
	return out
}

// rejections are the increases of tryst_hub_rejections_total by reason.
func rejections(before, after map[string]float64) map[string]int {
	const prefix = `tryst_hub_rejections_total{reason="`
	out := map[string]int{}
	for k, v := range after {
		reason, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if n := int(v - before[k]); n > 0 {
			out[strings.TrimSuffix(reason, `"}`)] = n
		}
	}
	return out
}

// abuseOnce is one turn of the loop: open a WebSocket, create, send the
// offer, wait until the hub has handled it, and drop the connection
// without leave (a reset: the bench dials with linger 0). Only an aborted
// run (ctx done) leaves no trace in r.
func (b *client) abuseOnce(ctx context.Context, offer string, r *AbuseResult) {
	fail := func(err error) {
		if ctx.Err() != nil {
			return // cut off by the end of the phase
		}
		r.Errors++
		if r.FirstErr == "" {
			r.FirstErr = err.Error()
		}
	}
	r.Attempts++
	ws, code, err := b.dialRefusal(ctx)
	if code != "" {
		if r.DialRefused == nil {
			r.DialRefused = map[string]int{}
		}
		r.DialRefused[code]++
		return
	}
	if err != nil {
		fail(err)
		return
	}
	defer ws.CloseNow()
	if err := b.send(ctx, ws, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion}); err != nil {
		fail(err)
		return
	}
	f, err := b.await(ctx, ws, proto.TypeCreated)
	if f.Type == proto.TypeError {
		r.Refused[f.Code]++
		return
	}
	if err != nil {
		fail(err)
		return
	}
	r.Created++
	if err := b.send(ctx, ws, proto.Frame{Type: proto.TypeOffer, Data: offer}); err != nil {
		fail(err)
		return
	}
	if err := b.send(ctx, ws, proto.Frame{Type: abuseSync}); err != nil {
		fail(err)
		return
	}
	// The first error frame is the offer's refusal, or else the answer to
	// the sync.
	f, err = b.await(ctx, ws, "")
	switch {
	case f.Type == proto.TypeError && f.Code == proto.CodeUnknownType:
		r.OffersStored++
	case f.Type == proto.TypeError:
		if r.OffersRefused == nil {
			r.OffersRefused = map[string]int{}
		}
		r.OffersRefused[f.Code]++
	case err != nil:
		fail(err)
	}
}

// dialRefusal opens one WebSocket. When the hub refuses the upgrade, code
// names the refusal: the code of its JSON body (ip_conn_limit, draining),
// or http_STATUS.
func (b *client) dialRefusal(ctx context.Context) (ws *websocket.Conn, code string, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, b.cfg.Hub, b.opts)
	if err == nil {
		ws.SetReadLimit(1 << 20)
		return ws, "", nil
	}
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return nil, "", err
	}
	var body struct {
		Code string `json:"code"`
	}
	if resp.Body != nil {
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &body)
	}
	if body.Code != "" {
		return nil, body.Code, err
	}
	return nil, "http_" + strconv.Itoa(resp.StatusCode), err
}

// honestTally is what the honest client saw.
type honestTally struct {
	lat      []time.Duration
	failed   map[string]int
	firstErr error
}

// honestPairings pairs every cfg.HonestInterval, starting at once, until ctx
// is done: a person opening a room now and then, from an address of their
// own, and leaving it when done.
func (b *client) honestPairings(ctx context.Context) honestTally {
	var t honestTally
	// Sealed SDP blobs are a few kilobytes in practice.
	offer, answer := strings.Repeat("o", 2000), strings.Repeat("a", 2000)
	tick := time.NewTicker(b.cfg.HonestInterval)
	defer tick.Stop()
	for {
		t0 := time.Now()
		err := b.pairOnce(ctx, offer, answer, true)
		switch {
		case err == nil:
			t.lat = append(t.lat, time.Since(t0))
		case ctx.Err() != nil:
			return t // cut off by the end of the phase: not a failure
		default:
			if t.failed == nil {
				t.failed = map[string]int{}
			}
			code := "error"
			if pe := (*proto.Error)(nil); errors.As(err, &pe) {
				code = pe.Code
			}
			t.failed[code]++
			if t.firstErr == nil {
				t.firstErr = err
			}
		}
		select {
		case <-ctx.Done():
			return t
		case <-tick.C:
		}
	}
}

func (t honestTally) result() HonestResult {
	slices.Sort(t.lat)
	r := HonestResult{Completed: len(t.lat), FailedBy: t.failed}
	for _, n := range t.failed {
		r.Failed += n
	}
	if t.firstErr != nil {
		r.FirstErr = t.firstErr.Error()
	}
	if len(t.lat) > 0 {
		r.P50ms = stats.Ms(stats.Percentile(t.lat, 0.5))
		r.Maxms = stats.Ms(t.lat[len(t.lat)-1])
	}
	return r
}
