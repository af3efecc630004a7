package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
)

// Config configures a Hub. The zero value of every field is replaced by a
// sensible default in New.
type Config struct {
	// ICE returns the ICE servers (with fresh TURN credentials) for a client
	// that reached the hub under hostname host. Nil hands out none.
	ICE func(host string) proto.ICEConfig
	// Store holds rooms. Nil means an in-memory store owned (and closed) by
	// the hub.
	Store Store
	// RoomTTL is how long a room outlives its last attached member
	// (default 30 min). It configures the default store only, as do the
	// room budgets below: a Store given in Store has its own (Store.TTL),
	// and clients are told that one.
	RoomTTL time.Duration
	// UnpairedRoomTTL is how long a room that no guest ever joined
	// outlives its host's connection (default 2 min, at least
	// MinUnpairedRoomTTL; RoomTTL when that is shorter): long enough for a
	// host to come back through its reconnect backoff
	// (proto.ReconnectBackoffMax), short enough that a loop of
	// create-offer-close does not pile up rooms for half an hour.
	UnpairedRoomTTL time.Duration
	// MaxIdleRoomsPerIP caps the rooms with nobody connected that one
	// address (IPv4, or IPv6 /64) created and that are still alive
	// (default 16; negative: unlimited). Past it that address's create is
	// refused (rate_limited, reason idle_rooms) until one expires or is
	// resumed.
	MaxIdleRoomsPerIP int
	// MaxRooms and MaxMailboxBytes are the node's budgets of rooms and of
	// offer/answer bytes waiting in mailboxes (default 100,000 and
	// 256 MiB; negative: unlimited). Past them create, or an offer or
	// answer that would be stored, is refused with hub_full.
	MaxRooms        int
	MaxMailboxBytes int
	// RoomRate and RoomBurst shape room creation per address (default one
	// per 3 s, burst 20), whether or not the credential budget applies. A
	// negative RoomBurst turns it off (a benchmark, or a hub behind a proxy
	// that hides client addresses: then set MaxIdleRoomsPerIP negative too).
	RoomRate  rate.Limit
	RoomBurst int
	// Origins lists the browser origins allowed to open a WebSocket, as
	// host patterns ("chat.example.com", "*.example.com") or full origins
	// ("https://chat.example.com"). Empty means same origin only. Clients
	// that send no Origin header (non-browsers) are always allowed.
	Origins []string
	// HubKeys sign resume tokens (the first key) and verify them (every
	// key), so a key can be rotated; each is at least MinHubKeyLen bytes
	// (ParseHubKeys reads a file of them). A token names its room and
	// role, so a hub that lost its rooms (a restart, with the in-memory
	// store) recreates a room from the tokens its members bring back
	// (docs/PROTOCOL.md, "Resume tokens"): hubs that must honour each
	// other's tokens, or a hub across its restarts, share the keys. Empty:
	// a random key for this Hub's life, and rooms do not survive it.
	HubKeys [][]byte
	// ResumeTokenMaxAge is how old a resume token may be and still
	// recreate a room the store does not hold (default 24 h; at least
	// RoomTTL). Every resume re-issues the token, so only a member attached
	// without a break for longer than this loses its room to a restart. A
	// room the store holds is resumed whatever the token's age.
	ResumeTokenMaxAge time.Duration
	// TokenSecrets turns on access control: creating a room and GET /v1/ice
	// then need an HS256 JWT signed with one of these secrets.
	TokenSecrets [][]byte
	// MaxMessageBytes bounds one client frame (default 64 KiB).
	MaxMessageBytes int
	// MessageRate and MessageBurst shape each connection's token bucket
	// (default 20/s, burst 60: a burst of trickled ICE candidates fits).
	MessageRate  rate.Limit
	MessageBurst int
	// MaxConnsPerIP caps simultaneous connections per IPv4 address or IPv6
	// /64 (default 32; negative means unlimited).
	MaxConnsPerIP int
	// FailureRate and FailureBurst throttle wrong room codes and resume
	// tokens per address (default one per 6 s, burst 10).
	FailureRate  rate.Limit
	FailureBurst int
	// CredentialRate and CredentialBurst shape the per-address budget of
	// TURN credentials (an IPv4 address or an IPv6 /64): every create, join,
	// resume and GET /v1/ice that hands out ICE servers draws one. A create
	// draws before the room exists, so this is also the per-address budget
	// for creating rooms. Default: burst 30, then one per 2 s, which a
	// household behind one NAT opening rooms, reloading tabs and resuming
	// with backoff does not reach, while one address can no longer collect
	// thousands. A negative CredentialBurst turns the budget off (a hub
	// behind a proxy that hides client addresses, or a benchmark). It
	// applies only when ICE is set: without it nothing is handed out.
	CredentialRate  rate.Limit
	CredentialBurst int
	// RelayBytesRate and RelayBytesBurst shape each connection's budget of
	// bytes relayed to the other member (offers, answers, candidates,
	// counted as the frames the other member receives): default 64 KiB/s,
	// burst 512 KiB, far above what signaling needs (an offer with all its
	// candidates is a few KiB). Past it the sender gets rate_limited and
	// close 1008, like the message budget.
	RelayBytesRate  rate.Limit
	RelayBytesBurst int
	// SendQueueBytes is how many bytes may wait for one client (default
	// 1 MiB). It must hold a whole relay burst from the other member plus
	// the hub's own frames for a message burst (RelayBytesBurst +
	// MessageBurst × 1 KiB), so that a client that reads is never cut for
	// a burst its peer was allowed to send; past it the client has not read
	// for a long while and is disconnected (slow_consumer).
	SendQueueBytes int
	// PingInterval and PongTimeout drive the heartbeat (default 15 s each,
	// so a dead connection is dropped within 30 s).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds one frame write (default 10 s).
	WriteTimeout time.Duration
	// Web serves GET / and other non-API paths. Nil serves a placeholder.
	Web http.Handler
	// Metrics receives the hub's series; nil registers them in a private
	// throwaway registry.
	Metrics *metrics.Hub
	// Logger receives the hub's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time

	// clientAddr, when set, replaces the socket's address as the key of the
	// per-address limits. Only the package's tests set it (export_test.go):
	// they need clients at many addresses on one loopback listener.
	clientAddr func(*http.Request) netip.Addr
}

