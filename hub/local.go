package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/tryst-chat/tryst/metrics"
)

// storeCheckTimeout bounds what /readyz and a metrics scrape wait for the
// store.
const storeCheckTimeout = 2 * time.Second

// newNodeID draws a node id: 64 random bits, which no two hubs sharing a
// store, nor two lives of one hub, draw alike in practice.
func newNodeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// local is the Hub as its store's Local: deliveries to this node's
// connections by number.
type local Hub

func (l *local) conn(id uint64) *conn { return l.live.get(id) }

// Deliver implements Local.
func (l *local) Deliver(id uint64, ev Event) bool {
	c := l.conn(id)
	if c == nil {
		return false
	}
	if !c.Deliver(ev) {
		return false
	}
	if ev.PairedAfter > 0 {
		l.m.Pairing.Observe(ev.PairedAfter.Seconds())
	}
	return true
}

// Replaced implements Local.
func (l *local) Replaced(id uint64) {
	if c := l.conn(id); c != nil {
		c.Replaced()
	}
}

// ref is c's name in the store.
func (c *conn) ref() Ref { return Ref{Node: c.h.node, Conn: c.id} }

// attach is c asking the store for a role.
func (c *conn) attach() Attach { return Attach{Ref: c.ref(), Addr: c.ip} }

// storeStats is what the metrics report of the store.
func (h *Hub) storeStats() (metrics.StoreCounts, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCheckTimeout)
	defer cancel()
	st, err := h.store.Stats(ctx)
	if err != nil {
		h.log.Warn("room store stats", "err", err)
		return metrics.StoreCounts{}, false
	}
	return metrics.StoreCounts{Rooms: st.Rooms, MailboxBytes: st.MailboxBytes, Expired: st.Expired, DeliveryFailures: st.DeliveryFailures}, true
}
