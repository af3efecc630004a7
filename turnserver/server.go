package turnserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/turn/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/metrics"
)

// Tunables, shrunk by tests.
var (
	janitorInterval = 10 * time.Second
	stashTTL        = 10 * time.Second // raw authenticated request kept for the AuthHandler
	pendingTTL      = 30 * time.Second // auth/quota reservation awaiting its allocation
	closeTimeout    = 10 * time.Second
)

// socketBuffer is the kernel buffer requested for listener sockets, so bursts
// are queued rather than dropped while a read loop is busy.
const socketBuffer = 4 << 20

// Server is a running STUN/TURN relay. Create it with New.
type Server struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics.TURN
	filter *peerFilter

	secrets atomic.Pointer[[][]byte]
	// now is the server's clock (Config.clock: time.Now unless a test
	// injects one). It dates everything the relay keeps about the protocol
	// (credential expiry, nonces, reservation tokens, stashed keys, pending
	// reservations, allocation ages, permission lifetimes), and the janitor
	// expires those by it, so a test that moves the clock moves every TTL.
	// The wall clock is read only where real time is the point: the
	// golang.org/x/time/rate token buckets (requests and bytes per real
	// second, which a test clock standing still would freeze), socket
	// deadlines and the data plane's scheduling.
	now func() time.Time

	pion      *turn.Server
	udp       []*listenConn
	tcp, tls  *streamListener
	sources   *sourceLimiter
	totalLim  *rate.Limiter
	relayGen  *relayGenerator
	relayOpen atomic.Int64
	engine    engine // the data plane, or pion's portable path

	// Hot-path counters resolved once.
	toPeerBytes, toPeerPackets     prometheus.Counter
	toClientBytes, toClientPackets prometheus.Counter
	dropAllocBW, dropTotalBW       prometheus.Counter

	nonces *nonceBook
	tokens tokenBook

	mu      sync.Mutex
	stash   map[string]stashed       // srcKey -> key of the request the pre-filter just authenticated
	pending map[string]*pending      // srcKey -> authenticated, allocation not yet created
	live    map[string][]*allocState // srcKey -> allocations
	users   map[string]int           // user id -> allocations held or reserved
	ips     map[netip.Addr]int       // source IP (/64) -> allocations held or reserved
	relays  map[*relayConn]struct{}  // open relay sockets

	readers   sync.WaitGroup // listener read/accept loops and stream connections
	allocs    sync.WaitGroup // allocations between created and deleted events
	janitorWG sync.WaitGroup
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

type stashed struct {
	username string
	key      []byte
	live     bool // the key of a live allocation
	at       time.Time
}

type pending struct {
	username, id string
	key          []byte
	ip           netip.Addr
	reserved     bool // counted in users[id] and ips[ip]
	at           time.Time
}

type allocState struct {
	username, id string
	key          []byte
	ip           netip.Addr
	created      time.Time
	perms        map[netip.Addr]time.Time // peer IP -> when its permission expires
	chans        map[uint16]struct{}      // bound channel numbers
}

