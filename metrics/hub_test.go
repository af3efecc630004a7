package metrics_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/metrics"
)

// Every rejection reason, the credential budget's included, is a series
// from the first scrape, so rate() and alerts see it before the first
// refusal.
func TestHubRejectionsExistAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.NewHub(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.Rejections); n != len(metrics.HubRejectReasons()) {
		t.Errorf("%d rejection series, want %d", n, len(metrics.HubRejectReasons()))
	}
	want := `# HELP tryst_hub_rejections_total Requests and messages the hub refused, by reason.
# TYPE tryst_hub_rejections_total counter
tryst_hub_rejections_total{reason="credentials"} 1
`
	m.Reject(metrics.RejectCredentials)
	if err := testutil.CollectAndCompare(m.Rejections.WithLabelValues(metrics.RejectCredentials), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	for _, r := range metrics.HubRejectReasons() {
		if r == metrics.RejectCredentials {
			continue
		}
		if got := testutil.ToFloat64(m.Rejections.WithLabelValues(r)); got != 0 {
			t.Errorf("reason %q = %v, want 0", r, got)
		}
	}
	for _, r := range []string{metrics.RejectRoomRate, "idle_rooms", "rooms_total", "mailbox_bytes"} {
		if !slices.Contains(metrics.HubRejectReasons(), r) {
			t.Errorf("no rejection reason %q", r)
		}
	}
	if n := testutil.CollectAndCount(m.MailboxBytes, "tryst_hub_mailbox_bytes"); n != 1 {
		t.Errorf("tryst_hub_mailbox_bytes: %d series", n)
	}
	// The set is handed out as a copy: changing it changes nothing here.
	rs := metrics.HubRejectReasons()
	rs[0] = "changed"
	if metrics.HubRejectReasons()[0] == "changed" {
		t.Error("HubRejectReasons returns the package's own slice")
	}
	// A second hub on the same registry shares the first one's series.
	again, err := metrics.NewHub(reg)
	if err != nil {
		t.Fatalf("second NewHub on one registry: %v", err)
	}
	again.Reject(metrics.RejectCredentials)
	if got := testutil.ToFloat64(m.Rejections.WithLabelValues(metrics.RejectCredentials)); got != 2 {
		t.Errorf("second NewHub does not share series: %v", got)
	}
}

// A different collector under one of the hub's names is a conflict that
// NewHub reports, where an earlier NewHub's own series would be shared.
func TestHubNameConflict(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "tryst_hub_rooms", Help: "Something else."}))
	if _, err := metrics.NewHub(reg); err == nil {
		t.Error("NewHub over a different tryst_hub_rooms succeeded")
	}
}

// Failed-confirmation reports have a counter of their own, at zero from
// the first scrape, and a message type; joins they throttle have a reason.
func TestHubFailedConfirmations(t *testing.T) {
	t.Parallel()
	m, err := metrics.NewHub(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP tryst_hub_failed_confirmations_total Reports from room members that a password key confirmation with the other member failed: a mistyped password, or somebody guessing it.
# TYPE tryst_hub_failed_confirmations_total counter
tryst_hub_failed_confirmations_total 0
`
	if err := testutil.CollectAndCompare(m.FailedConfirmations, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	m.FailedConfirmations.Inc()
	if got := testutil.ToFloat64(m.FailedConfirmations); got != 1 {
		t.Errorf("after one report: %v", got)
	}
	if !slices.Contains(metrics.HubRejectReasons(), metrics.RejectRoomGuesses) {
		t.Errorf("no rejection reason %q", metrics.RejectRoomGuesses)
	}
	m.Message("report")
	if got := testutil.ToFloat64(m.Messages.WithLabelValues("report")); got != 1 {
		t.Errorf("report messages: %v", got)
	}
	if got := testutil.ToFloat64(m.Messages.WithLabelValues("unknown")); got != 0 {
		t.Errorf("report counted as unknown: %v", got)
	}
}
