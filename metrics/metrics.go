// Package metrics defines every Prometheus series Tryst exports, in a private
// registry served on the metrics listener (never on the public hub port).
//
// Names follow the Prometheus naming guide: tryst_<subsystem>_<name> with a
// _total, _seconds or _bytes suffix. No label takes unbounded values: room
// codes, IP addresses and user names never appear in a label.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a private registry holding the Go and process
// collectors and tryst_build_info for the given version.
func NewRegistry(version string) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	var err error
	register(reg, collectors.NewGoCollector(), &err)
	register(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &err)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tryst_build_info",
		Help: "A metric with a constant '1' value labelled by the version of Tryst and the Go version it was built with.",
	}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	register(reg, info, &err)
	if err != nil {
		return nil, err
	}
	return reg, nil
}

// register is how every constructor here registers a collector, so they all
// follow one policy. A nil reg leaves c unregistered (tests, and servers
// without metrics). When reg already holds an equal collector, from an
// earlier call of the same constructor, that one is returned in place of c:
// calling a constructor twice on one registry shares the series rather than
// failing, and a partial registration does not stop a retry. Any other
// refusal (a different collector by the same name) is recorded in *errp,
// which keeps the first error, and c is returned unregistered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = fmt.Errorf("metrics: register: %w", err)
	}
	return c
}

// Handler serves the registry in the Prometheus exposition format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		EnableOpenMetrics: false,
		ErrorHandling:     promhttp.ContinueOnError,
	})
}