// New validates cfg, fills defaults, opens the listeners and starts serving.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		m:       cfg.Metrics,
		sources: newSourceLimiter(cfg.SourceRate, cfg.SourceBurst),
		stash:   make(map[string]stashed),
		pending: make(map[string]*pending),
		live:    make(map[string][]*allocState),
		users:   make(map[string]int),
		ips:     make(map[netip.Addr]int),
		relays:  make(map[*relayConn]struct{}),
		nonces:  newNonceBook(nonceTTL),
		done:    make(chan struct{}),
		now:     cfg.clock,
	}
	s.secrets.Store(&cfg.Secrets)
	s.toPeerBytes = s.m.RelayBytes.WithLabelValues(metrics.DirectionClientToPeer)
	s.toPeerPackets = s.m.RelayPackets.WithLabelValues(metrics.DirectionClientToPeer)
	s.toClientBytes = s.m.RelayBytes.WithLabelValues(metrics.DirectionPeerToClient)
	s.toClientPackets = s.m.RelayPackets.WithLabelValues(metrics.DirectionPeerToClient)
	s.dropAllocBW = s.m.QuotaRejections.WithLabelValues(metrics.QuotaAllocationBandwidth)
	s.dropTotalBW = s.m.QuotaRejections.WithLabelValues(metrics.QuotaTotalBandwidth)
	s.m.RelayPortsLimit.Set(float64(cfg.RelayPortMax - cfg.RelayPortMin + 1))
	if cfg.BandwidthTotal > 0 {
		s.totalLim = rate.NewLimiter(rate.Limit(cfg.BandwidthTotal), burstFor(cfg.BandwidthTotal))
	}
	s.relayGen = &relayGenerator{s: s, bindIP: cfg.RelayBindIP, publicIP: cfg.PublicIP,
		min: cfg.RelayPortMin, max: cfg.RelayPortMax}

	s.filter = &peerFilter{
		allow:         cfg.AllowPeers,
		deny:          cfg.DenyPeers,
		allowLoopback: cfg.AllowLoopbackPeers,
		own:           s.ownAddrs(),
	}
	s.engine, err = newEngine(cfg, s.filter.own, s.relayedToPeer, s.relayedToClient)
	if err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		s.closeSockets()
		return nil, err
	}

	pcfg := turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.authHandler,
		QuotaHandler:  s.quotaHandler,
		LoggerFactory: pionLoggerFactory{l: s.log},
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
			OnChannelCreated:    s.onChannelCreated,
			OnChannelDeleted:    s.onChannelDeleted,
		},
	}
	for _, c := range s.udp {
		pcfg.PacketConnConfigs = append(pcfg.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: c, RelayAddressGenerator: s.relayGen, PermissionHandler: s.permissionHandler,
		})
	}
	for _, l := range []*streamListener{s.tcp, s.tls} {
		if l != nil {
			pcfg.ListenerConfigs = append(pcfg.ListenerConfigs, turn.ListenerConfig{
				Listener: l, RelayAddressGenerator: s.relayGen, PermissionHandler: s.permissionHandler,
			})
		}
	}
	// One read loop per UDP socket and one accept loop per listener, each
	// ending at its first error (pinned by TestPionReadLoops).
	s.readers.Add(len(pcfg.PacketConnConfigs) + len(pcfg.ListenerConfigs))
	s.pion, err = turn.NewServer(pcfg)
	if err != nil {
		s.readers.Add(-len(pcfg.PacketConnConfigs) - len(pcfg.ListenerConfigs))
		s.closeSockets()
		return nil, fmt.Errorf("turnserver: start pion: %w", err)
	}
	s.janitorWG.Add(1)
	go s.janitor()
	s.log.Info("turn relay listening", "udp", s.UDPAddr(), "tcp", s.TCPAddr(), "tls", s.TLSAddr(),
		"sockets", len(s.udp), "public_ip", cfg.PublicIP, "relay_ports",
		strconv.Itoa(cfg.RelayPortMin)+"-"+strconv.Itoa(cfg.RelayPortMax))
	return s, nil
}

func burstFor(bytesPerSec int64) int {
	const minBurst = 64 << 10 // a few full-size packets at any rate
	if bytesPerSec < minBurst {
		return minBurst
	}
	if bytesPerSec > 1<<30 {
		return 1 << 30
	}
	return int(bytesPerSec)
}

func (s *Server) listen() error {
	// With port 0 the kernel picks a free UDP port, and TCP must take the
	// same number, which some TCP socket (an outgoing connection, say) may
	// already hold: then start over with another port.
	_, port, _ := net.SplitHostPort(s.cfg.ListenAddr)
	for attempt := 1; ; attempt++ {
		err := s.listenOnce()
		if err == nil || port != "0" || attempt == 8 || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		s.closeListeners() // not the engine: the next attempt uses it
		s.udp, s.tcp, s.tls = nil, nil, nil
	}
}

