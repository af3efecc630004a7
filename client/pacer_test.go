package client

import (
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/proto"
)

// pathModel is a fluid model of a data channel on a path: what is buffered
// drains at the path's capacity, or at one buffer per round trip when the
// buffer is smaller than the bandwidth-delay product (SCTP cannot have more
// in flight than was written). A sender on it behaves as the client's does:
// it writes chunks while the pacer says the buffer is not full, then waits
// until the buffer drains to half the limit.
type pathModel struct {
	capacity float64 // bytes/s
	rtt      time.Duration

	p        *pacer
	now      time.Time
	buffered float64
	waitLow  bool
	low      uint64
	drained  float64 // total
}

func newPathModel(capacity float64, rtt time.Duration) *pathModel {
	return &pathModel{capacity: capacity, rtt: rtt, p: newPacer(), now: time.Unix(1e9, 0), low: pacerStart / 2}
}

// run advances the model by d in 1 ms steps and returns the drain rate
// over that time and the largest buffer seen.
func (m *pathModel) run(d time.Duration) (rate, maxBuffered float64) {
	const step = time.Millisecond
	before := m.drained
	for t := time.Duration(0); t < d; t += step {
		m.now = m.now.Add(step)
		out := min(m.capacity, m.buffered/m.rtt.Seconds()) * step.Seconds()
		out = min(out, m.buffered)
		if m.buffered > float64(m.low) && m.buffered-out <= float64(m.low) {
			m.waitLow = false
		}
		m.buffered -= out
		m.drained += out
		for !m.waitLow {
			limit := m.p.observe(m.now, uint64(m.buffered), func() time.Duration { return m.rtt })
			m.low = limit / 2
			if uint64(m.buffered) > limit {
				m.waitLow = true
				break
			}
			m.buffered += proto.DefaultChunkData
			m.p.sentBytes(proto.DefaultChunkData)
		}
		maxBuffered = max(maxBuffered, m.buffered)
	}
	return (m.drained - before) / d.Seconds(), maxBuffered
}

// The pacer fills a long fast path (50 ms, 20 MB/s: a 1 MB bandwidth-delay
// product) and keeps a short one's queue short.
func TestPacerFillsThePathAndKeepsTheQueueShort(t *testing.T) {
	for _, c := range []struct {
		name     string
		capacity float64
		rtt      time.Duration
	}{
		{"loopback to a browser", 9e6, time.Millisecond},
		{"loopback, Go to Go", 60e6, time.Millisecond},
		{"50 ms path", 20e6, 50 * time.Millisecond},
		{"200 ms path", 10e6, 200 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newPathModel(c.capacity, c.rtt)
			m.run(3 * time.Second) // settle
			rate, maxBuf := m.run(5 * time.Second)
			if rate < 0.95*c.capacity {
				t.Errorf("drains at %.1f MB/s, want ≥ 95%% of %.1f", rate/1e6, c.capacity/1e6)
			}
			// What a control message waits behind: the queue beyond what
			// the path holds in flight.
			queued := maxBuf - c.capacity*c.rtt.Seconds()
			wait := time.Duration(queued / c.capacity * float64(time.Second))
			// At the floor, a sender may put one more chunk on top.
			floorWait := time.Duration(float64(pacerFloor+proto.DefaultChunkData) / c.capacity * float64(time.Second))
			if wait > max(c.rtt+2*pacerQueueDelay, floorWait) {
				t.Errorf("a control message waits up to %v behind file data (buffer up to %.0f KiB)", wait, maxBuf/1024)
			}
			t.Logf("%.1f MB/s, buffer up to %.0f KiB, control waits up to %v", rate/1e6, maxBuf/1024, wait)
		})
	}
}

// A path that slows down (a busy receiver) lowers the limit within three
// windows (the current one, the previous one, and the rest of the sample
// that spans the change), and one that speeds up raises it.
func TestPacerFollowsThePath(t *testing.T) {
	m := newPathModel(60e6, 10*time.Millisecond)
	m.run(3 * time.Second)
	fast := m.p.limit
	m.capacity = 6e6
	m.run(3*pacerWindow + 100*time.Millisecond)
	slow := m.p.limit
	if want := uint64(6e6 * (2*10*time.Millisecond + pacerQueueDelay).Seconds() * 1.5); slow > max(want, pacerFloor) {
		t.Errorf("limit %d after the path slowed down (was %d), want ≤ %d", slow, fast, max(want, pacerFloor))
	}
	m.capacity = 60e6
	rate, _ := m.run(2 * time.Second)
	if rate < 0.9*60e6 {
		t.Errorf("drains at %.1f MB/s after the path sped up again", rate/1e6)
	}
}

// The limit stays between the floor and rtc.HighWater, idle or not, and a
// buffered amount above what was sent (which a channel does not report)
// does not wrap around.
func TestPacerBounds(t *testing.T) {
	p := newPacer()
	now := time.Unix(1e9, 0)
	if got := p.observe(now, 0, rttOf(0)); got != pacerStart {
		t.Fatalf("first limit %d, want %d", got, pacerStart)
	}
	for range 100 { // idle: nothing drains
		now = now.Add(50 * time.Millisecond)
		if got := p.observe(now, 0, rttOf(0)); got < pacerFloor || got > rtc.HighWater {
			t.Fatalf("idle limit %d", got)
		}
	}
	if got := p.observe(now.Add(time.Second), 0, rttOf(0)); got != pacerFloor {
		t.Fatalf("idle limit %d, want the floor %d", got, pacerFloor)
	}
	p.sentBytes(1 << 30)
	now = now.Add(time.Second)
	if got := p.observe(now.Add(50*time.Millisecond), 0, rttOf(10*time.Second)); got != rtc.HighWater {
		t.Fatalf("limit %d on a huge path, want rtc.HighWater", got)
	}
	if got := p.observe(now.Add(100*time.Millisecond), 2<<30, rttOf(time.Millisecond)); got < pacerFloor || got > rtc.HighWater {
		t.Fatalf("limit %d with more buffered than sent", got)
	}
}

// rttOf is a path RTT that is always d.
func rttOf(d time.Duration) func() time.Duration { return func() time.Duration { return d } }
