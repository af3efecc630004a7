package stats_test

import (
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/stats"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.50, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := stats.Percentile(d, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := stats.Percentile(nil, 0.5); got != 0 {
		t.Errorf("Percentile of nothing = %v", got)
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{3, 1, 2}
	if got := stats.Median(xs); got != 2 {
		t.Errorf("Median = %v, want 2", got)
	}
	if xs[0] != 3 {
		t.Error("Median sorted its argument")
	}
	if got := stats.Median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("Median = %v, want 2.5", got)
	}
	if got := stats.Median(nil); got != 0 {
		t.Errorf("Median of nothing = %v", got)
	}
}

func TestMs(t *testing.T) {
	if got := stats.Ms(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("Ms = %v", got)
	}
}