// listenTCP is net.Listen; tests replace it to make a port collide.
var listenTCP = net.Listen

func (s *Server) listenOnce() error {
	addr := s.cfg.ListenAddr
	for i := 0; i < s.cfg.Sockets; i++ {
		pc, err := s.engine.ListenUDP(addr)
		if err != nil {
			return fmt.Errorf("turnserver: listen udp %s: %w", addr, err)
		}
		s.udp = append(s.udp, &listenConn{PacketConn: pc, s: s})
		if i == 0 {
			// With port 0, the other sockets join the port the kernel chose.
			addr = pc.LocalAddr().String()
		}
	}
	tcpAddr := s.cfg.ListenAddr
	if _, port, _ := net.SplitHostPort(tcpAddr); port == "0" {
		tcpAddr = addr // same port as UDP when the kernel picked it
	}
	ln, err := listenTCP("tcp", tcpAddr)
	if err != nil {
		return fmt.Errorf("turnserver: listen tcp %s: %w", tcpAddr, err)
	}
	s.tcp = &streamListener{Listener: ln, s: s, conns: make(map[*streamConn]struct{})}
	if s.cfg.TLSConfig != nil {
		ln, err := net.Listen("tcp", s.cfg.TLSListenAddr)
		if err != nil {
			return fmt.Errorf("turnserver: listen tls %s: %w", s.cfg.TLSListenAddr, err)
		}
		s.tls = &streamListener{Listener: tls.NewListener(ln, s.cfg.TLSConfig), s: s,
			conns: make(map[*streamConn]struct{})}
	}
	return nil
}

// closeSockets closes what listen opened, and the engine, for a failed New.
func (s *Server) closeSockets() {
	s.closeListeners()
	s.engine.Close()
}

// closeListeners closes the listening sockets.
func (s *Server) closeListeners() {
	for _, c := range s.udp {
		_ = c.PacketConn.Close()
	}
	for _, l := range []*streamListener{s.tcp, s.tls} {
		if l != nil {
			_ = l.Listener.Close()
		}
	}
}

// ownAddrs lists the server's own addresses, refused as peers: the public
// and listening addresses and, when listening on a wildcard, every address
// of the host's interfaces.
func (s *Server) ownAddrs() map[netip.Addr]struct{} {
	own := map[netip.Addr]struct{}{s.cfg.PublicIP: {}}
	if !s.cfg.RelayBindIP.IsUnspecified() {
		own[s.cfg.RelayBindIP] = struct{}{}
	}
	host, _, _ := net.SplitHostPort(s.cfg.ListenAddr)
	ip, err := netip.ParseAddr(host)
	if err == nil && !ip.IsUnspecified() {
		own[ip.Unmap()] = struct{}{}
		return own
	}
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		s.log.Warn("turn: cannot list interface addresses for the peer filter", "err", err)
		return own
	}
	for _, a := range ifAddrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				own[ip.Unmap()] = struct{}{}
			}
		}
	}
	return own
}

// UDPAddr returns the bound UDP address.
func (s *Server) UDPAddr() net.Addr { return s.udp[0].LocalAddr() }

// TCPAddr returns the bound TCP address.
func (s *Server) TCPAddr() net.Addr { return s.tcp.Addr() }

// TLSAddr returns the bound TURNS address, nil without a TLS config.
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// SetSecrets replaces the secret set: the first signs, all verify. Live
// allocations are unaffected, they keep the key they were created with.
func (s *Server) SetSecrets(secrets [][]byte) error {
	if err := CheckSecrets(secrets); err != nil {
		return err
	}
	c := cloneSecrets(secrets)
	s.secrets.Store(&c)
	s.log.Info("turn secrets rotated", "count", len(c))
	return nil
}

// Credential mints a credential for user id with the current signing secret
// and the configured CredentialTTL.
func (s *Server) Credential(id string) (username, password string, expires time.Time) {
	now := s.now()
	username, password = MintCredential((*s.secrets.Load())[0], id, s.cfg.CredentialTTL, now)
	return username, password, now.Add(s.cfg.CredentialTTL)
}

