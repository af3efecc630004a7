package client

import (
	"time"

	"github.com/tryst-chat/tryst/internal/rtc"
)

// pacer decides how much file data may wait in the bulk channel's send
// buffer: enough to keep the path busy, and no more.
//
// Without RFC 8260 message interleaving (Chromium does not negotiate it),
// pion's SCTP sends whole messages in the order they were written, whatever
// their stream: a ping or chat message on the control channel waits behind
// every byte of file data already buffered on bulk. A fixed 8 MiB buffer
// kept a browser's keepalive RTT at 0.5–0.9 s while a Go client sent to it
// at 9 MB/s (docs/BENCHMARKS.md). So the buffer follows the path: twice the
// bandwidth-delay product (the fastest drain rate seen lately times SCTP's
// smoothed RTT) plus pacerQueueDelay's worth, between pacerFloor and
// rtc.HighWater. On loopback a control message then waits behind at most
// the floor's worth of file data (256 KiB: under 30 ms at a browser's
// 9 MB/s; measured RTT p50 31 ms, was 680 ms); on a long path about one
// round trip more than the path's own.
//
// Why twice: the sender refills when the buffer drains to half the limit,
// so the buffer averages three quarters of it. With a limit of
// rate × (2·rtt + q) that is still 1.5 bandwidth-delay products, so the
// path, not the limit, holds the rate back, and a faster path shows a
// higher rate in the next sample, which raises the limit. With one
// bandwidth-delay product the rate could never grow past where it started.
type pacer struct {
	sent uint64 // bytes handed to the bulk channel

	// The current rate sample: since when, and how much had drained then.
	sampleAt      time.Time
	sampleDrained uint64
	// best holds the highest drain rate (bytes/s) of the current window
	// and of the previous one, which began at windowAt.
	best     [2]float64
	windowAt time.Time

	limit uint64
}

const (
	// pacerQueueDelay is the queue kept on top of the bandwidth-delay
	// product: what a control message waits behind file data.
	pacerQueueDelay = 10 * time.Millisecond
	// pacerFloor is the least file data ever allowed in the buffer: four
	// default chunks, so that a sender always has a few in hand.
	pacerFloor = 256 << 10
	// pacerStart is the limit before the first rate sample.
	pacerStart = 1 << 20
	// pacerSample is the shortest time a rate is measured over: SACKs
	// arrive in bursts, and a shorter sample would see the bursts.
	pacerSample = 25 * time.Millisecond
	// pacerWindow is how long a rate counts as the path's: a path that
	// slowed down (a relay, a busy receiver) lowers the limit within two
	// or three windows.
	pacerWindow = time.Second
)

func newPacer() *pacer { return &pacer{limit: pacerStart} }

// sentBytes counts n bytes handed to the bulk channel.
func (p *pacer) sentBytes(n int) { p.sent += uint64(n) }

// observe takes the channel's buffered amount at now, and returns the
// limit: the most bytes the buffer should hold. rtt gives the path's
// smoothed RTT (0 when unknown); it is asked only when a sample is taken,
// not on every check of the send loop.
func (p *pacer) observe(now time.Time, buffered uint64, rtt func() time.Duration) uint64 {
	drained := p.sent - min(buffered, p.sent)
	if p.sampleAt.IsZero() {
		p.sampleAt, p.sampleDrained, p.windowAt = now, drained, now
		return p.limit
	}
	dt := now.Sub(p.sampleAt)
	if dt < pacerSample {
		return p.limit
	}
	rate := float64(drained-p.sampleDrained) / dt.Seconds()
	p.sampleAt, p.sampleDrained = now, drained
	if now.Sub(p.windowAt) >= pacerWindow {
		p.best[1], p.best[0], p.windowAt = p.best[0], 0, now
	}
	p.best[0] = max(p.best[0], rate)
	want := max(p.best[0], p.best[1]) * (2*rtt() + pacerQueueDelay).Seconds()
	p.limit = uint64(min(max(want, pacerFloor), rtc.HighWater))
	return p.limit
}
