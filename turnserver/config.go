package turnserver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/tryst-chat/tryst/metrics"
)

// Defaults filled in by New for zero Config fields.
const (
	DefaultListenAddr     = ":3478"
	DefaultRealm          = "tryst"
	DefaultRelayPortMin   = 49152
	DefaultRelayPortMax   = 65535
	DefaultMaxLifetime    = 12 * time.Hour
	DefaultUserQuota      = 10
	DefaultMaxAllocations = 10000
	// DefaultSourceRate and DefaultSourceBurst bound, per source IP (per /64
	// for IPv6), the unauthenticated requests (Binding, the first Allocate
	// of the nonce exchange) and failed authentications per second.
	DefaultSourceRate  = 20
	DefaultSourceBurst = 60
	// DefaultMaxCredentialTTL bounds how far ahead a credential's expiry
	// may lie: a leaked or cracked credential is not valid for a century.
	DefaultMaxCredentialTTL = 24 * time.Hour
	// DefaultAllocationsPerIP caps allocations per source IP (per /64 for
	// IPv6). A browser holds up to three per call (TURN over UDP, TCP and
	// TLS), so 64 leaves room for a household of devices behind one NAT.
	DefaultAllocationsPerIP = 64
	// DefaultPermissionsPerAllocation and DefaultChannelsPerAllocation cap
	// what one allocation may install: a WebRTC call needs a handful (one per
	// remote candidate address), never hundreds.
	DefaultPermissionsPerAllocation = 64
	DefaultChannelsPerAllocation    = 64
	// MinSecretLen is the shortest TURN secret accepted: an HMAC key
	// shorter than 16 bytes can be guessed from one credential offline.
	MinSecretLen = 16
)

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// ListenAddr is the STUN/TURN address for UDP and TCP, default ":3478".
	ListenAddr string
	// TLSListenAddr is the TURNS (TURN over TLS) address, used only when
	// TLSConfig is not nil. Default ":5349".
	TLSListenAddr string
	TLSConfig     *tls.Config

	// PublicIP is the IPv4 address advertised in relayed addresses. Zero
	// derives it from ListenAddr, or 127.0.0.1 when that is unspecified
	// (local use only: set it on a real deployment).
	PublicIP netip.Addr
	// RelayBindIP is the local address relay sockets bind to. Zero uses the
	// ListenAddr IP when it is a specific IPv4 address, else 0.0.0.0.
	RelayBindIP netip.Addr
	// Realm is the long-term credential realm, default "tryst". It must
	// match coturn's realm when both serve the same credentials.
	Realm string
	// RelayPortMin and RelayPortMax bound relay ports (inclusive), default
	// 49152-65535.
	RelayPortMin, RelayPortMax int

	// Secrets verify credentials; the first also signs those minted by
	// Server.Credential. At least one is required.
	Secrets [][]byte
	// CredentialTTL is the lifetime of credentials minted by
	// Server.Credential, default 10 minutes.
	CredentialTTL time.Duration
	// MaxCredentialTTL refuses credentials whose expiry lies further ahead
	// than this, default 24h; it must be at least CredentialTTL.
	MaxCredentialTTL time.Duration
	// MaxLifetime bounds an allocation's life however often it is
	// refreshed, default 12h. Its credential's expiry is only checked when
	// it is created.
	MaxLifetime time.Duration

	// AllowPeers and DenyPeers adjust the peer filter: AllowPeers exempts
	// prefixes from the default deny (loopback, private, link-local, ...),
	// DenyPeers refuses prefixes and always wins over AllowPeers.
	AllowPeers, DenyPeers []netip.Prefix
	// AllowLoopbackPeers allows loopback peers (tests, local development).
	AllowLoopbackPeers bool

	// UserQuota is the number of allocations one user (the id part of the
	// username) may hold, default 10; negative means unlimited.
	UserQuota int
	// MaxAllocations caps allocations on the server, default 10000;
	// negative means unlimited.
	MaxAllocations int
	// AllocationsPerIP caps the allocations held from one source IP (per
	// /64 for IPv6), default 64; negative means unlimited.
	AllocationsPerIP int
	// PermissionsPerAllocation and ChannelsPerAllocation cap the distinct
	// peer addresses with a permission and the channel bindings of one
	// allocation, default 64 each; negative means unlimited.
	PermissionsPerAllocation, ChannelsPerAllocation int
	// SourceRate and SourceBurst configure the per-source-IP token bucket
	// on unauthenticated and failed requests (requests per second, burst).
	// Defaults 20 and 60; a negative SourceRate disables the limit.
	SourceRate  float64
	SourceBurst int
	// BandwidthPerAllocation and BandwidthTotal cap relayed bytes per
	// second (both directions together) per allocation and over all
	// allocations; 0 means unlimited. Excess packets are dropped.
	BandwidthPerAllocation, BandwidthTotal int64

	// Sockets is the number of UDP sockets bound to ListenAddr with
	// SO_REUSEPORT, default runtime.NumCPU(); always 1 where SO_REUSEPORT
	// does not exist (Windows).
	Sockets int

	// DisableDataPlane serves every socket through pion's portable path
	// instead of the Linux epoll data plane (--turn-dataplane=off): the
	// fallback for an operator who meets a data-plane bug. It is the only
	// path on other systems.
	DisableDataPlane bool

	// Metrics receives the relay's series; nil uses unregistered ones.
	Metrics *metrics.TURN
	// Logger receives operational logs; nil discards them. Secrets and
	// passwords are never logged.
	Logger *slog.Logger

	clock func() time.Time // tests inject a fake clock
}