// MinUnpairedRoomTTL is the shortest Config.UnpairedRoomTTL: a host that
// lost its connection (a hub restart, a network change) comes back within
// its reconnect backoff, at most proto.ReconnectBackoffMax between tries,
// and must find its room; 2 min leaves it many tries.
const MinUnpairedRoomTTL = 2 * time.Minute

// replyReserve is the room a client's send queue keeps, per message of its
// burst, for the hub's own frames (replies, notices) beside what its peer
// relays: a created frame with TURN credentials is well under it.
const replyReserve = 1 << 10

// Validate reports the first invalid field, as New would, without starting
// anything: callers check every setting before any listener starts.
func (c Config) Validate() error {
	return c.setDefaults()
}

func (c *Config) setDefaults() error {
	if c.RoomTTL == 0 {
		c.RoomTTL = 30 * time.Minute
	}
	if c.ResumeTokenMaxAge == 0 {
		c.ResumeTokenMaxAge = max(24*time.Hour, c.RoomTTL)
	}
	if len(c.HubKeys) == 0 {
		c.HubKeys = [][]byte{NewHubKey()}
	}
	if c.UnpairedRoomTTL == 0 {
		c.UnpairedRoomTTL = MinUnpairedRoomTTL
	}
	if c.MaxIdleRoomsPerIP == 0 {
		c.MaxIdleRoomsPerIP = 16
	}
	if c.MaxRooms == 0 {
		c.MaxRooms = 100_000
	}
	if c.MaxMailboxBytes == 0 {
		c.MaxMailboxBytes = 256 << 20
	}
	if c.RoomRate == 0 {
		c.RoomRate = rate.Every(3 * time.Second)
	}
	if c.RoomBurst == 0 {
		c.RoomBurst = 20
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.MessageRate == 0 {
		c.MessageRate = 20
	}
	if c.MessageBurst == 0 {
		c.MessageBurst = 60
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 32
	}
	if c.FailureRate == 0 {
		c.FailureRate = rate.Every(6 * time.Second)
	}
	if c.FailureBurst == 0 {
		c.FailureBurst = 10
	}
	if c.CredentialRate == 0 {
		c.CredentialRate = rate.Every(2 * time.Second)
	}
	if c.CredentialBurst == 0 {
		c.CredentialBurst = 30
	}
	if c.RelayBytesRate == 0 {
		c.RelayBytesRate = 64 << 10
	}
	if c.RelayBytesBurst == 0 {
		c.RelayBytesBurst = 512 << 10
	}
	if c.SendQueueBytes == 0 {
		c.SendQueueBytes = 1 << 20
	}
	if c.PingInterval == 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.PongTimeout == 0 {
		c.PongTimeout = 15 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.RoomTTL < 0:
		return fmt.Errorf("hub: room TTL %v must be positive", c.RoomTTL)
	case c.ResumeTokenMaxAge < c.RoomTTL:
		return fmt.Errorf("hub: resume token max age %v is shorter than the room TTL %v", c.ResumeTokenMaxAge, c.RoomTTL)
	case c.UnpairedRoomTTL < MinUnpairedRoomTTL:
		return fmt.Errorf("hub: unpaired room TTL %v is below %v", c.UnpairedRoomTTL, MinUnpairedRoomTTL)
	case c.RoomRate < 0:
		return errors.New("hub: room rate must be positive")
	case c.MaxMessageBytes < 1024:
		return fmt.Errorf("hub: max message size %d below 1024 bytes", c.MaxMessageBytes)
	case c.MessageRate < 0 || c.MessageBurst < 1:
		return errors.New("hub: message rate and burst must be positive")
	case c.CredentialRate < 0:
		return fmt.Errorf("hub: credential rate %v must be positive", c.CredentialRate)
	case c.RelayBytesRate < 0 || c.RelayBytesBurst < c.MaxMessageBytes:
		return fmt.Errorf("hub: relay byte burst %d must hold one message of %d bytes", c.RelayBytesBurst, c.MaxMessageBytes)
	case c.SendQueueBytes < c.RelayBytesBurst+c.MessageBurst*replyReserve:
		return fmt.Errorf("hub: send queue of %d bytes cannot hold a relay burst of %d bytes and %d replies",
			c.SendQueueBytes, c.RelayBytesBurst, c.MessageBurst)
	case c.PingInterval < 0 || c.PongTimeout < 0 || c.WriteTimeout < 0:
		return errors.New("hub: timeouts must be positive")
	}
	if err := checkHubKeys(c.HubKeys); err != nil {
		return err
	}
	for i, s := range c.TokenSecrets {
		if len(s) < MinTokenSecretLen {
			return fmt.Errorf("hub: token secret %d is shorter than %d bytes", i+1, MinTokenSecretLen)
		}
	}
	for _, o := range c.Origins {
		if _, err := path.Match(strings.ToLower(o), ""); err != nil {
			return fmt.Errorf("hub: bad origin pattern %q: %w", o, err)
		}
	}
	return nil
}

// StoreLimits returns the room TTL and budgets that the default store
// gets from c, defaults applied: what a Store made outside the hub (the
// Redis store) should be given for the same behaviour.
func (c Config) StoreLimits() (time.Duration, StoreLimits, error) {
	if err := c.setDefaults(); err != nil {
		return 0, StoreLimits{}, err
	}
	return c.RoomTTL, c.storeLimits(), nil
}

// storeLimits is StoreLimits of a Config with its defaults set.
func (c *Config) storeLimits() StoreLimits {
	return StoreLimits{
		UnpairedTTL:       c.UnpairedRoomTTL,
		MaxIdleRoomsPerIP: max(c.MaxIdleRoomsPerIP, 0),
		MaxRooms:          max(c.MaxRooms, 0),
		MaxMailboxBytes:   max(c.MaxMailboxBytes, 0),
	}
}

// Hub serves the rendezvous protocol and its HTTP endpoints.
type Hub struct {
	cfg       Config
	store     Store
	ownsStore bool
	m         *metrics.Hub
	log       *slog.Logger
	mux       *http.ServeMux
	keys      *keyring
	// started is when this Hub began, in Unix milliseconds: a token issued
	// since then is for a room this Hub held, so one the store no longer
	// has expired or was left here and is not recreated.
	started int64

	conns    *connCounter
	failures *limiterTable[netip.Addr]
	rooms    *limiterTable[netip.Addr] // room creation per address; nil when off
	// perIP is the per-address budget that create, join, resume and
	// GET /v1/ice draw on (Config.CredentialRate): one table, so no
	// endpoint is a way around another's limit. Nil when off.
	perIP *limiterTable[netip.Addr]
	// guesses counts failed-confirmation reports per room code (see
	// roomGuessBurst). It is this node's own: nodes sharing a store
	// count apart.
	guesses *limiterTable[string]

	// node names this Hub in the store (Ref.Node): random, drawn in New,
	// so no Ref of an earlier Hub (a restart) can be mistaken for one of
	// this Hub's connections.
	node     string
	nextConn atomic.Uint64
	draining atomic.Bool
	mu       sync.RWMutex   // orders track against Shutdown
	live     *connTable     // by Ref.Conn
	wg       sync.WaitGroup // one per open WebSocket handler

	stop      chan struct{}
	janitor   sync.WaitGroup
	closeOnce sync.Once
}

// New validates cfg, fills in defaults and returns a Hub ready to serve.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m := cfg.Metrics
	if m == nil {
		var err error
		if m, err = metrics.NewHub(prometheus.NewRegistry()); err != nil {
			return nil, fmt.Errorf("hub: %w", err)
		}
	}
	h := &Hub{
		cfg:      cfg,
		m:        m,
		log:      cfg.Logger,
		conns:    newConnCounter(cfg.MaxConnsPerIP),
		failures: newLimiterTable[netip.Addr](cfg.FailureRate, cfg.FailureBurst, 100_000),
		guesses:  newFailOpenTable[string](rate.Every(roomGuessRefill), roomGuessBurst, maxGuessRooms),
		live:     newConnTable(),
		node:     newNodeID(),
		stop:     make(chan struct{}),
		keys:     newKeyring(cfg.HubKeys),
		started:  cfg.Now().UnixMilli(),
	}
	if cfg.RoomBurst > 0 {
		h.rooms = newLimiterTable[netip.Addr](cfg.RoomRate, cfg.RoomBurst, 100_000)
	}
	if cfg.ICE != nil && cfg.CredentialBurst > 0 {
		h.perIP = newLimiterTable[netip.Addr](cfg.CredentialRate, cfg.CredentialBurst, 100_000)
	}
	h.store = cfg.Store
	if h.store == nil {
		h.store = NewMemStoreWithLimits(cfg.RoomTTL, cfg.Now, cfg.storeLimits())
		h.ownsStore = true
	}
	if err := h.store.Register(context.Background(), h.node, (*local)(h)); err != nil {
		if h.ownsStore {
			_ = h.store.Close()
		}
		return nil, fmt.Errorf("hub: register with the store: %w", err)
	}
	m.WatchStore(h.storeStats)
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET "+proto.WebSocketPath, h.serveWS)
	h.mux.HandleFunc("GET "+proto.ICEPath, h.serveICE)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	h.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if h.draining.Load() {
			writeText(w, http.StatusServiceUnavailable, "draining\n")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), storeCheckTimeout)
		defer cancel()
		if err := h.store.Ready(ctx); err != nil {
			writeText(w, http.StatusServiceUnavailable, "room store unavailable\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	})
	web := cfg.Web
	if web == nil {
		web = http.HandlerFunc(placeholder)
	}
	h.mux.Handle("/", web)
	h.janitor.Add(1)
	go h.sweepLimiters()
	return h, nil
}

func (h *Hub) sweepLimiters() {
	defer h.janitor.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			now := h.cfg.Now()
			h.failures.sweep(now)
			h.guesses.sweep(now)
			if h.rooms != nil {
				h.rooms.sweep(now)
			}
			if h.perIP != nil {
				h.perIP.sweep(now)
			}
		}
	}
}