// Realm returns the configured realm.
func (s *Server) Realm() string { return s.cfg.Realm }

// Close stops the relay, ends every allocation and connection and waits for
// the goroutines. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		var errs []error
		if err := s.pion.Close(); err != nil {
			errs = append(errs, fmt.Errorf("turnserver: close listeners: %w", err))
		}
		for _, l := range []*streamListener{s.tcp, s.tls} {
			if l != nil {
				l.closeConns()
			}
		}
		finished := make(chan struct{})
		go func() {
			s.readers.Wait() // no read loop left that could create an allocation
			s.mu.Lock()
			relays := make([]*relayConn, 0, len(s.relays))
			for r := range s.relays {
				relays = append(relays, r)
			}
			s.mu.Unlock()
			for _, r := range relays {
				_ = r.Close()
			}
			s.allocs.Wait()
			s.engine.Close() // every socket it opened is closed by now
			s.janitorWG.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(closeTimeout):
			errs = append(errs, errors.New("turnserver: close: timed out waiting for allocations to end"))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) janitor() {
	defer s.janitorWG.Done()
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case wall := <-t.C:
			s.sweep(wall)
		}
	}
}

// sweep forgets stale per-source state: the rate limiters' idle buckets by
// the wall clock they run on, everything else by the server's clock (see
// Server.now).
func (s *Server) sweep(wall time.Time) {
	s.sources.sweep(wall)
	now := s.now()
	s.nonces.sweep(now)
	s.tokens.sweep(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.stash {
		if now.Sub(v.at) > stashTTL {
			delete(s.stash, k)
		}
	}
	for k, p := range s.pending {
		if now.Sub(p.at) > pendingTTL {
			s.dropPendingLocked(k, p)
		}
	}
}

func (s *Server) dropPendingLocked(k string, p *pending) {
	delete(s.pending, k)
	if p.reserved {
		s.releaseLocked(p.id, p.ip)
	}
}

// releaseLocked gives back an allocation slot of user id and source ip.
func (s *Server) releaseLocked(id string, ip netip.Addr) {
	if s.users[id] <= 1 {
		delete(s.users, id)
	} else {
		s.users[id]--
	}
	if s.ips[ip] <= 1 {
		delete(s.ips, ip)
	} else {
		s.ips[ip]--
	}
}

func srcKey(a net.Addr) string { return a.Network() + "/" + a.String() }

// countToClient counts relayed payload in a message written to a client.
func (s *Server) countToClient(b []byte) {
	if n, ok := relayedPayload(b); ok {
		s.toClientPackets.Inc()
		s.toClientBytes.Add(float64(n))
	}
}

// relayedToClient and relayedToPeer count what the data plane relayed
// itself.
func (s *Server) relayedToClient(packets, bytes int) {
	s.toClientPackets.Add(float64(packets))
	s.toClientBytes.Add(float64(bytes))
}

func (s *Server) relayedToPeer(packets, bytes int) {
	s.toPeerPackets.Add(float64(packets))
	s.toPeerBytes.Add(float64(bytes))
}

// allowBytes applies the per-allocation and total byte-rate caps to one
// packet of n bytes.
func (s *Server) allowBytes(lim *rate.Limiter, n int) bool {
	if lim != nil && !lim.AllowN(time.Now(), n) {
		s.dropAllocBW.Inc()
		return false
	}
	if s.totalLim != nil && !s.totalLim.AllowN(time.Now(), n) {
		s.dropTotalBW.Inc()
		return false
	}
	return true
}

func (s *Server) authFail(reason string, src net.Addr, charge bool) ([]byte, bool) {
	s.m.AuthFailures.WithLabelValues(reason).Inc()
	if charge {
		s.sources.charge(src)
	}
	s.log.Debug("turn auth refused", "reason", reason, "src", src)
	return nil, false
}

// stashKey keeps the key the pre-filter authenticated a request with, for
// authHandler, which pion calls next for the same request on the same
// goroutine.
func (s *Server) stashKey(k, username string, key []byte, live bool) {
	s.mu.Lock()
	s.stash[k] = stashed{username: username, key: key, live: live, at: s.now()}
	s.mu.Unlock()
}

// authHandler returns the key the pre-filter authenticated this request with
// (inspectSigned did every check), and, for a new credential, notes it as
// pending an allocation for quotaHandler.
func (s *Server) authHandler(username, realm string, src net.Addr) ([]byte, bool) {
	now := s.now()
	k := srcKey(src)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stash[k]
	delete(s.stash, k)
	if !ok || st.username != username || realm != s.cfg.Realm {
		// Cannot happen: every signed request passes the pre-filter first.
		return nil, false
	}
	if st.live {
		return st.key, true
	}
	_, id, _ := parseUsername(username)
	if p := s.pending[k]; p != nil && p.username == username {
		p.key, p.at = st.key, now
	} else {
		if p != nil {
			s.dropPendingLocked(k, p)
		}
		s.pending[k] = &pending{username: username, id: id, key: st.key, ip: sourceKey(src), at: now}
	}
	return st.key, true
}

// hasAllocation reports whether source k holds an allocation.
func (s *Server) hasAllocation(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live[k]) > 0
}

