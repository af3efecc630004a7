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

// limiterTable holds one token bucket per address. Buckets that have
// refilled completely carry no information and are dropped by sweep, so the
// table only holds addresses that misbehaved recently.
type limiterTable struct {
	limit rate.Limit
	burst int
	max   int // entries; beyond it new addresses share one bucket

	mu       sync.Mutex
	m        map[netip.Addr]*rate.Limiter
	overflow *rate.Limiter
}

func newLimiterTable(limit rate.Limit, burst, max int) *limiterTable {
	return &limiterTable{
		limit:    limit,
		burst:    burst,
		max:      max,
		m:        make(map[netip.Addr]*rate.Limiter),
		overflow: rate.NewLimiter(limit, burst),
	}
}

func (t *limiterTable) get(ip netip.Addr) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.m[ip]
	if !ok {
		if len(t.m) >= t.max {
			// Under an attack from very many addresses they share one bucket:
			// memory stays bounded and the attack is still throttled.
			return t.overflow
		}
		l = rate.NewLimiter(t.limit, t.burst)
		t.m[ip] = l
	}
	return l
}

// allow takes one token for ip.
func (t *limiterTable) allow(ip netip.Addr, now time.Time) bool {
	return t.get(ip).AllowN(now, 1)
}

// ok reports whether ip has a token left, without taking it.
func (t *limiterTable) ok(ip netip.Addr, now time.Time) bool {
	t.mu.Lock()
	l, found := t.m[ip]
	full := len(t.m) >= t.max
	t.mu.Unlock()
	if !found {
		if full {
			return t.overflow.TokensAt(now) >= 1
		}
		return true
	}
	return l.TokensAt(now) >= 1
}

// wait returns how long until ip has a token again (0: it has one now).
func (t *limiterTable) wait(ip netip.Addr, now time.Time) time.Duration {
	t.mu.Lock()
	l, found := t.m[ip]
	if !found && len(t.m) >= t.max {
		l, found = t.overflow, true
	}
	t.mu.Unlock()
	if !found {
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

func (t *limiterTable) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ip, l := range t.m {
		if l.TokensAt(now) >= float64(t.burst) {
			delete(t.m, ip)
		}
	}
}
