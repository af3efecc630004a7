// Package metrics defines every Prometheus series Tryst exports, in a private
// registry served on the metrics listener (never on the public hub port).
//
// Names follow the Prometheus naming guide: tryst_<subsystem>_<name> with a
// _total, _seconds or _bytes suffix. No label takes unbounded values: room
// codes, IP addresses and user names never appear in a label.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a private registry holding the Go and process
// collectors and tryst_build_info for the given version.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	// A fresh registry cannot hold duplicates, so these cannot fail.
	_ = register(reg,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tryst_build_info",
		Help: "A metric with a constant '1' value labelled by the version of Tryst and the Go version it was built with.",
	}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	_ = register(reg, info)
	return reg
}

// Handler serves the registry in the Prometheus exposition format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		EnableOpenMetrics: false,
		ErrorHandling:     promhttp.ContinueOnError,
	})
}
