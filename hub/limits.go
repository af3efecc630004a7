package hub

import (
	"hash/maphash"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipKey is the unit the per-address limits count in: the address itself for
// IPv4, its /64 for IPv6, since one host usually holds a whole /64.
func ipKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// socketAddr returns the client's address as seen on the socket. Headers
// such as X-Forwarded-For are never consulted: any client can set them, and
// a per-address limit keyed on them would be a limit on nothing.
func socketAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// connCounter caps simultaneous connections per address. Its counts are
// spread over shards by address: every connection takes and gives back a
// count, and one mutex for all of them was where upgrades queued on two
// cores.
type connCounter struct {
	max    int
	seed   maphash.Seed
	shards [counterShards]counterShard
}

const counterShards = 16

type counterShard struct {
	mu sync.Mutex
	n  map[netip.Addr]int
	_  [48]byte // keeps two shards' mutexes off one cache line
}

func newConnCounter(max int) *connCounter {
	c := &connCounter{max: max, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].n = make(map[netip.Addr]int)
	}
	return c
}

func (c *connCounter) shard(ip netip.Addr) *counterShard {
	return &c.shards[maphash.Comparable(c.seed, ip)%counterShards]
}

func (c *connCounter) acquire(ip netip.Addr) bool {
	sh := c.shard(ip)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.max > 0 && sh.n[ip] >= c.max {
		return false
	}
	sh.n[ip]++
	return true
}

func (c *connCounter) release(ip netip.Addr) {
	sh := c.shard(ip)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.n[ip] <= 1 {
		delete(sh.n, ip)
		return
	}
	sh.n[ip]--
}

// Failed-confirmation reports (proto.TypeReport) are counted per room, in
// Hub.guesses: each is a password guess that failed, or a person's typo. A
// burst of 5 lets two people who mistype a few times carry on; one a minute
// after that holds somebody who keeps guessing in one room to 60 guesses an
// hour, on top of the failed attempts each guess costs its address (see
// conn.report). While a room's bucket is empty, join into it is refused
// (throttled). A bucket is dropped once it has refilled, at most 5 minutes
// after the room's last report, so the table holds only rooms with recent
// failures; maxGuessRooms bounds it beyond that.
const (
	roomGuessBurst  = 5
	roomGuessRefill = time.Minute
	maxGuessRooms   = 100_000
)

// limiterTable holds one token bucket per key (an address, a room code).
// Buckets that have refilled completely carry no information and are
// dropped by sweep, so the table only holds keys that misbehaved recently.
// Beyond max keys, new keys share one overflow bucket, or, in a table made
// with failOpen, are not limited at all.
type limiterTable[K comparable] struct {
	limit rate.Limit
	burst int
	max   int // entries; beyond it see overflow

	mu sync.Mutex
	m  map[K]*rate.Limiter
	// overflow is the bucket that new keys share once the table is full;
	// nil in a fail-open table.
	overflow *rate.Limiter
}

// newLimiterTable returns a table whose keys beyond max share one bucket:
// under an attack from very many addresses memory stays bounded and the
// attack is still throttled.
func newLimiterTable[K comparable](limit rate.Limit, burst, max int) *limiterTable[K] {
	t := newFailOpenTable[K](limit, burst, max)
	t.overflow = rate.NewLimiter(limit, burst)
	return t
}

// newFailOpenTable returns a table that does not limit keys beyond max.
// For room codes: a shared bucket would let the reports of a few rooms
// refuse joins into every other room.
func newFailOpenTable[K comparable](limit rate.Limit, burst, max int) *limiterTable[K] {
	return &limiterTable[K]{limit: limit, burst: burst, max: max, m: make(map[K]*rate.Limiter)}
}

// get returns k's bucket, nil when k is not limited (a full fail-open
// table).
func (t *limiterTable[K]) get(k K) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.m[k]
	if !ok {
		if len(t.m) >= t.max {
			return t.overflow
		}
		l = rate.NewLimiter(t.limit, t.burst)
		t.m[k] = l
	}
	return l
}

// allow takes one token for k.
func (t *limiterTable[K]) allow(k K, now time.Time) bool {
	l := t.get(k)
	return l == nil || l.AllowN(now, 1)
}

// lookup returns k's bucket without making one: nil when k has none, or
// shares the overflow's.
func (t *limiterTable[K]) lookup(k K) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, found := t.m[k]; found {
		return l
	}
	if len(t.m) >= t.max {
		return t.overflow
	}
	return nil
}

// ok reports whether k has a token left, without taking it.
func (t *limiterTable[K]) ok(k K, now time.Time) bool {
	l := t.lookup(k)
	return l == nil || l.TokensAt(now) >= 1
}

// wait returns how long until k has a token again (0: it has one now).
func (t *limiterTable[K]) wait(k K, now time.Time) time.Duration {
	l := t.lookup(k)
	if l == nil {
		return 0
	}
	missing := 1 - l.TokensAt(now)
	if missing <= 0 || t.limit == rate.Inf {
		return 0
	}
	if t.limit <= 0 {
		return time.Duration(1<<63 - 1) // never refills
	}
	return time.Duration(missing / float64(t.limit) * float64(time.Second))
}

func (t *limiterTable[K]) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, l := range t.m {
		if l.TokensAt(now) >= float64(t.burst) {
			delete(t.m, k)
		}
	}
}
