package server

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/turnserver"
	"github.com/tryst-chat/tryst/web"
)

// Config is every setting of `tryst serve`. Each field is the setting of
// the flag named in its comment; start from DefaultConfig. New fills no
// zero field with a default: a zero is a setting, checked like any other.
type Config struct {
	Listen        string // --listen: hub and web, HOST:PORT (HTTPS/WSS with a certificate)
	MetricsListen string // --metrics-listen: /metrics and /debug/pprof/
	TURNListen    string // --turn-listen: STUN/TURN over UDP and TCP
	TURNTLSListen string // --turn-tls-listen: TURN over TLS, with a certificate
	// ReadyFile (--ready-file), when set, receives Addrs as JSON once every
	// listener is bound (see Run and writeReadyFile).
	ReadyFile string

	// TURNSecretFile (--turn-secret-file) holds TURN REST secrets, one per
	// line: the first signs, all verify. Reload rereads it.
	TURNSecretFile string
	// TURNSecret holds secrets in the same format, used when TURNSecretFile
	// is empty; `tryst serve` passes TRYST_TURN_SECRET. With neither, a
	// random secret is generated for the run.
	TURNSecret string
	// TokenSecretFile (--token-secret-file), when set, turns on access
	// control: the hub's TokenSecrets, read with hub.ParseTokenSecrets.
	TokenSecretFile string
	// HubKeyFile (--hub-key-file) holds the hub keys, one per line (the
	// first signs resume tokens, all verify): the hub recreates rooms from
	// the tokens of their members after a restart, and nodes that share
	// rooms share the file. Reload rereads it. Without it, the key is the
	// state directory's.
	HubKeyFile string
	// Store (--store) is where rooms live: "memory" (the default, this
	// process) or a Redis URL, redis://HOST:PORT/DB or rediss:// for TLS,
	// shared by every node that serves the same rooms. The URL must carry
	// no password: StorePasswordFile, or StorePassword (`tryst serve`
	// passes TRYST_STORE_PASSWORD).
	Store             string
	StorePasswordFile string
	StorePassword     string
	// StateDir (--state-dir) is serve's own state: the hub key is kept
	// there (hub-key, 0600; generated on first start) unless HubKeyFile
	// is set. Empty, or a directory that cannot be written: a random key
	// for the run (a warning in the log), and rooms do not survive a
	// restart. `tryst serve` defaults it to settings.StateDir.
	StateDir string
	// TLSCert and TLSKey (--tls-cert, --tls-key) are PEM files for
	// HTTPS/WSS and TURNS, both or neither; replaced in place, they are
	// picked up within seconds, and at once by Reload.
	TLSCert, TLSKey string

	PublicIP             netip.Addr     // --public-ip: IPv4 advertised for relays
	TURNHost             string         // --turn-host: host in ICE server URLs; default PublicIP, else the request's host
	Realm                string         // --realm
	TURNTTL              time.Duration  // --turn-ttl: lifetime of the credentials handed to clients, 1m..24h
	TURNMaxCredentialTTL time.Duration  // --turn-max-credential-ttl: at least TURNTTL
	TURNRelayPortMin     int            // --turn-relay-ports, lower end
	TURNRelayPortMax     int            // --turn-relay-ports, upper end
	TURNAllowPeers       []netip.Prefix // --turn-allow-peer
	TURNDenyPeers        []netip.Prefix // --turn-deny-peer
	AllowLoopbackPeers   bool           // --allow-loopback-peers
	TURNUserQuota        int            // --turn-user-quota
	TURNMaxAllocations   int            // --turn-max-allocations
	TURNAllocationsPerIP int            // --turn-allocations-per-ip: positive, or -1 for unlimited
	TURNBandwidth        int64          // --turn-bandwidth: bytes/s per allocation, 0 = unlimited
	TURNBandwidthTotal   int64          // --turn-bandwidth-total: bytes/s in total, 0 = unlimited
	TURNMaxLifetime      time.Duration  // --turn-max-lifetime
	TURNSockets          int            // --turn-sockets: 0..256, 0 = one per core
	TURNDisableDataPlane bool           // --turn-dataplane=off

	// ProxyProtocolFrom (--proxy-protocol-from) lists the load balancers
	// that open every connection to the hub with a PROXY protocol header
	// (v1 or v2: HAProxy send-proxy-v2): from them the header is required
	// and its client address is the one per-address limits count. Anybody
	// else connects as before, its header (if any) not read.
	ProxyProtocolFrom []netip.Prefix
	Origins           []string      // --origin: host patterns or full origins
	RoomTTL           time.Duration // --room-ttl
	MaxConnsPerIP     int           // --max-conns-per-ip
	CredentialsPerIP  int           // --credentials-per-ip: positive, or -1 for unlimited
	RoomsPerIP        int           // --rooms-per-ip: burst of room creation per address (one more every 3 s), or -1 for unlimited
	IdleRoomsPerIP    int           // --idle-rooms-per-ip: rooms with nobody connected per creating address, or -1 for unlimited
	CredentialRefill  time.Duration // --credential-refill
	// DrainDelay (--drain-delay) is how long Run, told to stop, keeps
	// serving while /readyz answers 503 and new WebSockets are refused
	// (503 draining), so that a load balancer sees the node go unready
	// before its members are asked to reconnect; 0 skips it.
	DrainDelay   time.Duration
	DrainTimeout time.Duration // --drain-timeout: Run's graceful shutdown budget, after DrainDelay

	// Version is reported in tryst_build_info and the start-up log.
	Version string
	// Logger receives every component's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of `tryst serve`. The relay's are
// turnserver's own.
func DefaultConfig() Config {
	return Config{
		Listen:        ":8080",
		MetricsListen: "127.0.0.1:9464",
		TURNListen:    turnserver.DefaultListenAddr,
		// turnserver's default TLS address, which it does not export.
		TURNTLSListen:        ":5349",
		Realm:                turnserver.DefaultRealm,
		TURNTTL:              turnserver.DefaultCredentialTTL,
		TURNMaxCredentialTTL: turnserver.DefaultMaxCredentialTTL,
		TURNRelayPortMin:     turnserver.DefaultRelayPortMin,
		TURNRelayPortMax:     turnserver.DefaultRelayPortMax,
		TURNUserQuota:        turnserver.DefaultUserQuota,
		TURNMaxAllocations:   turnserver.DefaultMaxAllocations,
		TURNAllocationsPerIP: turnserver.DefaultAllocationsPerIP,
		TURNMaxLifetime:      turnserver.DefaultMaxLifetime,
		Store:                "memory",
		RoomTTL:              30 * time.Minute,
		MaxConnsPerIP:        32,
		CredentialsPerIP:     30,
		RoomsPerIP:           20,
		IdleRoomsPerIP:       16,
		CredentialRefill:     2 * time.Second,
		DrainDelay:           5 * time.Second,
		DrainTimeout:         10 * time.Second,
		Version:              "dev",
	}
}

// Validate reports the first setting error as New would, reading the
// secret and certificate files but opening nothing and logging nothing.
func (c Config) Validate() error {
	c.Logger = nil
	_, err := c.prepare()
	return err
}

// prepared is a valid Config turned into the components' configs, its
// files read; nothing is open yet.
type prepared struct {
	turn      turnserver.Config
	hub       hub.Config
	certs     *certReloader // nil without TLS
	generated bool          // the TURN secret is random, for this run
	hubKeys   [][]byte      // HubKeyFile's; nil without it
	storePass string        // the Redis password, from StorePasswordFile or StorePassword
}

// prepare checks every setting and reads the files. Every error it returns
// is a *SettingError: New calls it before opening a single listener.
func (c Config) prepare() (*prepared, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, check := range []func() error{c.checkAddrs, c.checkDurations, c.checkLimits, c.checkReadyFile} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	p := &prepared{}
	turnSecrets, generated, err := c.turnSecrets(log)
	if err != nil {
		return nil, err
	}
	p.generated = generated
	var tokenSecrets [][]byte
	if c.TokenSecretFile != "" {
		if tokenSecrets, err = readSecretFile("--token-secret-file", c.TokenSecretFile, hub.ParseTokenSecrets, log); err != nil {
			return nil, err
		}
	}
	if c.HubKeyFile != "" {
		if p.hubKeys, err = readSecretFile("--hub-key-file", c.HubKeyFile, hub.ParseHubKeys, log); err != nil {
			return nil, err
		}
	}
	if p.storePass, err = c.storePassword(log); err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if c.TLSCert != "" {
		if p.certs, err = newCertReloader(c.TLSCert, c.TLSKey); err != nil {
			return nil, &SettingError{"--tls-cert/--tls-key", err}
		}
		p.certs.log = log.With("component", "tls")
		tlsConfig = p.certs.config()
	}
	p.turn = c.turnConfig(turnSecrets, tlsConfig, log)
	p.hub = c.hubConfig(tokenSecrets, log)
	p.hub.HubKeys = p.hubKeys
	// The checks above name the setting; the components' own, which would
	// catch most of the same mistakes naming only a Config field, are the
	// backstop for whatever those do not cover.
	if err := p.turn.Validate(); err != nil {
		return nil, &SettingError{"TURN settings", err}
	}
	if err := p.hub.Validate(); err != nil {
		return nil, &SettingError{"hub settings", err}
	}
	return p, nil
}

func bad(setting, format string, a ...any) error {
	return &SettingError{Setting: setting, Err: fmt.Errorf(format, a...)}
}

func (c Config) checkAddrs() error {
	for _, a := range []struct{ setting, addr string }{
		{"--listen", c.Listen}, {"--metrics-listen", c.MetricsListen},
		{"--turn-listen", c.TURNListen}, {"--turn-tls-listen", c.TURNTLSListen},
	} {
		host, port, err := net.SplitHostPort(a.addr)
		if err != nil {
			return bad(a.setting, "%q is not HOST:PORT", a.addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return bad(a.setting, "bad port in %q", a.addr)
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			return bad(a.setting, "%q is not an IP address", host)
		}
	}
	if c.PublicIP.IsValid() && !c.PublicIP.Is4() {
		return bad("--public-ip", "%v is not an IPv4 address", c.PublicIP)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return bad("--tls-cert", "goes with --tls-key: both or neither")
	}
	for _, o := range c.Origins {
		if _, err := path.Match(strings.ToLower(o), ""); err != nil {
			return bad("--origin", "bad pattern %q: %v", o, err)
		}
	}
	return nil
}

func (c Config) checkDurations() error {
	switch {
	case c.TURNTTL < time.Minute || c.TURNTTL > 24*time.Hour:
		return bad("--turn-ttl", "%v outside 1m..24h", c.TURNTTL)
	case c.TURNMaxCredentialTTL < c.TURNTTL:
		return bad("--turn-max-credential-ttl", "%v is shorter than --turn-ttl %v: the relay would refuse the credentials the hub hands out",
			c.TURNMaxCredentialTTL, c.TURNTTL)
	case c.RoomTTL < time.Second:
		return bad("--room-ttl", "%v is too short", c.RoomTTL)
	case c.CredentialRefill <= 0:
		return bad("--credential-refill", "%v must be positive", c.CredentialRefill)
	case c.DrainDelay < 0:
		return bad("--drain-delay", "%v is negative (0 = none)", c.DrainDelay)
	case c.DrainTimeout <= 0:
		return bad("--drain-timeout", "%v must be positive", c.DrainTimeout)
	}
	return nil
}

func (c Config) checkLimits() error {
	switch {
	case c.CredentialsPerIP == 0 || c.CredentialsPerIP < -1:
		return bad("--credentials-per-ip", "%d: use a positive budget, or -1 for unlimited", c.CredentialsPerIP)
	case c.RoomsPerIP == 0 || c.RoomsPerIP < -1:
		return bad("--rooms-per-ip", "%d: use a positive burst, or -1 for unlimited", c.RoomsPerIP)
	case c.IdleRoomsPerIP == 0 || c.IdleRoomsPerIP < -1:
		return bad("--idle-rooms-per-ip", "%d: use a positive cap, or -1 for unlimited", c.IdleRoomsPerIP)
	case c.TURNAllocationsPerIP == 0 || c.TURNAllocationsPerIP < -1:
		return bad("--turn-allocations-per-ip", "%d: use a positive cap, or -1 for unlimited", c.TURNAllocationsPerIP)
	case c.TURNSockets < 0 || c.TURNSockets > 256:
		return bad("--turn-sockets", "%d outside 0..256", c.TURNSockets)
	case c.TURNBandwidth < 0:
		return bad("--turn-bandwidth", "%d is negative (0 = unlimited)", c.TURNBandwidth)
	case c.TURNBandwidthTotal < 0:
		return bad("--turn-bandwidth-total", "%d is negative (0 = unlimited)", c.TURNBandwidthTotal)
	}
	return nil
}

// turnSecrets reads the TURN secrets: the file, else TURNSecret, else a
// random secret for this run (generated true).
func (c Config) turnSecrets(log *slog.Logger) (secrets [][]byte, generated bool, err error) {
	switch {
	case c.TURNSecretFile != "":
		secrets, err = readSecretFile("--turn-secret-file", c.TURNSecretFile, parseTURNSecrets, log)
		return secrets, false, err
	case c.TURNSecret != "":
		if secrets, err = parseTURNSecrets([]byte(c.TURNSecret)); err != nil {
			return nil, false, &SettingError{"TRYST_TURN_SECRET", err}
		}
		return secrets, false, nil
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	return [][]byte{[]byte(base64.RawStdEncoding.EncodeToString(raw[:]))}, true, nil
}

func (c Config) turnConfig(secrets [][]byte, tlsConfig *tls.Config, log *slog.Logger) turnserver.Config {
	return turnserver.Config{
		ListenAddr:             c.TURNListen,
		TLSListenAddr:          c.TURNTLSListen,
		TLSConfig:              tlsConfig,
		PublicIP:               c.PublicIP,
		Realm:                  c.Realm,
		RelayPortMin:           c.TURNRelayPortMin,
		RelayPortMax:           c.TURNRelayPortMax,
		Secrets:                secrets,
		CredentialTTL:          c.TURNTTL,
		MaxCredentialTTL:       c.TURNMaxCredentialTTL,
		MaxLifetime:            c.TURNMaxLifetime,
		AllowPeers:             c.TURNAllowPeers,
		DenyPeers:              c.TURNDenyPeers,
		AllowLoopbackPeers:     c.AllowLoopbackPeers,
		UserQuota:              c.TURNUserQuota,
		MaxAllocations:         c.TURNMaxAllocations,
		AllocationsPerIP:       c.TURNAllocationsPerIP,
		BandwidthPerAllocation: c.TURNBandwidth,
		BandwidthTotal:         c.TURNBandwidthTotal,
		Sockets:                c.TURNSockets,
		DisableDataPlane:       c.TURNDisableDataPlane,
		Logger:                 log.With("component", "turn"),
	}
}

func (c Config) hubConfig(tokenSecrets [][]byte, log *slog.Logger) hub.Config {
	return hub.Config{
		Web:           web.Handler(),
		RoomTTL:       c.RoomTTL,
		Origins:       c.Origins,
		TokenSecrets:  tokenSecrets,
		MaxConnsPerIP: c.MaxConnsPerIP,
		// CredentialBurst -1 turns the budget off.
		CredentialBurst: c.CredentialsPerIP,
		CredentialRate:  rate.Every(c.CredentialRefill),
		// -1 turns these off.
		RoomBurst:         c.RoomsPerIP,
		MaxIdleRoomsPerIP: c.IdleRoomsPerIP,
		Logger:            log.With("component", "hub"),
	}
}
