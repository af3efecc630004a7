package metrics

import "github.com/prometheus/client_golang/prometheus"

// NewTLSExpiry registers the certificate-expiry gauge, for the alert that
// fires before a certificate runs out.
func NewTLSExpiry(reg prometheus.Registerer) (prometheus.Gauge, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tryst_tls_certificate_expiry_timestamp_seconds",
		Help: "Unix time at which the served TLS certificate expires.",
	})
	var err error
	g = register(reg, g, &err)
	if err != nil {
		return nil, err
	}
	return g, nil
}
