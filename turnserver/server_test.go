package turnserver

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/metrics"
)

func TestAllocateAndRelay(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	peer := echoPeer(t)
	c, relay := allocate(t, s, "alice")
	if got := relay.LocalAddr().(*net.UDPAddr); got.Port < 40000 || got.Port > 40999 || !got.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("relay address %v outside 127.0.0.1:40000-40999", got)
	}
	const packets, size = 50, 700
	payload := bytes.Repeat([]byte("x"), size)
	for i := 0; i < packets; i++ {
		payload[0] = byte(i)
		roundTrip(t, relay, peer.LocalAddr(), payload)
	}
	if got := testutil.ToFloat64(m.Allocations); got != 1 {
		t.Errorf("allocations gauge = %v, want 1", got)
	}
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	c.close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close every packet has been counted.
	for _, dir := range []string{metrics.DirectionClientToPeer, metrics.DirectionPeerToClient} {
		if got := testutil.ToFloat64(m.RelayBytes.WithLabelValues(dir)); got != packets*size {
			t.Errorf("bytes %s = %v, want %d", dir, got, packets*size)
		}
		if got := testutil.ToFloat64(m.RelayPackets.WithLabelValues(dir)); got != packets {
			t.Errorf("packets %s = %v, want %d", dir, got, packets)
		}
	}
	if got := testutil.ToFloat64(m.AllocationsTotal); got != 1 {
		t.Errorf("allocations_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Allocations); got != 0 {
		t.Errorf("allocations gauge after close = %v, want 0", got)
	}
	if got := testutil.CollectAndCount(m.AllocationDuration); got != 1 {
		t.Errorf("duration histogram series = %d", got)
	}
}

func TestSTUNBinding(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	c := newPionClient(t, s, "", "")
	mapped, err := c.SendBindingRequest()
	if err != nil {
		t.Fatalf("binding: %v", err)
	}
	if mapped.String() != c.conn.LocalAddr().String() {
		t.Errorf("mapped %v, want %v", mapped, c.conn.LocalAddr())
	}
	if got := testutil.ToFloat64(m.STUNBindingRequests); got < 1 {
		t.Errorf("binding counter = %v", got)
	}
}

func TestAuthRefused(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	now := time.Now()
	cases := []struct {
		name, user, pass, reason string
	}{
		{"expired", "", "", metrics.AuthExpired},
		{"wrong secret", "", "", metrics.AuthBadMAC},
		{"bad username", "alice", "", metrics.AuthBadUsername},
	}
	cases[0].user, cases[0].pass = MintCredential(testSecret, "alice", -time.Second, now)
	cases[1].user, cases[1].pass = MintCredential([]byte("not the secret"), "alice", time.Minute, now)
	_, cases[2].pass = MintCredential(testSecret, "alice", time.Minute, now)
	for _, tc := range cases {
		c := newPionClient(t, s, tc.user, tc.pass)
		if relay, err := c.Allocate(); err == nil {
			_ = relay.Close()
			t.Errorf("%s: Allocate succeeded", tc.name)
		}
		if got := testutil.ToFloat64(m.AuthFailures.WithLabelValues(tc.reason)); got < 1 {
			t.Errorf("%s: auth_failures{reason=%q} = %v", tc.name, tc.reason, got)
		}
	}
	if got := testutil.ToFloat64(m.AllocationsTotal); got != 0 {
		t.Errorf("allocations_total = %v", got)
	}
}

func TestDeniedPeersThroughCreatePermission(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.AllowLoopbackPeers = false })
	c, _ := allocate(t, s, "bob")
	denied := []string{"127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0", "169.254.169.254", "10.1.2.3",
		"192.168.0.1", "100.64.0.1", "255.255.255.255", "224.0.0.1", "::1", "64:ff9b::7f00:1", "2002:7f00:1::"}
	for i, ip := range denied {
		err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9})
		if err == nil {
			t.Errorf("CreatePermission(%s) succeeded", ip)
		}
		if got := testutil.ToFloat64(m.PermissionDenied); got != float64(i+1) {
			t.Errorf("after %s permission_denied = %v, want %d", ip, got, i+1)
		}
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("8.8.8.8"), Port: 53}); err != nil {
		t.Errorf("CreatePermission(public) = %v", err)
	}
}

