package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/tryst-chat/tryst/internal/gctune"
	"github.com/tryst-chat/tryst/internal/server"
	"github.com/tryst-chat/tryst/internal/settings"
)

// serveOptions is every setting of `tryst serve`: the server's Config, and
// what the command turns into parts of it.
type serveOptions struct {
	server.Config
	configFile string
	dataplane  string // auto or off: Config.TURNDisableDataPlane
	logFormat  string
	logLevel   string
	// contention turns on the runtime's mutex and block profiles
	// (/debug/pprof/mutex and /block on the metrics listener). Off by
	// default: sampling costs a little on every contended lock.
	contention bool
	// gcFloorMiB is the heap the garbage collector may grow to before it
	// collects, however small the live heap (see internal/gctune); 0
	// leaves GOGC alone.
	gcFloorMiB int
}

func newServeOptions() *serveOptions {
	return &serveOptions{Config: server.DefaultConfig(), dataplane: "auto", logFormat: "text", logLevel: "info", gcFloorMiB: 64}
}

// serveFlags defines the flags of `tryst serve` on o, whose values are the
// defaults shown.
func serveFlags(o *serveOptions) *flag.FlagSet {
	c := &o.Config
	fs := flag.NewFlagSet("tryst serve", flag.ContinueOnError)
	fs.StringVar(&o.configFile, "config", o.configFile, "optional YAML file of settings (keys are flag names)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "hub and web address (HTTP, or HTTPS with --tls-cert)")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "metrics and debug address: keep it private")
	fs.StringVar(&c.TURNListen, "turn-listen", c.TURNListen, "STUN/TURN address, UDP and TCP")
	fs.StringVar(&c.TURNTLSListen, "turn-tls-listen", c.TURNTLSListen, "TURN over TLS address, used with --tls-cert")
	fs.StringVar(&c.ReadyFile, "ready-file", c.ReadyFile, "once every listener is bound, write their addresses here as JSON (a file, replaced atomically, or a pipe such as /dev/fd/3)")
	fs.StringVar(&c.TURNSecretFile, "turn-secret-file", c.TURNSecretFile, "file of TURN REST secrets, one per line (first signs, all verify); or set TRYST_TURN_SECRET; random when neither")
	fs.Var(settings.PortRange{Lo: &c.TURNRelayPortMin, Hi: &c.TURNRelayPortMax}, "turn-relay-ports", "relay port range")
	fs.Var((*settings.PrefixList)(&c.TURNAllowPeers), "turn-allow-peer", "CIDRs TURN may relay to despite the default deny (repeatable, comma-separated)")
	fs.Var((*settings.PrefixList)(&c.TURNDenyPeers), "turn-deny-peer", "CIDRs TURN never relays to (repeatable, comma-separated; wins over allow)")
	fs.IntVar(&c.TURNUserQuota, "turn-user-quota", c.TURNUserQuota, "TURN allocations per credential")
	fs.IntVar(&c.TURNMaxAllocations, "turn-max-allocations", c.TURNMaxAllocations, "TURN allocations on the server")
	fs.Int64Var(&c.TURNBandwidth, "turn-bandwidth", c.TURNBandwidth, "bytes/s relayed per allocation, 0 = unlimited")
	fs.Int64Var(&c.TURNBandwidthTotal, "turn-bandwidth-total", c.TURNBandwidthTotal, "bytes/s relayed in total, 0 = unlimited")
	fs.DurationVar(&c.TURNMaxLifetime, "turn-max-lifetime", c.TURNMaxLifetime, "longest life of a refreshed TURN allocation")
	fs.DurationVar(&c.TURNMaxCredentialTTL, "turn-max-credential-ttl", c.TURNMaxCredentialTTL,
		"refuse TURN credentials whose expiry lies further ahead than this (at least --turn-ttl)")
	fs.IntVar(&c.TURNAllocationsPerIP, "turn-allocations-per-ip", c.TURNAllocationsPerIP,
		"TURN allocations per source IPv4 address or IPv6 /64 (-1 = unlimited)")
	fs.StringVar(&o.dataplane, "turn-dataplane", o.dataplane,
		"TURN data plane: auto (Linux epoll fast path where available) or off (pion's portable path)")
	fs.IntVar(&c.TURNSockets, "turn-sockets", c.TURNSockets, "UDP sockets with SO_REUSEPORT, 0 = one per core")
	fs.StringVar(&c.TURNHost, "turn-host", c.TURNHost, "host name or IP put in ICE server URLs; default --public-ip, else the host clients used to reach the hub")
	fs.TextVar(&c.PublicIP, "public-ip", c.PublicIP, "public IPv4 address advertised for TURN relays")
	fs.StringVar(&c.Realm, "realm", c.Realm, "TURN realm")
	fs.DurationVar(&c.TURNTTL, "turn-ttl", c.TURNTTL, "lifetime of the TURN credentials handed to clients")
	fs.BoolVar(&c.AllowLoopbackPeers, "allow-loopback-peers", c.AllowLoopbackPeers, "let TURN relay to loopback addresses (tests and local development only)")
	fs.Var((*settings.PrefixList)(&c.ProxyProtocolFrom), "proxy-protocol-from",
		"addresses (CIDRs) of load balancers that send the PROXY protocol header: from them the header is required and its client address counts for the per-address limits (repeatable, comma-separated)")
	fs.Var((*settings.List)(&c.Origins), "origin", "allowed browser origins, as host patterns or full origins (repeatable); same-origin when unset")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate (PEM) for HTTPS/WSS and TURNS")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key (PEM)")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir,
		"serve's own state (the hub key, kept so that rooms survive a restart); default $XDG_STATE_HOME/tryst, else ~/.local/state/tryst")
	fs.StringVar(&c.HubKeyFile, "hub-key-file", c.HubKeyFile,
		"file of hub keys signing resume tokens, one per line (first signs, all verify), shared by nodes; default: one generated in --state-dir")
	fs.StringVar(&c.TokenSecretFile, "token-secret-file", c.TokenSecretFile, "file of HS256 secrets: when set, creating a room and /v1/ice need a signed access token")
	fs.StringVar(&c.Store, "store", c.Store,
		"where rooms live: memory (this process), or redis://HOST:PORT/DB (rediss:// for TLS) shared by the nodes that serve the same rooms; no password in the URL")
	fs.StringVar(&c.StorePasswordFile, "store-password-file", c.StorePasswordFile, "file holding the Redis password (or set TRYST_STORE_PASSWORD)")
	fs.DurationVar(&c.RoomTTL, "room-ttl", c.RoomTTL, "how long a room outlives its last connected member")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "simultaneous hub connections per IP (-1 = unlimited)")
	fs.IntVar(&c.CredentialsPerIP, "credentials-per-ip", c.CredentialsPerIP, "TURN credentials the hub hands out per IP in a burst (create, join, resume, /v1/ice; -1 = unlimited)")
	fs.IntVar(&c.RoomsPerIP, "rooms-per-ip", c.RoomsPerIP, "rooms an IP may create in a burst, then one every 3 s (-1 = unlimited)")
	fs.IntVar(&c.IdleRoomsPerIP, "idle-rooms-per-ip", c.IdleRoomsPerIP, "rooms with nobody connected an IP may have created and keep (-1 = unlimited)")
	fs.DurationVar(&c.CredentialRefill, "credential-refill", c.CredentialRefill, "one more credential per IP every this long")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "on SIGINT/SIGTERM, how long /readyz answers 503 and new connections are refused before members are asked to reconnect (0 = none)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "time allowed for a graceful shutdown, after --drain-delay")
	fs.StringVar(&o.logFormat, "log-format", o.logFormat, "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "log level: debug, info, warn or error")
	fs.BoolVar(&o.contention, "profile-contention", o.contention,
		"record mutex and block profiles (/debug/pprof/mutex, /debug/pprof/block on --metrics-listen); costs a little on every contended lock")
	fs.IntVar(&o.gcFloorMiB, "gc-floor-mib", o.gcFloorMiB,
		"let the heap grow to this many MiB between garbage collections however little is live (fewer collections under load; GOGC still applies above it; 0 = Go's default)")
	return fs
}

