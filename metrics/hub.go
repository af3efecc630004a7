package metrics

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Hub message types and rejection reasons are fixed sets, pre-initialised so
// every series exists (at zero) from the first scrape. Callers must use these
// values; anything else is counted under "unknown". They are unexported
// (HubRejectReasons hands out a copy) so that no caller can change a set
// after NewHub has created its series.
var (
	hubMessageTypes  = []string{"create", "join", "resume", "offer", "answer", "candidate", "leave", "report", "unknown"}
	hubRejectReasons = []string{"too_big", "rate_limited", "ip_conn_limit", "brute_force", "origin", "slow_consumer", "malformed", "unknown_type", "binary", "bad_request", "room_full", "no_such_room", "unauthorized", RejectCredentials, "draining",
		RejectRoomRate, "idle_rooms", "rooms_total", "mailbox_bytes", "unsupported_version", RejectBadToken, RejectExpiredToken, RejectRoomGuesses}
	pairingBucketsSec = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// HubRejectReasons returns the reasons tryst_hub_rejections_total counts.
func HubRejectReasons() []string { return slices.Clone(hubRejectReasons) }

// RejectCredentials counts requests refused because the client's address
// had used up its budget of TURN credentials: a create refused, a GET
// /v1/ice answered 429, or a join or resume answered with STUN only. It
// replaced "ice_rate_limited" when the budget came to cover all four.
const RejectCredentials = "credentials"

// RejectRoomRate counts creates refused by the per-address rate of room
// creation. idle_rooms (an address's rooms with nobody connected),
// rooms_total and mailbox_bytes (the node's budgets) are the reasons of
// the room store's refusals (hub.LimitError).
const RejectRoomRate = "room_rate"

// RejectBadToken counts resumes refused because the token is malformed or
// signed by no hub key (a guess, a token from before a key was removed);
// RejectExpiredToken, resumes of a room the hub does not hold (it
// restarted) with a token older than the hub allows for recreating it.
// Both are answered no_such_room, like an unknown room.
const (
	RejectBadToken     = "bad_token"
	RejectExpiredToken = "expired_token"
)

// RejectRoomGuesses counts joins refused (throttled) because the room's
// members reported too many failed key confirmations: somebody guessing the
// password. brute_force is the per-address counterpart (wrong codes and
// tokens, and the failed confirmations charged to an address).
const RejectRoomGuesses = "room_guesses"

// Hub holds the rendezvous hub's series.
type Hub struct {
	Connections      prometheus.Gauge
	ConnectionsTotal prometheus.Counter
	// Rooms, MailboxBytes and RoomsExpired read the room store at each
	// scrape (WatchStore).
	Rooms          prometheus.GaugeFunc
	RoomsTotal     prometheus.Counter
	RoomsExpired   prometheus.CounterFunc
	RoomsRecreated prometheus.Counter
	MailboxBytes   prometheus.GaugeFunc
	Messages       *prometheus.CounterVec
	Rejections     *prometheus.CounterVec
	Pairing        prometheus.Histogram
	// FailedConfirmations counts the failed-confirmation reports the hub
	// accepted from room members.
	FailedConfirmations prometheus.Counter
	// StoreUp is 1 while the room store answers (its last scrape-time
	// query succeeded), StoreErrors counts the hub's store operations that
	// failed (Redis unreachable: the client was told to try again), and
	// StoreDeliveryFailures what the store could not hand to another
	// node's connection or collect for this node's.
	StoreUp               prometheus.GaugeFunc
	StoreErrors           prometheus.Counter
	StoreDeliveryFailures prometheus.CounterFunc

	store storeWatch
}

// StoreCounts is what the hub's room store reports (hub.StoreStats).
type StoreCounts struct {
	Rooms            int
	MailboxBytes     int
	Expired          uint64 // rooms this node expired, since start
	DeliveryFailures uint64 // since start
}

// WatchStore makes tryst_hub_rooms, tryst_hub_mailbox_bytes and
// tryst_hub_rooms_expired_total report what f says at each scrape; f
// reports false when the store could not answer, and the last answer
// stands. With a store shared by several nodes, every node reports the
// whole store's rooms and mailbox bytes (take max, not sum, across nodes)
// and the rooms it expired itself (sum).
func (m *Hub) WatchStore(f func() (StoreCounts, bool)) {
	m.store.mu.Lock()
	defer m.store.mu.Unlock()
	m.store.f = f
}

// storeWatch asks the store for its counts and keeps the last answer.
// Five series read it, one after another in a scrape (a GaugeFunc is
// evaluated as its sample is written). A store that has just failed is not
// asked again for storeFailHold: with Redis down each query waits out its
// timeout (2 s), and five of them made a scrape take 8–10 s, past
// Prometheus's default 10 s scrape timeout, so tryst_hub_store_up = 0 was
// lost with the scrape. An answering store is asked each time (a round trip
// of well under a millisecond), so every sample is fresh.
type storeWatch struct {
	mu       sync.Mutex
	f        func() (StoreCounts, bool)
	last     StoreCounts
	up       bool
	failedAt time.Time
}

// storeFailHold is how long a failed store query stands before the store
// is asked again: longer than a scrape, shorter than a scrape interval.
const storeFailHold = 5 * time.Second

// get returns the store's counts and whether it answered.
func (w *storeWatch) get() (StoreCounts, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.last, true
	}
	if !w.up && time.Since(w.failedAt) < storeFailHold {
		return w.last, false
	}
	c, ok := w.f()
	if ok {
		w.last = c
	} else {
		w.failedAt = time.Now()
	}
	w.up = ok
	return w.last, ok
}