func TestAllowAndDenyPeers(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, func(c *Config) {
		c.AllowLoopbackPeers = false
		c.AllowPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.DenyPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	c, _ := allocate(t, s, "carol")
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 3), Port: 9}); err != nil {
		t.Errorf("allowed peer refused: %v", err)
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 9}); err == nil {
		t.Errorf("denied peer accepted")
	}
}

func TestUserQuota(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.UserQuota = 2 })
	u, p := MintCredential(testSecret, "dave", time.Minute, time.Now())
	for i := 0; i < 2; i++ {
		c := newPionClient(t, s, u, p)
		relay, err := c.Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		defer relay.Close()
	}
	c := newPionClient(t, s, u, p)
	if relay, err := c.Allocate(); err == nil {
		_ = relay.Close()
		t.Fatal("third allocation for the same user succeeded")
	}
	if got := testutil.ToFloat64(m.QuotaRejections.WithLabelValues(metrics.QuotaUser)); got != 1 {
		t.Errorf("quota_rejections{user} = %v", got)
	}
	// Another user is not affected.
	u2, p2 := MintCredential(testSecret, "erin", time.Minute, time.Now())
	c2 := newPionClient(t, s, u2, p2)
	relay, err := c2.Allocate()
	if err != nil {
		t.Fatalf("other user: %v", err)
	}
	_ = relay.Close()
}

func TestGlobalQuota(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.MaxAllocations = 1 })
	allocate(t, s, "frank")
	u2, p2 := MintCredential(testSecret, "grace", time.Minute, time.Now())
	c2 := newPionClient(t, s, u2, p2)
	if relay, err := c2.Allocate(); err == nil {
		_ = relay.Close()
		t.Fatal("allocation beyond MaxAllocations succeeded")
	}
	if got := testutil.ToFloat64(m.QuotaRejections.WithLabelValues(metrics.QuotaGlobal)); got != 1 {
		t.Errorf("quota_rejections{global} = %v", got)
	}
}

// TestLiveAllocationOutlivesCredentialAndSecret checks that an allocation
// keeps refreshing and adding permissions after its credential expired and
// its secret was rotated out, while new allocations are refused, and that
// MaxLifetime still ends it.
func TestLiveAllocationOutlivesCredentialAndSecret(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	oldSecret, newSecret := []byte("old secret 0123456789"), []byte("new secret 0123456789")
	s, m := startServer(t, func(c *Config) {
		c.Secrets = [][]byte{oldSecret}
		c.clock = clock.Now
		c.MaxLifetime = time.Hour
	})
	u, p := MintCredential(oldSecret, "heidi", 10*time.Minute, clock.Now())
	c := newRawClient(t, s, u, p)
	resp, err := c.do(stun.MethodAllocate, requestedTransportUDP())
	wantSuccess(t, "allocate", resp, err)

	// Rotate: new secret signs, old still verifies.
	if err := s.SetSecrets([][]byte{newSecret, oldSecret}); err != nil {
		t.Fatal(err)
	}
	u2, p2 := MintCredential(newSecret, "ivan", 10*time.Minute, clock.Now())
	c2 := newRawClient(t, s, u2, p2)
	resp, err = c2.do(stun.MethodAllocate, requestedTransportUDP())
	wantSuccess(t, "allocate with the new secret", resp, err)
	c3 := newRawClient(t, s, u, p)
	resp, err = c3.do(stun.MethodAllocate, requestedTransportUDP())
	wantSuccess(t, "allocate with the old secret during rotation", resp, err)

	// Retire the old secret and let the credential expire.
	if err := s.SetSecrets([][]byte{newSecret}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	resp, err = c.do(stun.MethodRefresh, lifetime(600))
	wantSuccess(t, "refresh after expiry and rotation", resp, err)
	resp, err = c.do(stun.MethodCreatePermission, xorPeer(net.IPv4(127, 0, 0, 1), 9))
	wantSuccess(t, "permission after expiry and rotation", resp, err)
	resp, err = c.do(stun.MethodChannelBind, xorPeer(net.IPv4(127, 0, 0, 1), 9),
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x00, 0, 0}})
	wantSuccess(t, "channel bind after expiry and rotation", resp, err)

	c4 := newRawClient(t, s, u, p)
	resp, err = c4.do(stun.MethodAllocate, requestedTransportUDP())
	wantRefused(t, "new allocation with the expired, retired credential", resp, err)

	// Past MaxLifetime the refresh is refused.
	clock.Advance(time.Hour)
	resp, err = c.do(stun.MethodRefresh, lifetime(600))
	wantRefused(t, "refresh past MaxLifetime", resp, err)
	if got := testutil.ToFloat64(m.AuthFailures.WithLabelValues(metrics.AuthMaxLifetime)); got != 1 {
		t.Errorf("auth_failures{max_lifetime} = %v", got)
	}
}