// SetHubKeys replaces the hub keys (Config.HubKeys): tokens are signed
// with the first from now on, and verified with all. Live rooms and their
// members are unaffected, but a token that no key verifies any more is
// refused, so keep the old key below the new one for a while (a member's
// token is re-issued, with the new key, on its next resume).
func (h *Hub) SetHubKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return ErrNoHubKey
	}
	if err := checkHubKeys(keys); err != nil {
		return err
	}
	h.keys.set(keys)
	return nil
}

// ServeHTTP routes the hub's endpoints.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, s)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type httpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func placeholder(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tryst</title></head>
<body><h1>Tryst hub</h1><p>This is a Tryst rendezvous hub. Connect with <code>tryst chat --hub URL</code>.</p></body></html>
`)
}

// hostname is the name the client used to reach the hub, without port, so
// ICE server URLs point where the client can already reach.
func hostname(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host
}

func (h *Hub) iceFor(host string) *proto.ICEConfig {
	if h.cfg.ICE == nil {
		return &proto.ICEConfig{Servers: []proto.ICEServer{}}
	}
	c := h.cfg.ICE(host)
	return &c
}

func (h *Hub) authorized(token string) error {
	if len(h.cfg.TokenSecrets) == 0 {
		return nil
	}
	return VerifyAccessToken(h.cfg.TokenSecrets, token, h.cfg.Now())
}

func (h *Hub) serveICE(w http.ResponseWriter, r *http.Request) {
	ip := h.clientIP(r)
	// An address whose budget is spent is refused before the token check,
	// which is the costlier one; the token is taken only once the request
	// is known to be authorized, so a client with a bad access token does
	// not spend its address's budget.
	if h.perIP != nil && !h.perIP.ok(ip, h.cfg.Now()) {
		h.refuseICE(w, ip)
		return
	}
	if err := h.authorized(bearerToken(r)); err != nil {
		h.m.Reject("unauthorized")
		writeJSON(w, http.StatusUnauthorized, httpError{proto.CodeUnauthorized, err.Error()})
		return
	}
	if ok, _ := h.grant(ip); !ok {
		h.refuseICE(w, ip)
		return
	}
	writeJSON(w, http.StatusOK, h.iceFor(hostname(r)))
}

func (h *Hub) refuseICE(w http.ResponseWriter, ip netip.Addr) {
	h.m.Reject(metrics.RejectCredentials)
	w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(h.perIP.wait(ip, h.cfg.Now()))))
	writeJSON(w, http.StatusTooManyRequests, httpError{proto.CodeRateLimited, "too many ICE requests from your address; retry later"})
}

// clientIP is the key of the per-address limits for r.
func (h *Hub) clientIP(r *http.Request) netip.Addr {
	if h.cfg.clientAddr != nil {
		return ipKey(h.cfg.clientAddr(r))
	}
	return ipKey(socketAddr(r))
}

// grant draws one credential from ip's budget. When it is spent, ok is
// false and wait says when the next one will be there.
func (h *Hub) grant(ip netip.Addr) (ok bool, wait time.Duration) {
	if h.perIP == nil {
		return true, 0
	}
	now := h.cfg.Now()
	if h.perIP.allow(ip, now) {
		return true, 0
	}
	return false, h.perIP.wait(ip, now)
}

// retrySeconds rounds a wait up to whole seconds, at least 1: clients are
// told when to retry in seconds, and 0 would invite an immediate retry.
func retrySeconds(d time.Duration) int {
	const max = 3600 // nothing legitimate waits longer; keeps the int small
	switch {
	case d <= time.Second:
		return 1
	case d >= max*time.Second:
		return max
	}
	return int((d + time.Second - 1) / time.Second)
}

// stunOnly returns ice without TURN: only stun: and stuns: URLs, no
// credentials. Join and resume answer with it when the address's budget
// is spent, so the session goes on, only without a relay.
func stunOnly(ice *proto.ICEConfig, retryAfter int) *proto.ICEConfig {
	out := &proto.ICEConfig{Servers: []proto.ICEServer{}, Limited: true, RetryAfter: retryAfter}
	for _, s := range ice.Servers {
		var urls []string
		for _, u := range s.URLs {
			scheme, _, _ := strings.Cut(u, ":")
			if strings.EqualFold(scheme, "stun") || strings.EqualFold(scheme, "stuns") {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			out.Servers = append(out.Servers, proto.ICEServer{URLs: urls})
		}
	}
	return out
}

// bearerToken is the token of an "Authorization: Bearer TOKEN" header (the
// scheme is case-insensitive, RFC 9110 11.1), or "" when the header is
// missing or names another scheme: a bare token is not a bearer token.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimLeft(token, " ")
}

// requestScheme is the scheme the client used to reach the hub: https over
// TLS, else what a reverse proxy that terminated TLS says in
// X-Forwarded-Proto, else http. Trusting the header here is safe: it only
// widens what counts as the hub's own origin from http to https for a
// request whose Origin says https, and a browser page cannot set the
// header on a WebSocket handshake (non-browsers may omit Origin anyway).
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ","); strings.EqualFold(strings.TrimSpace(p), "https") {
		return "https"
	}
	return "http"
}

// originAllowed applies the allow-list. coder/websocket has its own check,
// but doing it here lets the hub count and log rejections. The hub's own
// origin (scheme and host as the client reached it) is always allowed.
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Scheme, requestScheme(r)) && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	host, full := strings.ToLower(u.Host), strings.ToLower(u.Scheme+"://"+u.Host)
	for _, p := range h.cfg.Origins {
		p = strings.ToLower(p)
		target := host
		if strings.Contains(p, "://") {
			target = full
		}
		if ok, _ := path.Match(p, target); ok {
			return true
		}
	}
	return false
}

func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	growStack() // the upgrade, on net/http's goroutine, goes deep too
	if h.draining.Load() {
		h.m.Reject("draining")
		writeJSON(w, http.StatusServiceUnavailable, httpError{proto.CodeDraining, "hub is shutting down; reconnect shortly"})
		return
	}
	if !h.originAllowed(r) {
		h.m.Reject("origin")
		h.log.Info("rejected WebSocket origin", "origin", r.Header.Get("Origin"))
		writeJSON(w, http.StatusForbidden, httpError{proto.CodeOrigin, "origin not allowed"})
		return
	}
	ip := h.clientIP(r)
	if !h.conns.acquire(ip) {
		h.m.Reject("ip_conn_limit")
		writeJSON(w, http.StatusTooManyRequests, httpError{proto.CodeIPConnLimit, "too many connections from your address"})
		return
	}
	served := false
	defer func() {
		if !served {
			h.conns.release(ip)
		}
	}()

	// Control frames draw on the connection's message budget like any
	// other message (see conn.onControl). The callbacks run on the
	// connection's reader, which starts only once c is set.
	var c *conn
	sw, sb := withSmallBuffers(w)
	ws, err := websocket.Accept(sw, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // origin checked above
		CompressionMode:    websocket.CompressionDisabled,
		OnPingReceived:     func(context.Context, []byte) bool { return c.onControl() },
		OnPongReceived:     func(context.Context, []byte) { c.pong() },
	})
	if err != nil {
		h.log.Debug("WebSocket upgrade failed", "err", err)
		return
	}
	// Accept succeeded, so it hijacked the connection through sb. The
	// connection's context does not derive from the request's, which ends
	// when this handler returns and whose values nothing needs; the host
	// name is copied out of the request's header block, which it would
	// otherwise keep alive.
	c = newConn(h, ws, sb, ip, strings.Clone(hostname(r)))
	if !h.track(c) {
		ws.Close(websocket.StatusGoingAway, "hub is shutting down; reconnect")
		return
	}
	h.m.Connections.Inc()
	h.m.ConnectionsTotal.Inc()
	// The connection is served on a goroutine of its own and this handler
	// returns: net/http lets go of a hijacked connection, so its goroutine
	// (whose stack grew while parsing the request), the request and the
	// response are freed instead of being held for the connection's life.
	// The hub's own WaitGroup (track/untrack) is what Shutdown waits on, as
	// before.
	served = true
	go c.serve(func() {
		h.m.Connections.Dec()
		h.untrack(c)
		h.conns.release(ip)
	})
}

// track adds c to the live connections unless the hub is draining. The
// read lock orders it against Shutdown (which takes the write lock): a
// connection is either refused or seen, and waited for, by Shutdown.
func (h *Hub) track(c *conn) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.draining.Load() {
		return false
	}
	h.wg.Add(1)
	h.live.put(c)
	return true
}

func (h *Hub) untrack(c *conn) {
	h.live.del(c.id)
	h.wg.Done()
}

// StartDrain makes the hub look unready to a load balancer: /readyz
// answers 503 and new WebSockets are refused (503, draining), while the
// connected members carry on until Shutdown. Calling it again does nothing.
func (h *Hub) StartDrain() {
	h.draining.Store(true)
}

// Shutdown stops accepting WebSockets, asks every client to reconnect
// (close code 1001), and waits for the connections to end or ctx to expire,
// when the remaining ones are cut. Call it after http.Server.Shutdown, which
// does not wait for hijacked (WebSocket) connections.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.draining.Store(true)
	h.mu.Unlock()
	for _, c := range h.live.all() {
		c.closeWith(websocket.StatusGoingAway, "hub is shutting down; reconnect", true)
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("hub: drain: %w", ctx.Err())
		for _, c := range h.live.all() {
			c.ws.CloseNow()
		}
		<-done
	}
	h.release()
	return err
}

// Close cuts every connection at once and releases the hub. It is
// idempotent; prefer Shutdown for a graceful stop.
func (h *Hub) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (h *Hub) release() {
	h.closeOnce.Do(func() {
		close(h.stop)
		h.janitor.Wait()
		h.store.Unregister(h.node)
		if h.ownsStore {
			_ = h.store.Close()
		}
	})
}
