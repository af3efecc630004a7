package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/turnserver"
	"github.com/tryst-chat/tryst/web"
)

// serveConfig is every setting of `tryst serve`.
type serveConfig struct {
	configFile     string
	listen         string
	metricsListen  string
	turnListen     string
	turnTLSListen  string
	turnSecretFile string
	turnRelayPorts string
	turnAllowPeer  listFlag
	turnDenyPeer   listFlag
	turnUserQuota  int
	turnMaxAllocs  int
	turnBandwidth  int64
	turnBWTotal    int64
	turnMaxLife    time.Duration
	turnMaxCredTTL time.Duration
	turnPerIP      int
	turnDataplane  string
	turnSockets    int
	turnHost       string
	publicIP       string
	realm          string
	turnTTL        time.Duration
	allowLoopback  bool
	origins        listFlag
	tlsCert        string
	tlsKey         string
	tokenSecret    string
	roomTTL        time.Duration
	maxConnsPerIP  int
	credsPerIP     int
	credRefill     time.Duration
	drainTimeout   time.Duration
	logFormat      string
	logLevel       string
}

func serveFlags(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("tryst serve", flag.ContinueOnError)
	fs.StringVar(&c.configFile, "config", "", "optional YAML file of settings (keys are flag names)")
	fs.StringVar(&c.listen, "listen", ":8080", "hub and web address (HTTP, or HTTPS with --tls-cert)")
	fs.StringVar(&c.metricsListen, "metrics-listen", "127.0.0.1:9464", "metrics and debug address: keep it private")
	fs.StringVar(&c.turnListen, "turn-listen", ":3478", "STUN/TURN address, UDP and TCP")
	fs.StringVar(&c.turnTLSListen, "turn-tls-listen", ":5349", "TURN over TLS address, used with --tls-cert")
	fs.StringVar(&c.turnSecretFile, "turn-secret-file", "", "file of TURN REST secrets, one per line (first signs, all verify); or set TRYST_TURN_SECRET; random when neither")
	fs.StringVar(&c.turnRelayPorts, "turn-relay-ports", "49152-65535", "relay port range")
	fs.Var(&c.turnAllowPeer, "turn-allow-peer", "CIDRs TURN may relay to despite the default deny (repeatable, comma-separated)")
	fs.Var(&c.turnDenyPeer, "turn-deny-peer", "CIDRs TURN never relays to (repeatable, comma-separated; wins over allow)")
	fs.IntVar(&c.turnUserQuota, "turn-user-quota", 10, "TURN allocations per credential")
	fs.IntVar(&c.turnMaxAllocs, "turn-max-allocations", 10000, "TURN allocations on the server")
	fs.Int64Var(&c.turnBandwidth, "turn-bandwidth", 0, "bytes/s relayed per allocation, 0 = unlimited")
	fs.Int64Var(&c.turnBWTotal, "turn-bandwidth-total", 0, "bytes/s relayed in total, 0 = unlimited")
	fs.DurationVar(&c.turnMaxLife, "turn-max-lifetime", 12*time.Hour, "longest life of a refreshed TURN allocation")
	fs.DurationVar(&c.turnMaxCredTTL, "turn-max-credential-ttl", turnserver.DefaultMaxCredentialTTL,
		"refuse TURN credentials whose expiry lies further ahead than this (at least --turn-ttl)")
	fs.IntVar(&c.turnPerIP, "turn-allocations-per-ip", turnserver.DefaultAllocationsPerIP,
		"TURN allocations per source IPv4 address or IPv6 /64 (-1 = unlimited)")
	fs.StringVar(&c.turnDataplane, "turn-dataplane", "auto",
		"TURN data plane: auto (Linux epoll fast path where available) or off (pion's portable path)")
	fs.IntVar(&c.turnSockets, "turn-sockets", 0, "UDP sockets with SO_REUSEPORT, 0 = one per core")
	fs.StringVar(&c.turnHost, "turn-host", "", "host name or IP put in ICE server URLs; default --public-ip, else the host clients used to reach the hub")
	fs.StringVar(&c.publicIP, "public-ip", "", "public IPv4 address advertised for TURN relays")
	fs.StringVar(&c.realm, "realm", "tryst", "TURN realm")
	fs.DurationVar(&c.turnTTL, "turn-ttl", 10*time.Minute, "lifetime of the TURN credentials handed to clients")
	fs.BoolVar(&c.allowLoopback, "allow-loopback-peers", false, "let TURN relay to loopback addresses (tests and local development only)")
	fs.Var(&c.origins, "origin", "allowed browser origins, as host patterns or full origins (repeatable); same-origin when unset")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate (PEM) for HTTPS/WSS and TURNS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&c.tokenSecret, "token-secret-file", "", "file of HS256 secrets: when set, creating a room and /v1/ice need a signed access token")
	fs.DurationVar(&c.roomTTL, "room-ttl", 30*time.Minute, "how long a room outlives its last connected member")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 32, "simultaneous hub connections per IP (-1 = unlimited)")
	fs.IntVar(&c.credsPerIP, "credentials-per-ip", 30, "TURN credentials the hub hands out per IP in a burst (create, join, resume, /v1/ice; -1 = unlimited)")
	fs.DurationVar(&c.credRefill, "credential-refill", 2*time.Second, "one more credential per IP every this long")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 10*time.Second, "time allowed for a graceful shutdown")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return fs
}

