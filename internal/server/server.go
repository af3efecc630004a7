// Package server is `tryst serve` as a library: from one Config it wires
// the rendezvous hub (with the browser client), the STUN/TURN relay, TLS
// certificates that reload in place, and the metrics and pprof endpoint,
// then serves them until told to drain. cmd/tryst turns flags, environment
// and config file into a Config and signals into Run's context and Reload.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/turnserver"
)

// certCheckInterval is how often the certificate files are checked for a
// change: ACME clients renew them in place (Reload picks them up at once).
const certCheckInterval = 5 * time.Second

// Addrs are the addresses a Server is bound to.
type Addrs struct {
	Hub     string `json:"hub"`                // URL of the hub and web client: http://HOST:PORT, https:// with TLS
	Metrics string `json:"metrics"`            // URL of /metrics; /debug/pprof/ is on the same listener
	TURNUDP string `json:"turn_udp"`           // STUN/TURN over UDP, HOST:PORT
	TURNTCP string `json:"turn_tcp"`           // STUN/TURN over TCP, HOST:PORT
	TURNTLS string `json:"turn_tls,omitempty"` // TURN over TLS, HOST:PORT; empty without a certificate
}

// Server is a bound `tryst serve`: New opens every listener (the relay
// answers from then on), Run serves the hub and metrics and drains at the
// end.
type Server struct {
	cfg       Config
	log       *slog.Logger
	generated bool // the TURN secret is random, for this run

	hub     *hub.Hub
	store   hub.Store // the Redis store, when --store names one; the hub owns the default
	turn    *turnserver.Server
	web     *http.Server
	metrics *http.Server
	webLn   net.Listener
	metLn   net.Listener
	certs   *certReloader // nil without TLS
	addrs   Addrs

	errc chan error // a failed listener; room for both

	mu       sync.Mutex
	running  bool           // Run was called
	closed   bool           // Shutdown began: Run may not start serving
	stopping chan struct{}  // closed when Shutdown begins
	serving  sync.WaitGroup // the two Serve goroutines

	shutdownOnce sync.Once
	shutdownErr  error

	// delay starts DrainDelay's wait (a timer); tests replace it.
	delay func(time.Duration) (<-chan time.Time, func() bool)
}

// New checks cfg, then opens every listener. A setting that cannot work is
// a *SettingError, returned before anything is opened; after that, what
// fails (a port in use) closes whatever was opened.
func New(cfg Config) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, generated: p.generated, certs: p.certs,
		errc: make(chan error, 2), stopping: make(chan struct{}), delay: newDelay}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	reg, err := s.registerMetrics(p)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if s.turn, err = turnserver.New(p.turn); err != nil {
		return nil, fmt.Errorf("start TURN server: %w", err)
	}
	tlsPort := 0
	if p.certs != nil {
		tlsPort = portOf(s.turn.TLSAddr())
	}
	host := cfg.TURNHost
	if host == "" && cfg.PublicIP.IsValid() {
		host = cfg.PublicIP.String()
	}
	p.hub.ICE = iceServers(s.turn, host, portOf(s.turn.UDPAddr()), tlsPort, cfg.TURNTTL)
	keys := cfg.loadHubKeys(p.hubKeys, s.log)
	switch {
	case keys.keys == nil:
		s.log.Warn("no hub key: rooms will not survive a restart; set --hub-key-file, or a --state-dir this user can write",
			"state_dir", cfg.StateDir, "reason", keys.why)
	case keys.created:
		s.log.Info("generated the hub key: keep the state directory, rooms then survive a restart", "file", keys.file)
	default:
		s.log.Info("hub key loaded: rooms survive a restart", "file", keys.file)
	}
	p.hub.HubKeys = keys.keys
	if s.store, err = cfg.openStore(p, s.log); err != nil {
		return nil, err
	}
	if s.store != nil {
		p.hub.Store = s.store
		s.log.Info("rooms in Redis, shared with the other nodes that use it", "store", redactStoreURL(cfg.Store))
	}
	if s.hub, err = hub.New(p.hub); err != nil {
		return nil, fmt.Errorf("start hub: %w", err)
	}
	// No TCP keepalive on the hub's connections: the hub pings every
	// WebSocket itself (PingInterval) and drops one that does not answer,
	// and idle HTTP connections end at IdleTimeout. Go's default (15 s
	// probes) cost four setsockopt calls per accepted connection, 4 % of
	// the hub's CPU per pairing.
	lc := net.ListenConfig{KeepAlive: -1}
	if s.webLn, err = lc.Listen(context.Background(), "tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if len(cfg.ProxyProtocolFrom) > 0 {
		s.webLn = proxyListener(s.webLn, cfg.ProxyProtocolFrom)
	}
	if s.metLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", cfg.MetricsListen, err)
	}
	s.addrs = Addrs{
		Hub:     "http://" + s.webLn.Addr().String(),
		Metrics: "http://" + s.metLn.Addr().String() + "/metrics",
		TURNUDP: s.turn.UDPAddr().String(),
		TURNTCP: s.turn.TCPAddr().String(),
	}
	if p.certs != nil {
		s.webLn = tls.NewListener(s.webLn, p.certs.config())
		s.addrs.Hub = "https://" + s.webLn.Addr().String()
		s.addrs.TURNTLS = s.turn.TLSAddr().String()
	}
	// Read-header and idle timeouts keep slow or idle clients from holding
	// sockets; there is no write timeout because WebSockets are long-lived.
	s.web = &http.Server{
		Handler:           s.hub,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if s.certs != nil {
		s.certs.watch(certCheckInterval)
	}
	return s, nil
}

