package turnserver

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxSources bounds the per-source limiter table; when full, idle entries are
// swept at once and, failing that, unknown sources share one bucket.
const maxSources = 100_000

// sourceLimiter is a token bucket per source IP (per /64 for IPv6) charged
// for unauthenticated and failed requests.
type sourceLimiter struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	m        map[netip.Addr]*rate.Limiter
	overflow *rate.Limiter
}

func newSourceLimiter(perSec float64, burst int) *sourceLimiter {
	if perSec < 0 {
		return nil
	}
	return &sourceLimiter{
		limit:    rate.Limit(perSec),
		burst:    burst,
		m:        make(map[netip.Addr]*rate.Limiter),
		overflow: rate.NewLimiter(rate.Limit(perSec), burst),
	}
}

func sourceKey(addr net.Addr) netip.Addr {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

func (l *sourceLimiter) get(addr net.Addr, create bool) *rate.Limiter {
	k := sourceKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[k]
	if lim == nil && create {
		if len(l.m) >= maxSources {
			l.sweepLocked(time.Now())
		}
		if len(l.m) >= maxSources {
			return l.overflow
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[k] = lim
	}
	return lim
}

// take consumes one token for addr and reports whether one was available.
func (l *sourceLimiter) take(addr net.Addr) bool {
	if l == nil {
		return true
	}
	return l.get(addr, true).Allow()
}

// charge consumes one token for addr even if that leaves the bucket in debt
// of at most one request, so failures keep counting against the source.
func (l *sourceLimiter) charge(addr net.Addr) {
	if l == nil {
		return
	}
	l.get(addr, true).Allow()
}

// exhausted reports whether addr has no token left, without consuming one.
func (l *sourceLimiter) exhausted(addr net.Addr) bool {
	if l == nil {
		return false
	}
	lim := l.get(addr, false)
	return lim != nil && lim.Tokens() < 1
}

// sweep drops buckets that have refilled completely: they hold no state.
func (l *sourceLimiter) sweep(now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.sweepLocked(now)
	l.mu.Unlock()
}

func (l *sourceLimiter) sweepLocked(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
}
