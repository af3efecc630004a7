package turnserver

import (
	"net"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// Source-bound nonces.
//
// pion/turn v4 mints one nonce per minute for everybody and accepts it for an
// hour from any address. A client that fetched one nonce could therefore sign
// requests from thousands of new source ports and addresses without ever
// sending an unauthenticated request, which is what the per-source rate limit
// charges: one anonymous client took a thousand relay ports in 1.5 s that way.
//
// The relay cannot change pion's nonces, but it sees every one pion hands out
// (in 401 and 438 answers, see outgoing) and to whom. The nonce book records
// the nonce issued to each source transport address, and the pre-filter
// accepts a signed request only with a nonce issued to that very address
// within nonceTTL (RFC 8489 section 9.2: a nonce may be bound to the client's
// address and expire). Any other nonce makes the request unauthenticated: pion
// answers it with a fresh nonce, which outgoing turns into 438 Stale Nonce
// (RFC 8489 section 9.2.4), and that exchange costs the source a token.
type nonceBook struct {
	ttl time.Duration

	mu     sync.Mutex
	issued map[string]issuedNonce                     // srcKey -> the nonces last issued to it
	stale  map[[stun.TransactionIDSize]byte]time.Time // requests whose 401 is to become 438
}

// issuedNonce keeps the last two nonces issued to a source, so that a request
// retransmitted across a reissue still passes.
type issuedNonce struct {
	cur, prev string
	at        time.Time // when cur was issued
	prevAt    time.Time
}

// nonceTTL is how long a nonce stays valid for its source (coturn's
// stale-nonce default is the same 10 minutes).
const nonceTTL = 10 * time.Minute

// maxNonceSources bounds the book: each entry costs its source an
// unauthenticated, rate-limited request, and when full, an arbitrary entry
// makes room (its source gets a 438 and a new nonce on its next request).
const maxNonceSources = 200_000

func newNonceBook(ttl time.Duration) *nonceBook {
	return &nonceBook{ttl: ttl, issued: make(map[string]issuedNonce),
		stale: make(map[[stun.TransactionIDSize]byte]time.Time)}
}

// valid reports whether nonce was issued to source k and has not expired.
func (n *nonceBook) valid(nonce, k string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.issued[k]
	if !ok {
		return false
	}
	switch nonce {
	case e.cur:
		return now.Sub(e.at) < n.ttl
	case e.prev:
		return now.Sub(e.prevAt) < n.ttl
	}
	return false
}

// issue records that nonce was sent to source k.
func (n *nonceBook) issue(nonce, k string, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.issued[k]
	if !ok && len(n.issued) >= maxNonceSources {
		for victim := range n.issued {
			delete(n.issued, victim)
			break
		}
	}
	if e.cur != nonce {
		e.prev, e.prevAt = e.cur, e.at
	}
	e.cur, e.at = nonce, now
	n.issued[k] = e
}

// markStale asks for pion's 401 answer to transaction tid to go out as 438.
func (n *nonceBook) markStale(tid [stun.TransactionIDSize]byte, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.stale) < maxNonceSources {
		n.stale[tid] = now
	}
}

// takeStale reports whether tid was marked stale, and forgets it.
func (n *nonceBook) takeStale(tid [stun.TransactionIDSize]byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.stale[tid]
	delete(n.stale, tid)
	return ok
}

func (n *nonceBook) sweep(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, e := range n.issued {
		if now.Sub(e.at) >= n.ttl {
			delete(n.issued, k)
		}
	}
	for tid, at := range n.stale {
		if now.Sub(at) > stashTTL {
			delete(n.stale, tid)
		}
	}
}

// outgoing looks at a message the server sends to a client: it records the
// nonce of a 401 or 438 answer as issued to that client, and turns the 401
// answer to a request with a stale nonce into 438. It returns the message to
// send, b itself when nothing changes.
//
// It also records the RESERVATION-TOKEN of an Allocate success (see
// tokenBook).
//
// It runs on every write to a client, relayed data included, so everything
// past the header check is for the rare error response only.
func (s *Server) outgoing(b []byte, to net.Addr) []byte {
	method, class, ok := stunHeader(b)
	if ok && class == classResponse && method == methodAllocate {
		if token, ok := stunAttr(b, attrReservationToken); ok {
			s.tokens.add(string(token), s.now())
		}
		return b
	}
	if !ok || class != classErrorResponse {
		return b
	}
	nonce, ok := stunAttr(b, attrNonce)
	if !ok {
		return b
	}
	s.nonces.issue(string(nonce), srcKey(to), s.now())
	var tid [stun.TransactionIDSize]byte
	copy(tid[:], b[8:stunHeaderLen])
	if !s.nonces.takeStale(tid) {
		return b
	}
	code, ok := stunAttr(b, attrErrorCode)
	if !ok || len(code) < 4 || int(code[2])*100+int(code[3]) != 401 {
		return b
	}
	realm, _ := stunAttr(b, attrRealm)
	m, err := stun.Build(&stun.Message{TransactionID: tid},
		stun.MessageType{Method: stun.Method(methodOf(b)), Class: stun.ClassErrorResponse},
		stun.CodeStaleNonce, stun.NewNonce(string(nonce)), stun.NewRealm(string(realm)))
	if err != nil {
		return b
	}
	return m.Raw
}

func methodOf(b []byte) uint16 {
	m, _, _ := stunHeader(b)
	return m
}