// registerMetrics makes the private registry and hands each component its
// series.
func (s *Server) registerMetrics(p *prepared) (*prometheus.Registry, error) {
	reg, err := metrics.NewRegistry(s.cfg.Version)
	if err != nil {
		return nil, err
	}
	if p.hub.Metrics, err = metrics.NewHub(reg); err != nil {
		return nil, err
	}
	if p.certs != nil {
		expiry, err := metrics.NewTLSExpiry(reg)
		if err != nil {
			return nil, err
		}
		p.certs.reportExpiry(func(t time.Time) { expiry.Set(float64(t.Unix())) })
	}
	if p.turn.Metrics, err = metrics.NewTURN(reg); err != nil {
		return nil, err
	}
	// The allocation cap is exported for the "near the cap" alert; a
	// negative cap means unlimited and exports nothing.
	if limit := p.turn.MaxAllocations; limit >= 0 {
		if limit == 0 {
			limit = turnserver.DefaultMaxAllocations
		}
		if _, err := metrics.NewTURNAllocationsLimit(reg, limit); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Addrs returns the bound addresses.
func (s *Server) Addrs() Addrs { return s.addrs }

// Run serves the hub and the metrics endpoint until ctx ends or a listener
// fails, then shuts down. When ctx ends it first announces the drain for
// Config.DrainDelay (/readyz answers 503, new WebSockets get 503 draining,
// everything else is served as before: the listener stays open), then
// asks the members to reconnect (1001) and waits up to Config.DrainTimeout
// for them to go. Once serving, it writes
// Config.ReadyFile, then logs "tryst serving". It returns nil after a clean
// drain, and at once (an error) if called twice or after Shutdown.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.closed {
		s.mu.Unlock()
		return errClosed
	}
	s.running = true
	s.serving.Add(2)
	go func() { defer s.serving.Done(); s.errc <- serveHTTP(s.web, s.webLn) }()
	go func() { defer s.serving.Done(); s.errc <- serveHTTP(s.metrics, s.metLn) }()
	s.mu.Unlock()

	if s.cfg.ReadyFile != "" {
		if err := writeReadyFile(s.cfg.ReadyFile, s.addrs); err != nil {
			err = fmt.Errorf("ready file: %w", err)
			s.log.Error("shutting down", "err", err)
			_ = s.Close()
			return err
		}
	}
	s.log.Info("tryst serving", "version", s.cfg.Version, "hub", s.addrs.Hub, "metrics", s.addrs.Metrics,
		"turn_udp", s.addrs.TURNUDP, "turn_tcp", s.addrs.TURNTCP)
	if s.generated {
		s.log.Warn("no TURN secret configured: generated a random one for this run; set --turn-secret-file or TRYST_TURN_SECRET to share it with other nodes or coturn")
	}
	if s.cfg.AllowLoopbackPeers {
		s.log.Warn("TURN may relay to loopback addresses (--allow-loopback-peers): for tests and local development only")
	}

	var err error
	select {
	case <-ctx.Done():
		s.announceDrain()
		s.log.Info("shutting down", "drain_timeout", s.cfg.DrainTimeout)
	case err = <-s.errc:
		// Serve returns nil only once shut down, which only Shutdown does.
		if err != nil {
			err = fmt.Errorf("serve: %w", err)
			s.log.Error("listener failed; shutting down", "err", err)
		}
	case <-s.stopping:
	}
	drain, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if serr := s.Shutdown(drain); err == nil && !errors.Is(serr, context.Canceled) {
		// Canceled: somebody else's Close cut the drain short on purpose.
		err = serr
	}
	return err
}

// announceDrain makes the node unready and waits DrainDelay, or less when
// Shutdown or Close is called meanwhile or a listener fails.
func (s *Server) announceDrain() {
	s.hub.StartDrain()
	if s.cfg.DrainDelay <= 0 {
		return
	}
	s.log.Info("draining: /readyz answers 503 and new connections are refused", "drain_delay", s.cfg.DrainDelay)
	c, stop := s.delay(s.cfg.DrainDelay)
	defer stop()
	select {
	case <-c:
	case <-s.stopping:
	case err := <-s.errc:
		// Nothing to wait for: the load balancer cannot reach this node.
		s.log.Error("listener failed while draining", "err", err)
	}
}