func TestMultipleSecretsVerify(t *testing.T) {
	t.Parallel()
	a, b, wrong := []byte("secret-a-0123456789"), []byte("secret-b-0123456789"), []byte("secret-c-0123456789")
	s, m := startServer(t, func(c *Config) { c.Secrets = [][]byte{a, b} })
	for _, secret := range [][]byte{a, b} {
		u, p := MintCredential(secret, "judy", time.Minute, time.Now())
		resp, err := newRawClient(t, s, u, p).do(stun.MethodAllocate, requestedTransportUDP())
		wantSuccess(t, "allocate with secret "+string(secret), resp, err)
	}
	u, p := MintCredential(wrong, "judy", time.Minute, time.Now())
	resp, err := newRawClient(t, s, u, p).do(stun.MethodAllocate, requestedTransportUDP())
	wantRefused(t, "allocate with an unknown secret", resp, err)
	if got := testutil.ToFloat64(m.AuthFailures.WithLabelValues(metrics.AuthBadMAC)); got != 1 {
		t.Errorf("auth_failures{bad_mac} = %v", got)
	}
}

func TestSourceRateLimit(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.SourceRate, c.SourceBurst = 0.001, 3 })
	u, p := MintCredential([]byte("wrong"), "mallory", time.Minute, time.Now())
	c := newRawClient(t, s, u, p)
	for i := 0; i < 6; i++ {
		resp, err := c.do(stun.MethodAllocate, requestedTransportUDP())
		wantRefused(t, "allocate with a bad password", resp, err)
	}
	if got := testutil.ToFloat64(m.AuthFailures.WithLabelValues(metrics.AuthRateLimited)); got == 0 {
		t.Error("failed authentications never rate-limited")
	}
	// Unauthenticated requests from the exhausted source are now dropped.
	resp, err := newRawClient(t, s, "", "").do(stun.MethodBinding)
	if err == nil {
		t.Errorf("binding from a rate-limited source answered: %v", resp.Type)
	}
	if got := testutil.ToFloat64(m.QuotaRejections.WithLabelValues(metrics.QuotaSourceRate)); got == 0 {
		t.Error("dropped unauthenticated request not counted")
	}
}

