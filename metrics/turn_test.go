package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/metrics"
)

func TestTURNSeriesExistAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewTURN(reg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := metrics.NewTURN(reg) // shares the series
	if err != nil {
		t.Fatalf("second NewTURN on one registry: %v", err)
	}
	again.AllocationsTotal.Inc()
	if got := testutil.ToFloat64(m.AllocationsTotal); got != 1 {
		t.Errorf("second NewTURN does not share series: %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"tryst_turn_allocations":                 1,
		"tryst_turn_allocations_total":           1,
		"tryst_turn_allocation_duration_seconds": 1,
		"tryst_turn_relay_bytes_total":           2,
		"tryst_turn_relay_packets_total":         2,
		"tryst_turn_auth_failures_total":         8,
		"tryst_turn_permission_denied_total":     1,
		"tryst_turn_quota_rejections_total":      10,
		"tryst_turn_stun_binding_requests_total": 1,
		"tryst_turn_relay_ports_used":            1,
		"tryst_turn_relay_ports_limit":           1,
	}
	for _, mf := range mfs {
		n, ok := want[mf.GetName()]
		if !ok {
			t.Errorf("unexpected series %s", mf.GetName())
			continue
		}
		if len(mf.GetMetric()) != n {
			t.Errorf("%s: %d label sets, want %d", mf.GetName(), len(mf.GetMetric()), n)
		}
		if strings.TrimSpace(mf.GetHelp()) == "" {
			t.Errorf("%s: no help", mf.GetName())
		}
		delete(want, mf.GetName())
	}
	for name := range want {
		t.Errorf("missing series %s", name)
	}
}

// TestTURNNameConflict: a name taken by a different collector is an error
// for the caller, never a panic.
func TestTURNNameConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "tryst_turn_allocations", Help: "not a gauge"}))
	if m, err := metrics.NewTURN(reg); err == nil {
		t.Fatalf("NewTURN on a conflicting registry: %v, no error", m)
	}
	if metrics.UnregisteredTURN() == nil {
		t.Fatal("UnregisteredTURN returned nil")
	}
}
