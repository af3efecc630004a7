package client

// NoRelayRestart returns cfg for a relay-only guest that answers every
// offer as it comes, as before relay restart requests: the baseline that
// TestRelayGuestConnectsFast measures.
func NoRelayRestart(cfg Config) Config {
	cfg.noRelayRestart = true
	return cfg
}