// usageError is a bad setting: main exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badSetting(format string, a ...any) error {
	return usageError{fmt.Errorf(format, a...)}
}

// parseServe reads the command line, environment and config file.
func parseServe(args []string, getenv func(string) (string, bool), stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{}
	fs := serveFlags(c)
	// A bad flag is reported in one line by main; the flag list is printed
	// only when asked for with -h.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "Usage: tryst serve [flags]\n\nEvery flag is also a TRYST_<NAME> environment variable and a key of the --config YAML file\n(precedence: flag > environment > file > default).\n\nFlags:")
			fs.PrintDefaults()
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, badSetting("unexpected argument %q (secrets are never taken on the command line)", fs.Arg(0))
	}
	if err := layerSettings(fs, getenv); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// built is what a serveConfig turns into.
type built struct {
	hubCfg      hub.Config
	turnCfg     turnserver.Config
	tls         *tls.Config
	certs       *certReloader // nil without TLS
	logger      *slog.Logger
	turnSecrets [][]byte
	generated   bool
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, badSetting("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, badSetting("--log-format: %q is not text or json", format)
}

func parsePrefixes(name string, vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, badSetting("--%s: %q is not a CIDR", name, v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func checkAddr(name, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return badSetting("--%s: %q is not HOST:PORT", name, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return badSetting("--%s: bad port in %q", name, addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return badSetting("--%s: %q is not an IP address", name, host)
	}
	return nil
}

// build validates c and assembles the component configs.
func (c *serveConfig) build(getenv func(string) (string, bool), stderr io.Writer) (*built, error) {
	b := &built{}
	var err error
	if b.logger, err = newLogger(c.logFormat, c.logLevel, stderr); err != nil {
		return nil, err
	}
	for name, addr := range map[string]string{"listen": c.listen, "metrics-listen": c.metricsListen, "turn-listen": c.turnListen, "turn-tls-listen": c.turnTLSListen} {
		if err := checkAddr(name, addr); err != nil {
			return nil, err
		}
	}
	if c.turnTTL < time.Minute || c.turnTTL > 24*time.Hour {
		return nil, badSetting("--turn-ttl: %v outside 1m..24h", c.turnTTL)
	}
	if c.roomTTL < time.Second {
		return nil, badSetting("--room-ttl: %v is too short", c.roomTTL)
	}
	if c.drainTimeout <= 0 {
		return nil, badSetting("--drain-timeout must be positive")
	}

	// The TURN secret: a file, or the environment, never argv.
	switch {
	case c.turnSecretFile != "":
		if b.turnSecrets, err = readSecretFile("turn-secret-file", c.turnSecretFile, parseTURNSecrets, b.logger); err != nil {
			return nil, err
		}
	default:
		if v, ok := getenv("TRYST_TURN_SECRET"); ok && v != "" {
			if b.turnSecrets, err = parseTURNSecrets([]byte(v)); err != nil {
				return nil, badSetting("TRYST_TURN_SECRET: %v", err)
			}
		} else {
			var raw [32]byte
			_, _ = rand.Read(raw[:])
			b.turnSecrets = [][]byte{[]byte(base64.RawStdEncoding.EncodeToString(raw[:]))}
			b.generated = true
		}
	}

	var tokenSecrets [][]byte
	if c.tokenSecret != "" {
		if tokenSecrets, err = readSecretFile("token-secret-file", c.tokenSecret, hub.ParseTokenSecrets, b.logger); err != nil {
			return nil, err
		}
	}

	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, badSetting("--tls-cert and --tls-key go together")
	}
	if c.tlsCert != "" {
		if b.certs, err = newCertReloader(c.tlsCert, c.tlsKey); err != nil {
			return nil, badSetting("--tls-cert/--tls-key: %v", err)
		}
		b.certs.log = b.logger.With("component", "tls")
		b.tls = b.certs.config()
	}

	var publicIP netip.Addr
	if c.publicIP != "" {
		if publicIP, err = netip.ParseAddr(c.publicIP); err != nil || !publicIP.Is4() {
			return nil, badSetting("--public-ip: %q is not an IPv4 address", c.publicIP)
		}
	}
	lo, hi, err := turnserver.ParsePortRange(c.turnRelayPorts)
	if err != nil {
		return nil, badSetting("--turn-relay-ports: %v", err)
	}
	allow, err := parsePrefixes("turn-allow-peer", c.turnAllowPeer)
	if err != nil {
		return nil, err
	}
	deny, err := parsePrefixes("turn-deny-peer", c.turnDenyPeer)
	if err != nil {
		return nil, err
	}
	// The checks below name the flag; turnserver's Validate, further down,
	// would catch the same mistakes but could only name a Config field.
	if c.turnMaxCredTTL < c.turnTTL {
		return nil, badSetting("--turn-max-credential-ttl: %v is shorter than --turn-ttl %v: the relay would refuse the credentials the hub hands out",
			c.turnMaxCredTTL, c.turnTTL)
	}
	if c.credsPerIP == 0 || c.credsPerIP < -1 {
		return nil, badSetting("--credentials-per-ip: %d: use a positive budget, or -1 for unlimited", c.credsPerIP)
	}
	if c.credRefill <= 0 {
		return nil, badSetting("--credential-refill: %v must be positive", c.credRefill)
	}
	if c.turnPerIP == 0 || c.turnPerIP < -1 {
		return nil, badSetting("--turn-allocations-per-ip: %d: use a positive cap, or -1 for unlimited", c.turnPerIP)
	}
	var disableDataPlane bool
	switch c.turnDataplane {
	case "auto":
	case "off":
		disableDataPlane = true
	default:
		return nil, badSetting("--turn-dataplane: %q is not auto or off", c.turnDataplane)
	}
	if c.turnSockets < 0 || c.turnSockets > 256 {
		return nil, badSetting("--turn-sockets: %d outside 0..256", c.turnSockets)
	}
	if c.turnBandwidth < 0 {
		return nil, badSetting("--turn-bandwidth: %d is negative (0 = unlimited)", c.turnBandwidth)
	}
	if c.turnBWTotal < 0 {
		return nil, badSetting("--turn-bandwidth-total: %d is negative (0 = unlimited)", c.turnBWTotal)
	}
	for _, o := range c.origins {
		if _, err := path.Match(strings.ToLower(o), ""); err != nil {
			return nil, badSetting("--origin: bad pattern %q: %v", o, err)
		}
	}
	b.turnCfg = turnserver.Config{
		ListenAddr:             c.turnListen,
		TLSListenAddr:          c.turnTLSListen,
		TLSConfig:              b.tls,
		PublicIP:               publicIP,
		Realm:                  c.realm,
		RelayPortMin:           lo,
		RelayPortMax:           hi,
		Secrets:                b.turnSecrets,
		CredentialTTL:          c.turnTTL,
		MaxCredentialTTL:       c.turnMaxCredTTL,
		MaxLifetime:            c.turnMaxLife,
		AllowPeers:             allow,
		DenyPeers:              deny,
		AllowLoopbackPeers:     c.allowLoopback,
		UserQuota:              c.turnUserQuota,
		MaxAllocations:         c.turnMaxAllocs,
		AllocationsPerIP:       c.turnPerIP,
		BandwidthPerAllocation: c.turnBandwidth,
		BandwidthTotal:         c.turnBWTotal,
		Sockets:                c.turnSockets,
		DisableDataPlane:       disableDataPlane,
		Logger:                 b.logger.With("component", "turn"),
	}
	b.hubCfg = hub.Config{
		Web:           web.Handler(),
		RoomTTL:       c.roomTTL,
		Origins:       c.origins,
		TokenSecrets:  tokenSecrets,
		MaxConnsPerIP: c.maxConnsPerIP,
		// CredentialBurst -1 turns the budget off.
		CredentialBurst: c.credsPerIP,
		CredentialRate:  rate.Every(c.credRefill),
		Logger:          b.logger.With("component", "hub"),
	}
	// Every setting error must surface here, as exit status 2, before
	// startServer opens a single listener: the components' own checks are
	// the backstop for whatever the flag checks above do not cover.
	if err := b.turnCfg.Validate(); err != nil {
		return nil, badSetting("TURN settings: %v", err)
	}
	if err := b.hubCfg.Validate(); err != nil {
		return nil, badSetting("hub settings: %v", err)
	}
	return b, nil
}

// parseTURNSecrets parses TURN secrets (a file, or TRYST_TURN_SECRET) and
// refuses any shorter than turnserver.MinSecretLen: a short HMAC key can be
// guessed offline from a single credential.
func parseTURNSecrets(data []byte) ([][]byte, error) {
	secrets, err := turnserver.ParseSecrets(data)
	if err != nil {
		return nil, err
	}
	for i, s := range secrets {
		if len(s) < turnserver.MinSecretLen {
			return nil, fmt.Errorf("secret %d is %d bytes: at least %d bytes are needed (e.g. head -c 32 /dev/urandom | base64)",
				i+1, len(s), turnserver.MinSecretLen)
		}
	}
	return secrets, nil
}

// readSecretFile reads the secrets file given to --flagName with parse. A
// file that group or others may read gets a warning naming the file and its
// mode, never its content: whoever reads it can mint credentials.
func readSecretFile(flagName, file string, parse func([]byte) ([][]byte, error), log *slog.Logger) ([][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, badSetting("--%s: %v", flagName, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, badSetting("--%s: %v", flagName, err)
	}
	secrets, err := parse(data)
	if err != nil {
		return nil, badSetting("--%s %s: %v", flagName, file, err)
	}
	// The mode of the file actually read, through any symlink (a
	// Kubernetes Secret volume is made of them).
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("secret file is readable by group or others: restrict it to the service user (chmod 600)",
			"flag", "--"+flagName, "file", file, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	return secrets, nil
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

// server is a running `tryst serve`.
type server struct {
	cfg     *serveConfig
	log     *slog.Logger
	hub     *hub.Hub
	turn    *turnserver.Server
	web     *http.Server
	metrics *http.Server
	webLn   net.Listener
	metLn   net.Listener
	certs   *certReloader
	errc    chan error
}

// startServer opens every listener and starts serving. On error, whatever
// was opened is closed again.
func startServer(c *serveConfig, b *built) (_ *server, err error) {
	s := &server{cfg: c, log: b.logger, errc: make(chan error, 2)}
	defer func() {
		if err != nil {
			s.closeNow()
		}
	}()
	reg, err := metrics.NewRegistry(versionString())
	if err != nil {
		return nil, err
	}
	hm, err := metrics.NewHub(reg)
	if err != nil {
		return nil, err
	}
	if b.certs != nil {
		expiry, err := metrics.NewTLSExpiry(reg)
		if err != nil {
			return nil, err
		}
		b.certs.mu.Lock()
		b.certs.onLoad = func(t time.Time) { expiry.Set(float64(t.Unix())) }
		expiry.Set(float64(b.certs.cert.Leaf.NotAfter.Unix()))
		b.certs.mu.Unlock()
		s.certs = b.certs
		// ACME clients renew certificates in place; pick them up within
		// seconds (SIGHUP reloads at once).
		s.certs.watch(5 * time.Second)
	}
	if b.turnCfg.Metrics, err = metrics.NewTURN(reg); err != nil {
		return nil, err
	}
	// The allocation cap is exported for the "near the cap" alert; a
	// negative cap means unlimited and exports nothing.
	if limit := b.turnCfg.MaxAllocations; limit >= 0 {
		if limit == 0 {
			limit = turnserver.DefaultMaxAllocations
		}
		if _, err := metrics.NewTURNAllocationsLimit(reg, limit); err != nil {
			return nil, err
		}
	}
	if s.turn, err = turnserver.New(b.turnCfg); err != nil {
		return nil, fmt.Errorf("start TURN server: %w", err)
	}
	tlsPort := 0
	if b.tls != nil {
		tlsPort = portOf(s.turn.TLSAddr())
	}
	host := c.turnHost
	if host == "" {
		host = c.publicIP
	}
	b.hubCfg.Metrics = hm
	b.hubCfg.ICE = iceServers(s.turn, host, portOf(s.turn.UDPAddr()), tlsPort, c.turnTTL)
	if s.hub, err = hub.New(b.hubCfg); err != nil {
		return nil, fmt.Errorf("start hub: %w", err)
	}

	if s.webLn, err = net.Listen("tcp", c.listen); err != nil {
		return nil, fmt.Errorf("listen %s: %w", c.listen, err)
	}
	if b.tls != nil {
		s.webLn = tls.NewListener(s.webLn, b.tls)
	}
	if s.metLn, err = net.Listen("tcp", c.metricsListen); err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", c.metricsListen, err)
	}
	// Read-header and idle timeouts keep slow or idle clients from holding
	// sockets; there is no write timeout because WebSockets are long-lived.
	s.web = &http.Server{
		Handler:           s.hub,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(b.logger.Handler(), slog.LevelDebug),
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { s.errc <- serveHTTP(s.web, s.webLn) }()
	go func() { s.errc <- serveHTTP(s.metrics, s.metLn) }()

	scheme := "http"
	if b.tls != nil {
		scheme = "https"
	}
	s.log.Info("tryst serving", "version", versionString(),
		"hub", scheme+"://"+s.webLn.Addr().String(), "metrics", "http://"+s.metLn.Addr().String()+"/metrics",
		"turn_udp", s.turn.UDPAddr().String(), "turn_tcp", s.turn.TCPAddr().String())
	if b.generated {
		s.log.Warn("no TURN secret configured: generated a random one for this run; set --turn-secret-file or TRYST_TURN_SECRET to share it with other nodes or coturn")
	}
	if c.allowLoopback {
		s.log.Warn("TURN may relay to loopback addresses (--allow-loopback-peers): for tests and local development only")
	}
	return s, nil
}

func serveHTTP(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// reloadSecrets rereads the TURN secrets file (on SIGHUP): the first line
// signs from now on, all lines verify, live allocations carry on.
func (s *server) reloadSecrets() {
	if s.cfg.turnSecretFile == "" {
		s.log.Warn("SIGHUP: no --turn-secret-file to reload")
		return
	}
	secrets, err := readSecretFile("turn-secret-file", s.cfg.turnSecretFile, parseTURNSecrets, s.log)
	if err == nil {
		err = s.turn.SetSecrets(secrets)
	}
	if err != nil {
		s.log.Error("SIGHUP: TURN secrets not reloaded; keeping the current ones", "err", err)
		return
	}
	s.log.Info("SIGHUP: TURN secrets reloaded")
}

// wait blocks until ctx ends (a signal) or a listener fails, then drains.
// SIGHUP reloads the TURN secrets meanwhile.
func (s *server) wait(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var err error
loop:
	for {
		select {
		case <-hup:
			s.reloadSecrets()
			if s.certs != nil {
				s.certs.reload()
			}
			continue
		case <-ctx.Done():
			s.log.Info("shutting down", "drain_timeout", s.cfg.drainTimeout)
		case err = <-s.errc:
			if err != nil {
				err = fmt.Errorf("serve: %w", err)
				s.log.Error("listener failed; shutting down", "err", err)
			}
		}
		break loop
	}
	if serr := s.shutdown(s.cfg.drainTimeout); err == nil {
		err = serr
	}
	return err
}

// shutdown stops accepting, tells clients to reconnect elsewhere, and
// waits up to timeout for them to go.
func (s *server) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.web.Shutdown(ctx)
	if herr := s.hub.Shutdown(ctx); err == nil {
		err = herr
	}
	if terr := s.turn.Close(); err == nil {
		err = terr
	}
	if merr := s.metrics.Shutdown(ctx); err == nil {
		err = merr
	}
	if s.certs != nil {
		s.certs.close()
	}
	return err
}

func (s *server) closeNow() {
	if s.web != nil {
		s.web.Close()
	} else if s.webLn != nil {
		s.webLn.Close()
	}
	if s.metrics != nil {
		s.metrics.Close()
	} else if s.metLn != nil {
		s.metLn.Close()
	}
	if s.hub != nil {
		s.hub.Close()
	}
	if s.turn != nil {
		s.turn.Close()
	}
	if s.certs != nil {
		s.certs.close()
	}
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	getenv := os.LookupEnv
	c, err := parseServe(args, getenv, stderr)
	if err != nil {
		return err
	}
	b, err := c.build(getenv, stderr)
	if err != nil {
		return err
	}
	s, err := startServer(c, b)
	if err != nil {
		return err
	}
	return s.wait(ctx)
}