func newDelay(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func serveHTTP(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting, tells WebSocket clients to reconnect elsewhere
// (1001), waits until ctx ends for them to go, closes the relay and returns
// once every goroutine has finished; what ctx leaves open is cut. It is
// idempotent: later calls wait for the first and return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.stopping)
		s.mu.Unlock()
		s.shutdownErr = s.drain(ctx)
	})
	return s.shutdownErr
}

// Close is Shutdown without a grace period: every connection is cut at
// once. It is idempotent, and waits for the goroutines too.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// drain stops everything that New opened; with ctx ended, at once. It
// returns the first error.
func (s *Server) drain(ctx context.Context) error {
	var err error
	keep := func(e error) {
		if err == nil && e != nil {
			err = e
		}
	}
	if s.web != nil {
		if e := s.web.Shutdown(ctx); e != nil {
			keep(fmt.Errorf("hub listener: %w", e))
			s.web.Close()
		}
	}
	// Shutdown closes only the listeners Serve was given: Run may never
	// have run. Closing one twice does no harm.
	closeListener(s.webLn)
	if s.hub != nil {
		keep(s.hub.Shutdown(ctx))
	}
	if s.store != nil {
		keep(s.store.Close())
	}
	if s.turn != nil {
		keep(s.turn.Close())
	}
	if s.metrics != nil {
		if e := s.metrics.Shutdown(ctx); e != nil {
			keep(fmt.Errorf("metrics listener: %w", e))
			s.metrics.Close()
		}
	}
	closeListener(s.metLn)
	if s.certs != nil {
		s.certs.close()
	}
	s.serving.Wait()
	return err
}

func closeListener(ln net.Listener) {
	if ln != nil {
		_ = ln.Close()
	}
}

// Reload rereads the TURN secrets file (the first secret signs from now
// on, all verify, live allocations carry on) and the TLS certificate, what
// `tryst serve` does on SIGHUP. A file that does not load is logged and the
// current secrets or certificate kept. It may run beside Run.
func (s *Server) Reload() {
	s.reloadSecrets()
	s.reloadHubKeys()
	if s.certs != nil {
		s.certs.reload()
	}
}

func (s *Server) reloadSecrets() {
	if s.cfg.TURNSecretFile == "" {
		s.log.Warn("reload: no --turn-secret-file to reread")
		return
	}
	secrets, err := readSecretFile("--turn-secret-file", s.cfg.TURNSecretFile, parseTURNSecrets, s.log)
	if err == nil {
		err = s.turn.SetSecrets(secrets)
	}
	if err != nil {
		s.log.Error("reload: TURN secrets not reloaded; keeping the current ones", "err", err)
		return
	}
	s.log.Info("reload: TURN secrets reloaded")
}

// reloadHubKeys rereads --hub-key-file, if set: a new first key signs
// resume tokens from now on.
func (s *Server) reloadHubKeys() {
	if s.cfg.HubKeyFile == "" {
		return
	}
	keys, err := readSecretFile("--hub-key-file", s.cfg.HubKeyFile, hub.ParseHubKeys, s.log)
	if err == nil {
		err = s.hub.SetHubKeys(keys)
	}
	if err != nil {
		s.log.Error("reload: hub keys not reloaded; keeping the current ones", "err", err)
		return
	}
	s.log.Info("reload: hub keys reloaded")
}

// iceServers builds the ICE server list handed to clients: STUN, and TURN
// over UDP, TCP and (with a certificate) TLS, with a fresh credential.
func iceServers(ts *turnserver.Server, fixedHost string, turnPort, tlsPort int, ttl time.Duration) func(string) proto.ICEConfig {
	return func(reqHost string) proto.ICEConfig {
		host := fixedHost
		if host == "" {
			host = reqHost
		}
		var id [8]byte
		_, _ = rand.Read(id[:])
		user, pass, _ := ts.Credential(hex.EncodeToString(id[:]))
		hp := net.JoinHostPort(host, strconv.Itoa(turnPort))
		turn := proto.ICEServer{
			URLs:       []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"},
			Username:   user,
			Credential: pass,
		}
		if tlsPort > 0 {
			turn.URLs = append(turn.URLs, "turns:"+net.JoinHostPort(host, strconv.Itoa(tlsPort))+"?transport=tcp")
		}
		return proto.ICEConfig{
			Servers: []proto.ICEServer{{URLs: []string{"stun:" + hp}}, turn},
			TTL:     int(ttl.Seconds()),
		}
	}
}

func portOf(a net.Addr) int {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return int(ap.Port())
	}
	return 0
}
