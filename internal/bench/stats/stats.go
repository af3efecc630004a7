// Package stats holds the statistics the benchmarks share: nearest-rank
// percentiles of latencies, medians of repeated runs, milliseconds for
// reports.
package stats

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-quantile (0 < p <= 1) of sorted by the
// nearest-rank method, zero for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Median returns the median of xs, which it leaves unsorted; zero for no
// values.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// Ms is d in milliseconds, for reports.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
