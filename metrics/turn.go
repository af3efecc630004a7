package metrics

import "github.com/prometheus/client_golang/prometheus"

// Relay directions used as the "direction" label of the TURN relay series.
const (
	// DirectionClientToPeer counts application payload a TURN client sent
	// (ChannelData or Send indication) that the relay forwarded to a peer.
	DirectionClientToPeer = "client_to_peer"
	// DirectionPeerToClient counts payload a peer sent to a relay address
	// that the relay forwarded to its client (ChannelData or Data indication).
	DirectionPeerToClient = "peer_to_client"
)

// Reasons used as the "reason" label of tryst_turn_auth_failures_total.
const (
	AuthBadUsername = "bad_username" // not "<expiry-unix>:<id>"
	AuthExpired     = "expired"      // expiry in the past when allocating
	AuthBadMAC      = "bad_mac"      // MESSAGE-INTEGRITY matched no secret
	AuthBadRealm    = "bad_realm"    // REALM differs from the server's
	AuthRateLimited = "rate_limited" // source IP exhausted its token bucket
	AuthMaxLifetime = "max_lifetime" // allocation older than the maximum lifetime
	AuthTTLTooLong  = "ttl_too_long" // credential expiry further ahead than the maximum credential TTL
	AuthStaleNonce  = "stale_nonce"  // NONCE not issued to this source, or expired
)

// Kinds used as the "kind" label of tryst_turn_quota_rejections_total.
const (
	QuotaUser                = "user"                 // allocations per user
	QuotaGlobal              = "global"               // allocations on the server
	QuotaAllocationBandwidth = "allocation_bandwidth" // packet dropped: per-allocation byte rate
	QuotaTotalBandwidth      = "total_bandwidth"      // packet dropped: server-wide byte rate
	QuotaSourceRate          = "source_rate"          // unauthenticated request dropped: per-IP rate
	QuotaSourceAllocations   = "source_allocations"   // allocations per source IP (486)
	QuotaPermissions         = "permissions"          // permissions per allocation (508)
	QuotaChannels            = "channels"             // channel bindings per allocation (508)
	QuotaRelayPorts          = "relay_ports"          // no free relay port (508)
	QuotaReservation         = "reservation"          // RESERVATION-TOKEN or EVEN-PORT reservation refused (508)
)

// TURN holds the series of the embedded STUN/TURN relay. Every label takes a
// value from a small fixed set; all of them are created at zero.
type TURN struct {
	Allocations         prometheus.Gauge
	AllocationsTotal    prometheus.Counter
	AllocationDuration  prometheus.Histogram
	RelayBytes          *prometheus.CounterVec // {direction}
	RelayPackets        *prometheus.CounterVec // {direction}
	AuthFailures        *prometheus.CounterVec // {reason}
	PermissionDenied    prometheus.Counter
	QuotaRejections     *prometheus.CounterVec // {kind}
	STUNBindingRequests prometheus.Counter
	RelayPortsUsed      prometheus.Gauge
	RelayPortsLimit     prometheus.Gauge
}