// profile turns on the contention profiles when asked for: one contention
// event in 5, and blocking of 10 µs or more, enough to find where the
// hub's goroutines queue under load.
func (o *serveOptions) profile() {
	if o.contention {
		runtime.SetMutexProfileFraction(5)
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
}

// parseServe reads the command line, environment and config file.
func parseServe(args []string, getenv func(string) (string, bool), stderr io.Writer) (*serveOptions, error) {
	o := newServeOptions()
	fs := serveFlags(o)
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
	if err := settings.Layer(fs, getenv); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

// config completes the server's Config: the logger, the data plane, the
// TURN secret from the environment (never argv), the default state
// directory and the version.
func (o *serveOptions) config(getenv func(string) (string, bool), stderr io.Writer) (server.Config, error) {
	c := o.Config
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.logLevel)); err != nil {
		return c, badSetting("--log-level: %q is not debug, info, warn or error", o.logLevel)
	}
	if o.gcFloorMiB < 0 || o.gcFloorMiB > 1<<20 {
		return c, badSetting("--gc-floor-mib: %d is not between 0 and 1048576", o.gcFloorMiB)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch o.logFormat {
	case "text":
		c.Logger = slog.New(slog.NewTextHandler(stderr, opts))
	case "json":
		c.Logger = slog.New(slog.NewJSONHandler(stderr, opts))
	default:
		return c, badSetting("--log-format: %q is not text or json", o.logFormat)
	}
	switch o.dataplane {
	case "auto", "off":
		c.TURNDisableDataPlane = o.dataplane == "off"
	default:
		return c, badSetting("--turn-dataplane: %q is not auto or off", o.dataplane)
	}
	c.TURNSecret, _ = getenv("TRYST_TURN_SECRET")
	c.StorePassword, _ = getenv("TRYST_STORE_PASSWORD")
	if c.StateDir == "" {
		c.StateDir = settings.StateDir(getenv)
	}
	c.Version = versionString()
	return c, nil
}

// newServe parses the settings and opens every listener. Every setting
// error is a usage error (exit status 2), found before anything listens.
func newServe(args []string, getenv func(string) (string, bool), stderr io.Writer) (*server.Server, *serveOptions, error) {
	o, err := parseServe(args, getenv, stderr)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := o.config(getenv, stderr)
	if err != nil {
		return nil, nil, err
	}
	o.profile()
	s, err := server.New(cfg)
	var se *server.SettingError
	if errors.As(err, &se) {
		return nil, nil, usageError{err}
	}
	return s, o, err
}

// runServe serves until ctx ends (SIGINT, SIGTERM), reloading the TURN
// secrets and the certificate on SIGHUP.
func runServe(ctx context.Context, args []string, std stdio) error {
	s, o, err := newServe(args, std.getenv, std.err)
	if err != nil {
		return err
	}
	defer gctune.Start(uint64(o.gcFloorMiB) << 20).Stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan struct{})
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for {
			select {
			case <-hup:
				s.Reload()
			case <-done:
				return
			}
		}
	}()
	err = s.Run(ctx)
	close(done)
	<-reloads
	return err
}