// admitPeers applies the per-allocation caps to a CreatePermission (channel
// < 0) or ChannelBind and, when they allow it, books the permissions (and
// the RFC 8656 lifetime they get) so that the next request counts them. It
// returns the quota kind that refused, "" when admitted.
func (s *Server) admitPeers(k string, peers []netip.Addr, channel int, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.live[k]
	if len(list) == 0 {
		return ""
	}
	a := list[0]
	if channel >= 0 && s.cfg.ChannelsPerAllocation > 0 {
		if _, bound := a.chans[uint16(channel)]; !bound && len(a.chans) >= s.cfg.ChannelsPerAllocation {
			return metrics.QuotaChannels
		}
	}
	for ip, exp := range a.perms {
		if !now.Before(exp) {
			delete(a.perms, ip)
		}
	}
	if s.cfg.PermissionsPerAllocation > 0 {
		added := 0
		for i, p := range peers {
			if _, ok := a.perms[p]; !ok && !slices.Contains(peers[:i], p) {
				added++
			}
		}
		if len(a.perms)+added > s.cfg.PermissionsPerAllocation {
			return metrics.QuotaPermissions
		}
	}
	for _, p := range peers {
		a.perms[p] = now.Add(permissionLifetime)
	}
	return ""
}

// onAuth sees pion's MESSAGE-INTEGRITY verdict; a false one means the
// password was not derived from a secret we hold.
func (s *Server) onAuth(src, _ net.Addr, _, _, _, _ string, verdict bool) {
	if !verdict {
		// The pre-filter checked the same key: cannot happen.
		s.authFail(metrics.AuthBadMAC, src, true)
	}
}

// quotaHandler runs after authentication, just before pion creates an
// allocation, and reserves one of the user's allocation slots.
func (s *Server) quotaHandler(username, _ string, src net.Addr) bool {
	if s.cfg.MaxAllocations > 0 && s.relayOpen.Load() >= int64(s.cfg.MaxAllocations) {
		s.m.QuotaRejections.WithLabelValues(metrics.QuotaGlobal).Inc()
		return false
	}
	k := srcKey(src)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[k]
	if p == nil || p.username != username {
		return false // not authenticated by authHandler just now
	}
	if p.reserved {
		return true
	}
	if s.cfg.UserQuota > 0 && s.users[p.id] >= s.cfg.UserQuota {
		s.m.QuotaRejections.WithLabelValues(metrics.QuotaUser).Inc()
		return false
	}
	if s.cfg.AllocationsPerIP > 0 && s.ips[p.ip] >= s.cfg.AllocationsPerIP {
		s.m.QuotaRejections.WithLabelValues(metrics.QuotaSourceAllocations).Inc()
		return false
	}
	s.users[p.id]++
	s.ips[p.ip]++
	p.reserved = true
	return true
}