// NewTURN creates the TURN series and registers them with reg (see
// register). A nil reg leaves them unregistered (useful in tests and when
// metrics are off).
func NewTURN(reg prometheus.Registerer) (*TURN, error) {
	t := &TURN{
		Allocations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tryst_turn_allocations",
			Help: "TURN allocations currently open.",
		}),
		AllocationsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_turn_allocations_total",
			Help: "TURN allocations created since start.",
		}),
		AllocationDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tryst_turn_allocation_duration_seconds",
			Help:    "Lifetime of TURN allocations, observed when they end.",
			Buckets: []float64{1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200},
		}),
		RelayBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tryst_turn_relay_bytes_total",
			Help: "Application payload bytes relayed, excluding TURN framing, counted per packet as it is forwarded. direction is client_to_peer or peer_to_client.",
		}, []string{"direction"}),
		RelayPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tryst_turn_relay_packets_total",
			Help: "Packets relayed, counted as they are forwarded. direction is client_to_peer or peer_to_client.",
		}, []string{"direction"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tryst_turn_auth_failures_total",
			Help: "Authenticated TURN requests refused, by reason (bad_username, expired, bad_mac, bad_realm, rate_limited, max_lifetime, ttl_too_long, stale_nonce).",
		}, []string{"reason"}),
		PermissionDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_turn_permission_denied_total",
			Help: "CreatePermission or ChannelBind requests refused by the peer address filter.",
		}),
		QuotaRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tryst_turn_quota_rejections_total",
			Help: "Requests or packets refused by a quota, by kind (user, global, allocation_bandwidth, total_bandwidth, source_rate, source_allocations, permissions, channels, relay_ports, reservation).",
		}, []string{"kind"}),
		STUNBindingRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tryst_turn_stun_binding_requests_total",
			Help: "STUN Binding requests received.",
		}),
		RelayPortsUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tryst_turn_relay_ports_used",
			Help: "Relay ports currently bound by allocations.",
		}),
		RelayPortsLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tryst_turn_relay_ports_limit",
			Help: "Relay ports in the configured range (--turn-relay-ports): the most allocations that can be open at once.",
		}),
	}
	for _, d := range []string{DirectionClientToPeer, DirectionPeerToClient} {
		t.RelayBytes.WithLabelValues(d)
		t.RelayPackets.WithLabelValues(d)
	}
	for _, r := range []string{AuthBadUsername, AuthExpired, AuthBadMAC, AuthBadRealm, AuthRateLimited, AuthMaxLifetime, AuthTTLTooLong, AuthStaleNonce} {
		t.AuthFailures.WithLabelValues(r)
	}
	for _, k := range []string{QuotaUser, QuotaGlobal, QuotaAllocationBandwidth, QuotaTotalBandwidth, QuotaSourceRate,
		QuotaSourceAllocations, QuotaPermissions, QuotaChannels, QuotaRelayPorts, QuotaReservation} {
		t.QuotaRejections.WithLabelValues(k)
	}
	var err error
	t.Allocations = register(reg, t.Allocations, &err)
	t.AllocationsTotal = register(reg, t.AllocationsTotal, &err)
	t.AllocationDuration = register(reg, t.AllocationDuration, &err)
	t.RelayBytes = register(reg, t.RelayBytes, &err)
	t.RelayPackets = register(reg, t.RelayPackets, &err)
	t.AuthFailures = register(reg, t.AuthFailures, &err)
	t.PermissionDenied = register(reg, t.PermissionDenied, &err)
	t.QuotaRejections = register(reg, t.QuotaRejections, &err)
	t.STUNBindingRequests = register(reg, t.STUNBindingRequests, &err)
	t.RelayPortsUsed = register(reg, t.RelayPortsUsed, &err)
	t.RelayPortsLimit = register(reg, t.RelayPortsLimit, &err)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// UnregisteredTURN returns TURN series registered nowhere: the default of a
// relay run without metrics, and of tests.
func UnregisteredTURN() *TURN {
	t, _ := NewTURN(nil) // nothing to register, so nothing to fail
	return t
}

// NewTURNAllocationsLimit registers tryst_turn_allocations_limit, set to
// limit: the configured cap on open allocations (--turn-max-allocations), so
// that dashboards and alerts can compare tryst_turn_allocations with it. It
// is apart from NewTURN because it is a setting, not something the relay
// counts; a server without a cap does not export it.
func NewTURNAllocationsLimit(reg prometheus.Registerer, limit int) (prometheus.Gauge, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tryst_turn_allocations_limit",
		Help: "Configured cap on open TURN allocations (--turn-max-allocations).",
	})
	var err error
	g = register(reg, g, &err)
	if err != nil {
		return nil, err
	}
	g.Set(float64(limit))
	return g, nil
}