// Validate reports the first invalid field, as New would, without opening
// anything: callers check every setting before any listener starts.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns a copy of c with defaults filled in, or an error
// naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.TLSConfig != nil && c.TLSListenAddr == "" {
		c.TLSListenAddr = ":5349"
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.RelayPortMin == 0 && c.RelayPortMax == 0 {
		c.RelayPortMin, c.RelayPortMax = DefaultRelayPortMin, DefaultRelayPortMax
	}
	if c.RelayPortMin < 1 || c.RelayPortMax > 65535 || c.RelayPortMin > c.RelayPortMax {
		return c, fmt.Errorf("turnserver: relay ports %d-%d: %w", c.RelayPortMin, c.RelayPortMax, errPortRange)
	}
	if err := CheckSecrets(c.Secrets); err != nil {
		return c, err
	}
	c.Secrets = cloneSecrets(c.Secrets)
	if c.CredentialTTL <= 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	if c.MaxCredentialTTL <= 0 {
		c.MaxCredentialTTL = DefaultMaxCredentialTTL
	}
	if c.MaxCredentialTTL < c.CredentialTTL {
		return c, fmt.Errorf("turnserver: MaxCredentialTTL %v is shorter than CredentialTTL %v", c.MaxCredentialTTL, c.CredentialTTL)
	}
	if c.AllocationsPerIP == 0 {
		c.AllocationsPerIP = DefaultAllocationsPerIP
	}
	if c.PermissionsPerAllocation == 0 {
		c.PermissionsPerAllocation = DefaultPermissionsPerAllocation
	}
	if c.ChannelsPerAllocation == 0 {
		c.ChannelsPerAllocation = DefaultChannelsPerAllocation
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.UserQuota == 0 {
		c.UserQuota = DefaultUserQuota
	}
	if c.MaxAllocations == 0 {
		c.MaxAllocations = DefaultMaxAllocations
	}
	if c.SourceRate == 0 {
		c.SourceRate = DefaultSourceRate
	}
	if c.SourceBurst <= 0 {
		c.SourceBurst = DefaultSourceBurst
	}
	if c.BandwidthPerAllocation < 0 || c.BandwidthTotal < 0 {
		return c, fmt.Errorf("turnserver: negative bandwidth cap")
	}
	if c.Sockets <= 0 {
		c.Sockets = runtime.NumCPU()
	}
	if !reusePortSupported {
		c.Sockets = 1
	}
	if c.Sockets > 256 {
		return c, fmt.Errorf("turnserver: Sockets %d: at most 256", c.Sockets)
	}

	host, _, err := net.SplitHostPort(c.ListenAddr)
	if err != nil {
		return c, fmt.Errorf("turnserver: listen address %q: %w", c.ListenAddr, err)
	}
	var listenIP netip.Addr
	if host != "" {
		if listenIP, err = netip.ParseAddr(host); err != nil {
			return c, fmt.Errorf("turnserver: listen address %q: host must be an IP address: %w", c.ListenAddr, err)
		}
		listenIP = listenIP.Unmap()
	}
	specific4 := listenIP.Is4() && !listenIP.IsUnspecified()
	if !c.PublicIP.IsValid() {
		c.PublicIP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if specific4 {
			c.PublicIP = listenIP
		}
	}
	c.PublicIP = c.PublicIP.Unmap()
	if !c.PublicIP.Is4() || c.PublicIP.IsUnspecified() {
		return c, fmt.Errorf("turnserver: PublicIP %v: relays are IPv4, need a specific IPv4 address", c.PublicIP)
	}
	if !c.RelayBindIP.IsValid() {
		c.RelayBindIP = netip.IPv4Unspecified()
		if specific4 {
			c.RelayBindIP = listenIP
		}
	}
	c.RelayBindIP = c.RelayBindIP.Unmap()
	if !c.RelayBindIP.Is4() {
		return c, fmt.Errorf("turnserver: RelayBindIP %v: need an IPv4 address", c.RelayBindIP)
	}
	for _, p := range append(append([]netip.Prefix(nil), c.AllowPeers...), c.DenyPeers...) {
		if !p.IsValid() {
			return c, fmt.Errorf("turnserver: invalid peer prefix %v", p)
		}
	}
	if c.Metrics == nil {
		c.Metrics = metrics.UnregisteredTURN()
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// CheckSecrets applies the relay's rules for secrets (at least one, each
// at least MinSecretLen bytes) as New and SetSecrets do, so that a caller
// can refuse a secrets file before starting anything. Secrets are numbered
// from 1 in errors, never quoted. ParseSecrets does not apply them: a
// client of another relay (coturn) may be given a shorter secret.
func CheckSecrets(secrets [][]byte) error {
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	for i, s := range secrets {
		if len(s) == 0 {
			return fmt.Errorf("turnserver: secret %d is empty: %w", i+1, ErrNoSecret)
		}
		if len(s) < MinSecretLen {
			return fmt.Errorf("turnserver: secret %d is %d bytes: %w", i+1, len(s), ErrShortSecret)
		}
	}
	return nil
}

func cloneSecrets(secrets [][]byte) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = append([]byte(nil), s...)
	}
	return out
}