func (s *Server) onAllocationCreated(src, _ net.Addr, protocol, username, _ string, relay net.Addr, _ int) {
	// Before pion answers the Allocate, so the fast path is ready for the
	// client's first ChannelBind.
	s.mirrorAllocation(src, protocol, relay, true)
	k := srcKey(src)
	now := s.now()
	s.mu.Lock()
	p := s.pending[k]
	delete(s.pending, k)
	if p == nil || p.username != username || !p.reserved {
		// Cannot happen through pion's Allocate path; keep the books
		// balanced anyway.
		if p != nil && p.reserved {
			s.releaseLocked(p.id, p.ip)
		}
		_, id, _ := parseUsername(username)
		p = &pending{username: username, id: id, ip: sourceKey(src)}
		s.users[id]++
		s.ips[p.ip]++
	}
	s.live[k] = append(s.live[k], &allocState{username: username, id: p.id, key: p.key, ip: p.ip, created: now,
		perms: make(map[netip.Addr]time.Time), chans: make(map[uint16]struct{})})
	s.allocs.Add(1)
	s.mu.Unlock()
	s.m.Allocations.Inc()
	s.m.AllocationsTotal.Inc()
	s.log.Debug("turn allocation created", "src", src, "relay", relay)
}

func (s *Server) onAllocationDeleted(src, _ net.Addr, protocol, username, _ string) {
	s.mirrorAllocation(src, protocol, nil, false)
	k := srcKey(src)
	s.mu.Lock()
	list := s.live[k]
	var a *allocState
	for i, x := range list {
		if x.username == username {
			a = x
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.live, k)
	} else {
		s.live[k] = list
	}
	if a != nil {
		s.releaseLocked(a.id, a.ip)
	}
	s.mu.Unlock()
	if a == nil {
		return
	}
	s.m.Allocations.Dec()
	s.m.AllocationDuration.Observe(s.now().Sub(a.created).Seconds())
	s.allocs.Done()
	s.log.Debug("turn allocation deleted", "src", src)
}

// permissionHandler applies the peer filter to CreatePermission and
// ChannelBind.
func (s *Server) permissionHandler(client net.Addr, peer net.IP) bool {
	a, ok := netip.AddrFromSlice(peer)
	class := classReserved
	if ok {
		class = s.filter.check(a)
	}
	if class == classPublic {
		return true
	}
	s.m.PermissionDenied.Inc()
	s.log.Debug("turn peer refused", "client", client, "peer", peer, "class", class)
	return false
}

func (s *Server) relayClosed(c *relayConn) {
	s.mu.Lock()
	delete(s.relays, c)
	s.mu.Unlock()
	s.m.RelayPortsUsed.Set(float64(s.relayOpen.Add(-1)))
}

// onChannelCreated and onChannelDeleted mirror channel bindings into the
// engine. pion calls them while it holds the allocation's channel lock, before
// it answers the ChannelBind, and when a binding expires or its allocation
// ends (pinned by TestPionEventsBeforeAnswers).
// They also count each allocation's channels for ChannelsPerAllocation.
func (s *Server) onChannelCreated(src, _ net.Addr, protocol, username, _ string, _, peer net.Addr, number uint16) {
	s.mirrorChannel(src, protocol, peer, number, true)
	s.trackChannel(src, username, number, true)
}

func (s *Server) onChannelDeleted(src, _ net.Addr, protocol, username, _ string, _, peer net.Addr, number uint16) {
	s.mirrorChannel(src, protocol, peer, number, false)
	s.trackChannel(src, username, number, false)
}

func (s *Server) trackChannel(src net.Addr, username string, number uint16, bound bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.live[srcKey(src)] {
		if a.username == username {
			if bound {
				a.chans[number] = struct{}{}
			} else {
				delete(a.chans, number)
			}
			return
		}
	}
}