func TestBandwidthCap(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.BandwidthPerAllocation = 1 }) // burst floor 64 KiB
	peer := echoPeer(t)
	c, relay := allocate(t, s, "olivia")
	payload := make([]byte, 1000)
	// 200 KB sent quickly: well beyond the 64 KiB burst.
	for i := 0; i < 200; i++ {
		if _, err := relay.WriteTo(payload, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// The server handles one client's datagrams in order on one socket: once
	// a Binding request sent afterwards is answered, all 200 were processed.
	if _, err := c.SendBindingRequest(); err != nil {
		t.Fatal(err)
	}
	relayed := testutil.ToFloat64(m.RelayBytes.WithLabelValues(metrics.DirectionClientToPeer)) +
		testutil.ToFloat64(m.RelayBytes.WithLabelValues(metrics.DirectionPeerToClient))
	if relayed > 70<<10 {
		t.Errorf("relayed %v bytes, cap allows about 64 KiB", relayed)
	}
	if testutil.ToFloat64(m.QuotaRejections.WithLabelValues(metrics.QuotaAllocationBandwidth)) == 0 {
		t.Error("no bandwidth drops counted")
	}
}

func TestTCPAllocate(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	peer := echoPeer(t)
	conn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	u, p := MintCredential(testSecret, "trent", time.Minute, time.Now())
	c := newPionStreamClient(t, s, conn, u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TCP: %v", err)
	}
	defer relay.Close()
	roundTrip(t, relay, peer.LocalAddr(), []byte("over tcp"))
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	bad := []Config{
		{},
		{Secrets: [][]byte{{}}},
		{Secrets: [][]byte{testSecret}, RelayPortMin: 10, RelayPortMax: 5},
		{Secrets: [][]byte{testSecret}, ListenAddr: "localhost"},
		{Secrets: [][]byte{testSecret}, PublicIP: netip.MustParseAddr("::1")},
	}
	for i, cfg := range bad {
		if s, err := New(cfg); err == nil {
			_ = s.Close()
			t.Errorf("config %d accepted", i)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSweepClocks pins the janitor's rule: the rate limiters' buckets expire
// by the wall clock, everything stamped with the server's clock (stashed
// keys, pending reservations, nonces, reservation tokens) by that clock, so
// that a test moving the clock moves their TTLs and the wall clock alone
// moves none of them.
func TestSweepClocks(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	s, _ := startServer(t, func(c *Config) { c.clock = clock.Now })
	src := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
	k := srcKey(src)
	s.sources.charge(src)
	s.stashKey(k, "user", []byte("key"), false)
	s.mu.Lock()
	s.pending[k] = &pending{username: "user", at: s.now()}
	s.mu.Unlock()
	s.nonces.issue("nonce", k, s.now())
	s.tokens.add("token", s.now())
	counts := func() (sources, stash, pending, nonces, tokens int) {
		s.sources.mu.Lock()
		sources = len(s.sources.m)
		s.sources.mu.Unlock()
		s.mu.Lock()
		stash, pending = len(s.stash), len(s.pending)
		s.mu.Unlock()
		s.nonces.mu.Lock()
		nonces = len(s.nonces.issued)
		s.nonces.mu.Unlock()
		s.tokens.mu.Lock()
		tokens = len(s.tokens.m)
		s.tokens.mu.Unlock()
		return
	}

	// An hour of wall time: the bucket has refilled, the rest stays.
	s.sweep(time.Now().Add(time.Hour))
	if src, st, pe, no, to := counts(); src != 0 || st != 1 || pe != 1 || no != 1 || to != 1 {
		t.Errorf("after an hour of wall time: %d buckets, %d stashed, %d pending, %d nonces, %d tokens; want 0 1 1 1 1",
			src, st, pe, no, to)
	}
	// The server's clock past every TTL, the wall clock still: all gone.
	s.sources.charge(src)
	clock.Advance(nonceTTL + time.Second)
	s.sweep(time.Now())
	if src, st, pe, no, to := counts(); src != 1 || st != 0 || pe != 0 || no != 0 || to != 0 {
		t.Errorf("after the server's clock moved: %d buckets, %d stashed, %d pending, %d nonces, %d tokens; want 1 0 0 0 0",
			src, st, pe, no, to)
	}
}