func (w *storeWatch) counts() StoreCounts {
	c, _ := w.get()
	return c
}

func (w *storeWatch) isUp() float64 {
	if _, ok := w.get(); ok {
		return 1
	}
	return 0
}

// NewHub creates the hub series and registers them with reg (see register).
func NewHub(reg prometheus.Registerer) (*Hub, error) {
	m := &Hub{}
	*m = Hub{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tryst_hub_connections",
			Help: "WebSocket connections currently open on the hub.",
		}),
		ConnectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_hub_connections_total",
			Help: "WebSocket connections accepted by the hub since start.",
		}),
		Rooms: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tryst_hub_rooms",
			Help: "Rooms currently open in the hub's room store (shared by every node that uses the store).",
		}, func() float64 { return float64(m.store.counts().Rooms) }),
		RoomsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_hub_rooms_created_total",
			Help: "Rooms created since start.",
		}),
		RoomsExpired: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tryst_hub_rooms_expired_total",
			Help: "Rooms this node removed because nobody was attached for the idle TTL.",
		}, func() float64 { return float64(m.store.counts().Expired) }),
		RoomsRecreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_hub_rooms_recreated_total",
			Help: "Rooms the hub did not hold (it restarted) recreated from a member's resume token.",
		}),
		MailboxBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tryst_hub_mailbox_bytes",
			Help: "Bytes of offers and answers waiting in room mailboxes for an absent member (the whole room store).",
		}, func() float64 { return float64(m.store.counts().MailboxBytes) }),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tryst_hub_messages_total",
			Help: "Signaling messages received from clients, by message type.",
		}, []string{"type"}),
		Rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tryst_hub_rejections_total",
			Help: "Requests and messages the hub refused, by reason.",
		}, []string{"reason"}),
		StoreUp: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tryst_hub_store_up",
			Help: "1 while the hub's room store (Redis, with --store) answers, else 0: new rooms, joins and resumes fail.",
		}, func() float64 { return m.store.isUp() }),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_hub_store_errors_total",
			Help: "Room store operations that failed (the store unreachable); the client was told to try again.",
		}),
		StoreDeliveryFailures: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tryst_hub_store_delivery_failures_total",
			Help: "Deliveries between nodes that failed: an offer or answer this node could not collect or put back for its connection, or a node message it could not decode.",
		}, func() float64 { return float64(m.store.counts().DeliveryFailures) }),
		FailedConfirmations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_hub_failed_confirmations_total",
			Help: "Reports from room members that a password key confirmation with the other member failed: a mistyped password, or somebody guessing it.",
		}),
		Pairing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tryst_hub_pairing_duration_seconds",
			Help:    "Time from a guest joining a room to its answer being delivered to the host.",
			Buckets: pairingBucketsSec,
		}),
	}
	for _, t := range hubMessageTypes {
		m.Messages.WithLabelValues(t)
	}
	for _, r := range hubRejectReasons {
		m.Rejections.WithLabelValues(r)
	}
	var err error
	m.Connections = register(reg, m.Connections, &err)
	m.ConnectionsTotal = register(reg, m.ConnectionsTotal, &err)
	m.Rooms = register(reg, m.Rooms, &err)
	m.RoomsTotal = register(reg, m.RoomsTotal, &err)
	m.RoomsExpired = register(reg, m.RoomsExpired, &err)
	m.RoomsRecreated = register(reg, m.RoomsRecreated, &err)
	m.MailboxBytes = register(reg, m.MailboxBytes, &err)
	m.Messages = register(reg, m.Messages, &err)
	m.Rejections = register(reg, m.Rejections, &err)
	m.Pairing = register(reg, m.Pairing, &err)
	m.FailedConfirmations = register(reg, m.FailedConfirmations, &err)
	m.StoreUp = register(reg, m.StoreUp, &err)
	m.StoreErrors = register(reg, m.StoreErrors, &err)
	m.StoreDeliveryFailures = register(reg, m.StoreDeliveryFailures, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Message counts one received message of type t.
func (m *Hub) Message(t string) {
	if !slices.Contains(hubMessageTypes, t) {
		t = "unknown"
	}
	m.Messages.WithLabelValues(t).Inc()
}

// Reject counts one rejection for reason, which must be one of HubRejectReasons().
func (m *Hub) Reject(reason string) {
	m.Rejections.WithLabelValues(reason).Inc()
}
