package metrics_test

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

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

// TestFailedStoreAskedOncePerScrape: five series read the room store, one
// after another in a scrape. A store that does not answer (Redis down:
// each query waits out its timeout) is asked once, so a scrape takes one
// timeout, not five, and still reports tryst_hub_store_up 0; it is asked
// again after a while, and an answering store is asked for every sample.
func TestFailedStoreAskedOncePerScrape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m, err := metrics.NewHub(reg)
		if err != nil {
			t.Fatal(err)
		}
		var calls, rooms atomic.Int32
		var down atomic.Bool
		down.Store(true)
		m.WatchStore(func() (metrics.StoreCounts, bool) {
			calls.Add(1)
			if down.Load() {
				time.Sleep(2 * time.Second) // the query's timeout
				return metrics.StoreCounts{}, false
			}
			return metrics.StoreCounts{Rooms: int(rooms.Add(1))}, true
		})
		scrape := func() (up, nrooms float64, took time.Duration) {
			start := time.Now()
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				switch mf.GetName() {
				case "tryst_hub_store_up":
					up = mf.GetMetric()[0].GetGauge().GetValue()
				case "tryst_hub_rooms":
					nrooms = mf.GetMetric()[0].GetGauge().GetValue()
				}
			}
			return up, nrooms, time.Since(start)
		}
		if up, _, took := scrape(); up != 0 || took != 2*time.Second || calls.Load() != 1 {
			t.Errorf("store down: up %v, scrape took %v, %d queries; want 0, 2s, 1", up, took, calls.Load())
		}
		time.Sleep(15 * time.Second) // the next scrape
		if up, _, took := scrape(); up != 0 || took != 2*time.Second || calls.Load() != 2 {
			t.Errorf("store still down a scrape later: up %v, scrape took %v, %d queries; want 0, 2s, 2", up, took, calls.Load())
		}
		down.Store(false)
		time.Sleep(15 * time.Second)
		up, n, _ := scrape()
		if up != 1 || n == 0 {
			t.Errorf("store back: up %v, rooms %v; want 1 and the store's count", up, n)
		}
		if _, again, _ := scrape(); again == n {
			t.Errorf("an answering store's count was not asked again: %v both times", n)
		}
	})
}
