package hubload

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one run measured; phases not run are nil.
type Result struct {
	Hub     string       `json:"hub"`
	Sources int          `json:"source_addresses"`
	Pair    *PairResult  `json:"pairings,omitempty"`
	Relay   *RelayResult `json:"relay,omitempty"`
	Mem     *MemResult   `json:"memory,omitempty"`
	Abuse   *AbuseResult `json:"abuse,omitempty"`
	Targets []Target     `json:"targets"`
}

// PairResult is the pair phase.
type PairResult struct {
	Workers   int     `json:"workers"`
	Completed int     `json:"completed"`
	Failed    int     `json:"failed"`
	FirstErr  string  `json:"first_error,omitempty"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50ms     float64 `json:"latency_p50_ms"`
	P99ms     float64 `json:"latency_p99_ms"`
	// HubCPU is the hub's CPU time during the phase (with --server-pid).
	HubCPU          float64 `json:"hub_cpu_seconds,omitempty"`
	PerHubCPUSecond float64 `json:"per_hub_cpu_second,omitempty"`
}

// RelayResult is the relay phase.
type RelayResult struct {
	Rooms          int     `json:"rooms"`
	RatePerMember  float64 `json:"rate_per_member"`
	FrameBytes     int     `json:"data_bytes"`
	Seconds        float64 `json:"seconds"`
	Sent           int64   `json:"sent"`
	Received       int64   `json:"received"`
	FramesPerSec   float64 `json:"frames_per_second"`
	P50ms          float64 `json:"latency_p50_ms"`
	P99ms          float64 `json:"latency_p99_ms"`
	Maxms          float64 `json:"latency_max_ms"`
	SetupFailed    int     `json:"setup_failed"`
	FirstSetupErr  string  `json:"first_setup_error,omitempty"`
	SendErrors     int64   `json:"send_errors"`
	ConnectionsCut int64   `json:"connections_cut"`
	HubCPU         float64 `json:"hub_cpu_seconds,omitempty"`
	// HubCPUWindow is the time HubCPU covers: warm-up and measurement.
	HubCPUWindow time.Duration `json:"-"`
}

// MemResult is the mem phase.
type MemResult struct {
	Requested   int     `json:"requested"`
	Held        int     `json:"held"`
	Failed      int     `json:"failed"`
	FirstErr    string  `json:"first_error,omitempty"`
	OpenSeconds float64 `json:"open_seconds"`
	HubConns    float64 `json:"hub_connections_gauge"`
	RSSBefore   float64 `json:"rss_before_bytes"`
	RSSAfter    float64 `json:"rss_after_bytes"`
	KiBPerConn  float64 `json:"kib_per_connection"`
	// Settle is how long the connections were held before RSSAfter.
	Settle time.Duration `json:"-"`
}

// AbuseResult is the abuse phase.
type AbuseResult struct {
	Source         string  `json:"source"`
	OfferBytes     int     `json:"offer_bytes"`
	Seconds        float64 `json:"seconds"`
	Attempts       int     `json:"attempts"`
	AttemptsPerSec float64 `json:"attempts_per_second"`
	// Created counts the creates answered created; Refused the others, by
	// error code.
	Created int            `json:"created"`
	Refused map[string]int `json:"refused"`
	// DialRefused counts the upgrades the hub refused, by the code of its
	// answer (ip_conn_limit) or http_STATUS.
	DialRefused map[string]int `json:"dial_refused,omitempty"`
	// OffersStored counts the offers the hub handled without an error;
	// OffersRefused the others, by error code.
	OffersStored  int            `json:"offers_stored"`
	OffersRefused map[string]int `json:"offers_refused,omitempty"`
	// Errors are turns that ended otherwise (a lost connection, a timeout).
	Errors   int    `json:"errors"`
	FirstErr string `json:"first_error,omitempty"`
	// Before and After are the hub's tryst_hub_rooms,
	// tryst_hub_mailbox_bytes and process_resident_memory_bytes, as far as
	// it exports them.
	Before map[string]float64 `json:"metrics_before"`
	After  map[string]float64 `json:"metrics_after"`
	// HubRejections is the increase of the hub's
	// tryst_hub_rejections_total over the phase, by reason.
	HubRejections map[string]int `json:"hub_rejections"`
	// The honest client's pairings during the loop.
	HonestSource   string        `json:"honest_source"`
	HonestNote     string        `json:"honest_note,omitempty"`
	HonestInterval time.Duration `json:"-"`
	Honest         HonestResult  `json:"honest"`
}

// HonestResult is what the honest client of the abuse phase saw.
type HonestResult struct {
	Completed int            `json:"completed"`
	Failed    int            `json:"failed"`
	FailedBy  map[string]int `json:"failed_by,omitempty"`
	FirstErr  string         `json:"first_error,omitempty"`
	P50ms     float64        `json:"latency_p50_ms"`
	Maxms     float64        `json:"latency_max_ms"`
}

// Target is one of the hub's performance targets and whether the run
// met it.
type Target struct {
	Name   string  `json:"name"`
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	Reason string  `json:"note,omitempty"`
}

// The hub's performance targets on a 2-core machine.
const (
	targetPairingsPerSec = 3000
	targetRelayP99ms     = 5
	targetRelayRooms     = 1000
	targetKiBPerConn     = 12    // per idle connection (issue 15; 25 before)
	targetConns          = 19900 // RLIMIT_NOFILE is 20,000 on the project's machines
)

// targets rates r against the hub's targets.
func targets(r Result) []Target {
	var ts []Target
	if m := r.Mem; m != nil {
		t := Target{Name: "memory per connection", Goal: fmt.Sprintf("<= %d KiB at %d connections", targetKiBPerConn, targetConns),
			Value: m.KiBPerConn, Unit: "KiB", Met: m.KiBPerConn <= targetKiBPerConn && m.Held > 0}
		if m.Held < targetConns {
			t.Reason = fmt.Sprintf("measured at %d connections", m.Held)
		}
		ts = append(ts, t)
	}
	if p := r.Pair; p != nil {
		ts = append(ts, Target{Name: "pairings per second", Goal: fmt.Sprintf(">= %d", targetPairingsPerSec),
			Value: p.PerSecond, Unit: "/s", Met: p.PerSecond >= targetPairingsPerSec && p.Failed == 0})
	}
	if l := r.Relay; l != nil {
		t := Target{Name: "relay latency p99", Goal: fmt.Sprintf("< %d ms at %d rooms", targetRelayP99ms, targetRelayRooms),
			Value: l.P99ms, Unit: "ms", Met: l.P99ms < targetRelayP99ms && l.Received > 0}
		if l.Rooms < targetRelayRooms {
			t.Reason = fmt.Sprintf("measured at %d rooms", l.Rooms)
		}
		ts = append(ts, t)
	}
	return ts
}

// WriteTable prints r as `tryst bench hub` does: one line per measurement,
// then the targets.
func (r Result) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	r.table(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (r Result) table(w io.Writer) {
	src := "system-chosen source address"
	if r.Sources > 0 {
		src = fmt.Sprintf("%d source addresses", r.Sources)
	}
	fmt.Fprintf(w, "hub %s, %s\n\n", r.Hub, src)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if p := r.Pair; p != nil {
		fmt.Fprintf(tw, "pairings\t%.0f/s\t%d done in %.1fs by %d workers, %d failed\n", p.PerSecond, p.Completed, p.Seconds, p.Workers, p.Failed)
		fmt.Fprintf(tw, "pairing time p50/p99\t%.2f / %.2f ms\tcreate → answer at host, two new connections\n", p.P50ms, p.P99ms)
		if p.HubCPU > 0 {
			fmt.Fprintf(tw, "pairings per hub CPU-second\t%.0f\t%.2fs of hub CPU (%.0f%% of one core)\n", p.PerHubCPUSecond, p.HubCPU, 100*p.HubCPU/p.Seconds)
		}
		if p.FirstErr != "" {
			fmt.Fprintf(tw, "  first failure\t%s\t\n", p.FirstErr)
		}
	}
	if l := r.Relay; l != nil {
		fmt.Fprintf(tw, "relay latency p50/p99\t%.2f / %.2f ms\t%d rooms, %.4g frames/s per member, %d-byte data, max %.2f ms\n",
			l.P50ms, l.P99ms, l.Rooms, l.RatePerMember, l.FrameBytes, l.Maxms)
		fmt.Fprintf(tw, "relayed frames\t%.0f/s\t%d sent, %d received in %.1fs, %d send errors, %d connections cut\n",
			l.FramesPerSec, l.Sent, l.Received, l.Seconds, l.SendErrors, l.ConnectionsCut)
		if l.HubCPU > 0 {
			fmt.Fprintf(tw, "hub CPU while relaying\t%.0f%% of one core\t%.2fs over warm-up and measurement\n",
				100*l.HubCPU/l.HubCPUWindow.Seconds(), l.HubCPU)
		}
		if l.SetupFailed > 0 {
			fmt.Fprintf(tw, "  room setup failed\t%d\t%s\n", l.SetupFailed, l.FirstSetupErr)
		}
	}
	if m := r.Mem; m != nil {
		fmt.Fprintf(tw, "memory per connection\t%.1f KiB\t%d held (of %d) for %.1fs; hub RSS %.1f → %.1f MiB; hub gauge %.0f\n",
			m.KiBPerConn, m.Held, m.Requested, m.Settle.Seconds(), m.RSSBefore/(1<<20), m.RSSAfter/(1<<20), m.HubConns)
		fmt.Fprintf(tw, "connections opened\t%.0f/s\t\n", float64(m.Held)/m.OpenSeconds)
		if m.FirstErr != "" {
			fmt.Fprintf(tw, "  first failure\t%s\t\n", m.FirstErr)
		}
	}
	if a := r.Abuse; a != nil {
		a.table(tw)
	}
	_ = tw.Flush()
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (2-core machine):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%.4g %s\t%s\t%s\n", t.Name, t.Goal, t.Value, t.Unit, mark, t.Reason)
		}
		_ = tw.Flush()
	}
}

func (a *AbuseResult) table(w io.Writer) {
	fmt.Fprintf(w, "abuse: rooms created\t%d of %d\tcreate + %d-byte offer + close without leave, from %s, %.1fs (%.0f tries/s)\n",
		a.Created, a.Attempts, a.OfferBytes, a.Source, a.Seconds, a.AttemptsPerSec)
	fmt.Fprintf(w, "  creates refused\t%s\t\n", counts(a.Refused))
	if len(a.DialRefused) > 0 {
		fmt.Fprintf(w, "  connections refused\t%s\t\n", counts(a.DialRefused))
	}
	fmt.Fprintf(w, "  hub's rejections\t%s\ttryst_hub_rejections_total by reason, increase\n", counts(a.HubRejections))
	fmt.Fprintf(w, "  offers stored\t%d\trefused: %s\n", a.OffersStored, counts(a.OffersRefused))
	if a.Errors > 0 {
		fmt.Fprintf(w, "  other failures\t%d\t%s\n", a.Errors, a.FirstErr)
	}
	for _, s := range []struct{ name, series, unit string }{
		{"  hub rooms", "tryst_hub_rooms", ""},
		{"  hub mailbox bytes", "tryst_hub_mailbox_bytes", ""},
		{"  hub RSS", "process_resident_memory_bytes", "MiB"},
	} {
		fmt.Fprintf(w, "%s\t%s → %s\t%s before → after\n", s.name, sample(a.Before, s.series, s.unit), sample(a.After, s.series, s.unit), s.series)
	}
	h := a.Honest
	fmt.Fprintf(w, "honest pairings\t%d done, %d failed\tfrom %s every %s; p50 %.2f ms, max %.2f ms\n",
		h.Completed, h.Failed, a.HonestSource, a.HonestInterval, h.P50ms, h.Maxms)
	if h.Failed > 0 {
		fmt.Fprintf(w, "  honest failures\t%s\t%s\n", counts(h.FailedBy), h.FirstErr)
	}
	if a.HonestNote != "" {
		fmt.Fprintf(w, "  note\t\t%s\n", a.HonestNote)
	}
}

// counts prints code counts as "a 3, b 1", in order of code.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// sample prints one series of m, "n/a" when the hub does not export it.
func sample(m map[string]float64, series, unit string) string {
	v, ok := m[series]
	switch {
	case !ok:
		return "n/a"
	case unit == "MiB":
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}
