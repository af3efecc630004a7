package turnserver

import (
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/metrics"
)

// Conformance of the relay with RFC 8489 (STUN) and RFC 8656 (TURN) where
// pion/turn v4 alone gets it wrong; docs/TURN.md lists each case with its
// section. Every request is a raw STUN message on a real socket.

// newRawClientFrom is newRawClient with the client's socket on ip (any
// 127.0.0.0/8 address reaches the server on 127.0.0.1), so tests can play
// several source addresses.
func newRawClientFrom(t *testing.T, s *Server, ip net.IP, username, password string) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawClient{t: t, conn: conn, server: s.UDPAddr().(*net.UDPAddr), username: username, passwd: password}
}

func credential(user string) (string, string) {
	return MintCredential(testSecret, user, time.Minute, time.Now())
}

// errorCode returns the response's error code, 0 for a success.
func errorCode(t *testing.T, what string, resp *stun.Message, err error) stun.ErrorCode {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.Type.Class == stun.ClassSuccessResponse {
		return 0
	}
	var code stun.ErrorCodeAttribute
	if err := code.GetFrom(resp); err != nil {
		t.Fatalf("%s: error response without ERROR-CODE: %v", what, resp)
	}
	return code.Code
}

func wantCode(t *testing.T, what string, want stun.ErrorCode, resp *stun.Message, err error) {
	t.Helper()
	if got := errorCode(t, what, resp, err); got != want {
		t.Fatalf("%s: got %d, want %d", what, got, want)
	}
}

// wantSigned checks that a response carries a MESSAGE-INTEGRITY made with
// the client's long-term key.
func (c *rawClient) wantSigned(what string, resp *stun.Message) {
	c.t.Helper()
	key := stun.NewLongTermIntegrity(c.username, c.realm, c.passwd)
	if err := key.Check(resp); err != nil {
		c.t.Errorf("%s: response not signed with the client's key: %v", what, err)
	}
}

func counter(m *metrics.TURN, kind string) float64 {
	return testutil.ToFloat64(m.QuotaRejections.WithLabelValues(kind))
}

func TestRFCPeerRefusedByPolicyIs403(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	u, p := credential("rfc-403")
	c := newRawClient(t, s, u, p)
	c.ok("allocate", stun.MethodAllocate, requestedTransportUDP())
	private := net.IPv4(10, 1, 2, 3)
	resp, err := c.do(stun.MethodCreatePermission, xorPeer(private, 9))
	wantCode(t, "CreatePermission to 10.1.2.3", stun.CodeForbidden, resp, err)
	c.wantSigned("403 to CreatePermission", resp)
	resp, err = c.do(stun.MethodChannelBind, xorPeer(private, 9), chanNum(0x4001))
	wantCode(t, "ChannelBind to 10.1.2.3", stun.CodeForbidden, resp, err)
	c.wantSigned("403 to ChannelBind", resp)
	// One refused address refuses the whole request (RFC 8656 section 9.2).
	resp, err = c.do(stun.MethodCreatePermission, xorPeer(net.IPv4(127, 0, 0, 1), 9), xorPeer(private, 9))
	wantCode(t, "CreatePermission with one refused address", stun.CodeForbidden, resp, err)
	if got := testutil.ToFloat64(m.PermissionDenied); got != 3 {
		t.Errorf("permission_denied = %v, want 3", got)
	}
	resp, err = c.do(stun.MethodCreatePermission, xorPeer(net.IPv4(127, 0, 0, 1), 9))
	wantSuccess(t, "CreatePermission to an allowed peer", resp, err)
	// An IPv6 peer cannot be reached from an IPv4 relayed address.
	resp, err = c.do(stun.MethodCreatePermission, xorPeer(net.ParseIP("2001:4860::1"), 9))
	wantCode(t, "CreatePermission to an IPv6 peer", stun.CodePeerAddrFamilyMismatch, resp, err)
}

func TestRFCWrongCredentialsAre401WithRealmAndNonce(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	now := time.Now()
	_, good := MintCredential(testSecret, "mallory", time.Minute, now)
	user, _ := MintCredential(testSecret, "mallory", time.Minute, now)
	centuryUser, centuryPass := MintCredential(testSecret, "mallory", 100*365*24*time.Hour, now)
	for _, tc := range []struct {
		name, user, pass, reason string
	}{
		{"wrong password", user, "not-the-password", metrics.AuthBadMAC},
		{"wrong secret", user, func() string {
			_, p := MintCredential([]byte("another secret, 16+ bytes"), "mallory", time.Minute, now)
			return p
		}(), metrics.AuthBadMAC},
		{"expired", func() string { u, _ := MintCredential(testSecret, "m", -time.Second, now); return u }(), good, metrics.AuthExpired},
		{"a century ahead", centuryUser, centuryPass, metrics.AuthTTLTooLong},
		{"bad username", "no-colon", good, metrics.AuthBadUsername},
	} {
		before := testutil.ToFloat64(m.AuthFailures.WithLabelValues(tc.reason))
		c := newRawClient(t, s, tc.user, tc.pass)
		resp, err := c.do(stun.MethodAllocate, requestedTransportUDP())
		wantCode(t, tc.name, stun.CodeUnauthorized, resp, err)
		var realm stun.Realm
		var nonce stun.Nonce
		if realm.GetFrom(resp) != nil || realm.String() != s.Realm() || nonce.GetFrom(resp) != nil || nonce.String() == "" {
			t.Errorf("%s: 401 without REALM %q and a NONCE: %v", tc.name, s.Realm(), resp)
		}
		if got := testutil.ToFloat64(m.AuthFailures.WithLabelValues(tc.reason)); got != before+1 {
			t.Errorf("%s: auth_failures{%s} went %v -> %v", tc.name, tc.reason, before, got)
		}
		// The nonce in the 401 is good for this source: the right
		// credential succeeds with it at once.
		c.username, c.passwd = credential("mallory-" + tc.reason)
		resp, err = c.do(stun.MethodAllocate, requestedTransportUDP())
		wantSuccess(t, tc.name+", then the right credential", resp, err)
	}
}

func TestRFCAllocateRefusals(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	for _, tc := range []struct {
		name  string
		attrs []stun.Setter
		want  stun.ErrorCode
	}{
		{"REQUESTED-TRANSPORT TCP", []stun.Setter{raw(stun.AttrRequestedTransport, 6, 0, 0, 0)}, stun.CodeUnsupportedTransProto},
		{"REQUESTED-ADDRESS-FAMILY IPv6", []stun.Setter{requestedTransportUDP(), raw(stun.AttrRequestedAddressFamily, 2, 0, 0, 0)}, stun.CodeAddrFamilyNotSupported},
		{"REQUESTED-ADDRESS-FAMILY bogus", []stun.Setter{requestedTransportUDP(), raw(stun.AttrRequestedAddressFamily, 7, 0, 0, 0)}, stun.CodeAddrFamilyNotSupported},
		{"RESERVATION-TOKEN bogus", []stun.Setter{requestedTransportUDP(), raw(stun.AttrReservationToken, 1, 2, 3, 4, 5, 6, 7, 8)}, stun.CodeInsufficientCapacity},
		{"RESERVATION-TOKEN with EVEN-PORT", []stun.Setter{requestedTransportUDP(), raw(stun.AttrEvenPort, 0), raw(stun.AttrReservationToken, 1, 2, 3, 4, 5, 6, 7, 8)}, stun.CodeBadRequest},
		{"RESERVATION-TOKEN with REQUESTED-ADDRESS-FAMILY", []stun.Setter{requestedTransportUDP(), raw(stun.AttrReservationToken, 1, 2, 3, 4, 5, 6, 7, 8), raw(stun.AttrRequestedAddressFamily, 1, 0, 0, 0)}, stun.CodeBadRequest},
	} {
		u, p := credential("alloc")
		c := newRawClient(t, s, u, p)
		resp, err := c.do(stun.MethodAllocate, tc.attrs...)
		wantCode(t, tc.name, tc.want, resp, err)
		c.wantSigned(tc.name, resp)
	}
	if got := counter(m, metrics.QuotaReservation); got != 1 {
		t.Errorf("quota_rejections{reservation} = %v, want 1", got)
	}
	if n := s.allocationCount(); n != 0 {
		t.Errorf("%d allocations made by refused requests", n)
	}
	// The accepted spellings still allocate.
	u, p := credential("alloc")
	c := newRawClient(t, s, u, p)
	c.ok("REQUESTED-ADDRESS-FAMILY IPv4", stun.MethodAllocate, requestedTransportUDP(), raw(stun.AttrRequestedAddressFamily, 1, 0, 0, 0))
	c = newRawClient(t, s, u, p)
	c.ok("EVEN-PORT without reservation", stun.MethodAllocate, requestedTransportUDP(), raw(stun.AttrEvenPort, 0))

	// A token the relay handed out works once; then it is spent.
	c = newRawClient(t, s, u, p)
	resp, err := c.do(stun.MethodAllocate, requestedTransportUDP(), raw(stun.AttrEvenPort, 0x80))
	wantSuccess(t, "EVEN-PORT with the R bit", resp, err)
	token, err := resp.Get(stun.AttrReservationToken)
	if err != nil {
		t.Fatalf("no RESERVATION-TOKEN in the answer to EVEN-PORT R=1: %v", resp)
	}
	c = newRawClient(t, s, u, p)
	c.ok("the relay's own RESERVATION-TOKEN", stun.MethodAllocate, requestedTransportUDP(), raw(stun.AttrReservationToken, token...))
	c = newRawClient(t, s, u, p)
	resp, err = c.do(stun.MethodAllocate, requestedTransportUDP(), raw(stun.AttrReservationToken, token...))
	wantCode(t, "a spent RESERVATION-TOKEN", stun.CodeInsufficientCapacity, resp, err)
}

func TestRFCChannelNumbers(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	u, p := credential("chan")
	c := newRawClient(t, s, u, p)
	c.ok("allocate", stun.MethodAllocate, requestedTransportUDP())
	peer := net.IPv4(127, 0, 0, 1)
	for i, tc := range []struct {
		num  uint16
		want stun.ErrorCode
	}{
		{0x3FFF, stun.CodeBadRequest},
		{0x4000, 0},
		{0x4FFF, 0},
		{0x7FFF, 0}, // RFC 5766's range: coturn's turnutils_uclient picks from all of it
		{0x8000, stun.CodeBadRequest},
		{0x8009, stun.CodeBadRequest},
		{0xFFFF, stun.CodeBadRequest},
	} {
		resp, err := c.do(stun.MethodChannelBind, xorPeer(peer, 1000+i), chanNum(tc.num))
		if got := errorCode(t, "ChannelBind", resp, err); got != tc.want {
			t.Errorf("channel %#x: got %d, want %d", tc.num, got, tc.want)
		}
	}
}

func TestRFCRefreshWithoutAllocationIs437(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	u, p := credential("refresh")
	c := newRawClient(t, s, u, p)
	resp, err := c.do(stun.MethodRefresh, lifetime(600))
	wantCode(t, "Refresh without an allocation", stun.CodeAllocMismatch, resp, err)
	resp, err = c.do(stun.MethodCreatePermission, xorPeer(net.IPv4(127, 0, 0, 1), 9))
	wantCode(t, "CreatePermission without an allocation", stun.CodeAllocMismatch, resp, err)
}

// sendRaw sends b and returns the first response on c's socket.
func (c *rawClient) sendRaw(b []byte) *stun.Message {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(b, c.server); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 2048)
	if err := c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		c.t.Fatal(err)
	}
	n, _, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		c.t.Fatalf("no response: %v", err)
	}
	m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
	if err := m.Decode(); err != nil {
		c.t.Fatal(err)
	}
	return m
}

func TestRFCBindingFingerprintAndUnknownAttributes(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	c := newRawClient(t, s, "", "")

	bad := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	bad.Raw[len(bad.Raw)-1] ^= 0xFF // FINGERPRINT wrong: not STUN, discarded
	good := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	notLast := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	notLast.Add(stun.AttrSoftware, []byte("after the fingerprint"))
	// One socket, one server socket (same 4-tuple): answers come in order,
	// so the first answer after the discarded ones must be good's.
	if _, err := c.conn.WriteToUDP(bad.Raw, c.server); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.WriteToUDP(notLast.Raw, c.server); err != nil {
		t.Fatal(err)
	}
	resp := c.sendRaw(good.Raw)
	if resp.TransactionID != good.TransactionID || resp.Type != stun.BindingSuccess {
		t.Fatalf("bad FINGERPRINT answered: got %v for %x", resp, resp.TransactionID)
	}

	unknown := stun.MustBuild(stun.TransactionID, stun.BindingRequest,
		stun.RawAttribute{Type: 0x7001, Value: []byte{1, 2, 3, 4}},
		stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 6}}, // CHANGE-REQUEST (RFC 5780): not supported
		stun.RawAttribute{Type: 0xC001, Value: []byte{1}},          // comprehension-optional: ignored
		stun.Fingerprint)
	resp = c.sendRaw(unknown.Raw)
	wantCode(t, "unknown comprehension-required attributes", stun.CodeUnknownAttribute, resp, nil)
	var ua stun.UnknownAttributes
	if err := ua.GetFrom(resp); err != nil || len(ua) != 2 || ua[0] != 0x7001 || ua[1] != 0x0003 {
		t.Errorf("UNKNOWN-ATTRIBUTES = %v (%v), want [0x7001 0x0003]", ua, err)
	}
	if err := stun.Fingerprint.Check(resp); err != nil {
		t.Errorf("420 to a request with FINGERPRINT lacks a valid one: %v", err)
	}
	optional := stun.MustBuild(stun.TransactionID, stun.BindingRequest,
		stun.RawAttribute{Type: 0xC001, Value: []byte{1}}, stun.NewSoftware("x"))
	if resp := c.sendRaw(optional.Raw); resp.Type != stun.BindingSuccess {
		t.Errorf("Binding with only optional extras: %v", resp)
	}
}

func TestRFCAttributesAfterMessageIntegrityAreIgnored(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, nil)
	u, p := credential("after-mi")
	c := newRawClient(t, s, u, p)
	// A first exchange to learn the realm and a nonce for this source.
	c.ok("allocate", stun.MethodAllocate, requestedTransportUDP())
	key := stun.NewLongTermIntegrity(u, c.realm, p)

	// USERNAME, REALM and NONCE only after MESSAGE-INTEGRITY: not covered
	// by it, so they do not count.
	m := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), lifetime(600), key)
	m.Add(stun.AttrUsername, []byte(u))
	m.Add(stun.AttrRealm, []byte(c.realm))
	m.Add(stun.AttrNonce, []byte(c.nonce))
	resp := c.sendRaw(m.Raw)
	if resp.Type.Class == stun.ClassSuccessResponse {
		t.Fatalf("request with USERNAME/REALM/NONCE after MESSAGE-INTEGRITY succeeded")
	}

	// With them in front, a SOFTWARE after MESSAGE-INTEGRITY and then a
	// FINGERPRINT are fine: the one ignored, the other checked.
	m = stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), lifetime(600),
		stun.NewUsername(u), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), key)
	m.Add(stun.AttrSoftware, []byte("ignored"))
	if err := stun.Fingerprint.AddTo(m); err != nil {
		t.Fatal(err)
	}
	resp = c.sendRaw(m.Raw)
	wantSuccess(t, "refresh with an attribute after MESSAGE-INTEGRITY", resp, nil)
}

func TestNonceIsBoundToItsSource(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, nil)
	u, p := credential("nonce")
	a := newRawClient(t, s, u, p)
	a.ok("allocate", stun.MethodAllocate, requestedTransportUDP())

	// Another source port replays a's nonce: 438, charged, then a fresh
	// nonce of its own works.
	b := newRawClient(t, s, u, p)
	b.realm, b.nonce = a.realm, a.nonce
	req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestedTransportUDP(),
		stun.NewUsername(u), stun.NewRealm(b.realm), stun.NewNonce(b.nonce), stun.NewLongTermIntegrity(u, b.realm, p))
	resp := b.sendRaw(req.Raw)
	wantCode(t, "nonce of another source", stun.CodeStaleNonce, resp, nil)
	var nonce stun.Nonce
	if err := nonce.GetFrom(resp); err != nil {
		t.Fatal("438 without a NONCE")
	}
	if got := testutil.ToFloat64(m.AuthFailures.WithLabelValues(metrics.AuthStaleNonce)); got != 1 {
		t.Errorf("auth_failures{stale_nonce} = %v", got)
	}
	b.nonce = nonce.String()
	b.ok("allocate with b's own nonce", stun.MethodAllocate, requestedTransportUDP())
}

// TestNonceExpires: a nonce is good for nonceTTL; then the next request of
// the live allocation gets 438 with a new one, and goes on with it.
func TestNonceExpires(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	s, _ := startServer(t, func(c *Config) { c.clock = clock.Now })
	u, p := MintCredential(testSecret, "expiry", time.Hour, clock.Now())
	c := newRawClient(t, s, u, p)
	c.ok("allocate", stun.MethodAllocate, requestedTransportUDP())
	clock.Advance(nonceTTL + time.Second)
	req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), lifetime(600),
		stun.NewUsername(u), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), stun.NewLongTermIntegrity(u, c.realm, p))
	wantCode(t, "refresh with an expired nonce", stun.CodeStaleNonce, c.sendRaw(req.Raw), nil)
	c.ok("refresh after the 438", stun.MethodRefresh, lifetime(600))
}

func TestPerAllocationCaps(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) {
		c.PermissionsPerAllocation = 4
		c.ChannelsPerAllocation = 2
	})
	u, p := credential("caps")
	c := newRawClient(t, s, u, p)
	c.ok("allocate", stun.MethodAllocate, requestedTransportUDP())
	peer := func(i int) stun.Setter { return xorPeer(net.IPv4(127, 0, 1, byte(i)), 9) }
	c.ok("2 channels", stun.MethodChannelBind, peer(1), chanNum(0x4001))
	c.ok("2 channels", stun.MethodChannelBind, peer(2), chanNum(0x4002))
	resp, err := c.do(stun.MethodChannelBind, peer(3), chanNum(0x4003))
	wantCode(t, "third channel", stun.CodeInsufficientCapacity, resp, err)
	c.wantSigned("508", resp)
	c.ok("refreshing a bound channel", stun.MethodChannelBind, peer(1), chanNum(0x4001))
	// Two permissions came with the channels; two more fit, a fifth not.
	c.ok("permissions 3 and 4", stun.MethodCreatePermission, peer(3), peer(4), peer(3))
	resp, err = c.do(stun.MethodCreatePermission, peer(5))
	wantCode(t, "fifth permission", stun.CodeInsufficientCapacity, resp, err)
	c.ok("refreshing a permission", stun.MethodCreatePermission, peer(4))
	if counter(m, metrics.QuotaChannels) != 1 || counter(m, metrics.QuotaPermissions) != 1 {
		t.Errorf("quota_rejections channels=%v permissions=%v, want 1 each",
			counter(m, metrics.QuotaChannels), counter(m, metrics.QuotaPermissions))
	}
}

func TestAllocationsPerIPCap(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.AllocationsPerIP = 3 })
	allocateUntilRefused(t, s, "per-ip", 3, stun.CodeAllocQuotaReached)
	if got := counter(m, metrics.QuotaSourceAllocations); got != 1 {
		t.Errorf("quota_rejections{source_allocations} = %v", got)
	}
	// Another address is not affected.
	u, p := credential("other")
	c := newRawClientFrom(t, s, net.IPv4(127, 0, 0, 2), u, p)
	c.ok("allocation from another IP", stun.MethodAllocate, requestedTransportUDP())
}

// TestRelayExhaustionAttack replays the attack that took every relay port:
// one anonymous client with a pile of credentials (each WebSocket create
// handed one out) allocates from new source ports as fast as it can,
// reusing the first nonce it got. The per-source nonce makes every new port
// pay an unauthenticated exchange (charged to the source's rate limit), the
// per-IP cap stops it at AllocationsPerIP, and a second client from another address still gets an
// allocation. Every refusal is counted.
func TestRelayExhaustionAttack(t *testing.T) {
	t.Parallel()
	const ports = 100
	s, m := startServer(t, func(c *Config) {
		c.RelayPortMin, c.RelayPortMax = 41000, 41000+ports-1
		c.AllocationsPerIP = 30
	})
	first := newRawClient(t, s, "", "")
	first.username, first.passwd = credential("attacker-0")
	first.ok("first allocation", stun.MethodAllocate, requestedTransportUDP())
	// Each new source port now costs a token of the per-source rate limit
	// (burst DefaultSourceBurst): stay well within it, past it the relay
	// drops the attacker's requests unanswered and refuses its new
	// credentials.
	got, refused := 1, 0
	for i := 1; i < DefaultSourceBurst-10; i++ {
		u, p := credential("attacker-" + strconv.Itoa(i))
		c := newRawClient(t, s, u, p)
		c.realm, c.nonce = first.realm, first.nonce // reuse: no unauthenticated round trip
		req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestedTransportUDP(),
			stun.NewUsername(u), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), stun.NewLongTermIntegrity(u, c.realm, p))
		resp := c.sendRaw(req.Raw)
		code := errorCode(t, "attack allocate", resp, nil)
		if code == 0 {
			t.Fatalf("allocation %d succeeded on a nonce issued to another source", i)
		}
		if code != stun.CodeStaleNonce {
			t.Fatalf("allocation %d: got %d, want 438", i, code)
		}
		// Now as a compliant client, paying the exchange.
		var nonce stun.Nonce
		_ = nonce.GetFrom(resp)
		c.nonce = nonce.String()
		resp, err := c.do(stun.MethodAllocate, requestedTransportUDP())
		switch code := errorCode(t, "attack allocate after 438", resp, err); code {
		case 0:
			got++
		case stun.CodeAllocQuotaReached:
			refused++
		default:
			t.Fatalf("allocation %d: got %d", i, code)
		}
	}
	if got != 30 {
		t.Errorf("attacker holds %d allocations, want the per-IP cap of 30", got)
	}
	if used := testutil.ToFloat64(m.RelayPortsUsed); used != 30 {
		t.Errorf("relay_ports_used = %v, want 30", used)
	}
	if total := testutil.ToFloat64(m.RelayPortsLimit); total != ports {
		t.Errorf("relay_ports_limit = %v, want %d", total, ports)
	}
	if c := counter(m, metrics.QuotaSourceAllocations); int(c) != refused || refused == 0 {
		t.Errorf("quota_rejections{source_allocations} = %v, refusals seen %d", c, refused)
	}
	u, p := credential("honest")
	honest := newRawClientFrom(t, s, net.IPv4(127, 0, 0, 2), u, p)
	honest.ok("honest client during the attack", stun.MethodAllocate, requestedTransportUDP())
}

// TestRelayPortsExhaustedIsCounted: with every relay port taken, Allocate
// gets 508 and the refusal is counted for the alert.
func TestRelayPortsExhaustedIsCounted(t *testing.T) {
	t.Parallel()
	s, m := startServer(t, func(c *Config) { c.RelayPortMin, c.RelayPortMax = 41500, 41501 })
	allocateUntilRefused(t, s, "ports", 2, stun.CodeInsufficientCapacity)
	if got := counter(m, metrics.QuotaRelayPorts); got != 1 {
		t.Errorf("quota_rejections{relay_ports} = %v", got)
	}
	if used := testutil.ToFloat64(m.RelayPortsUsed); used != 2 {
		t.Errorf("relay_ports_used = %v", used)
	}
}

// allocateUntilRefused makes n allocations for user, each from its own
// socket, and checks that the next one is refused with want.
func allocateUntilRefused(t *testing.T, s *Server, user string, n int, want stun.ErrorCode) {
	t.Helper()
	for i := range n + 1 {
		u, p := credential(user)
		c := newRawClient(t, s, u, p)
		resp, err := c.do(stun.MethodAllocate, requestedTransportUDP())
		if i < n {
			wantSuccess(t, "allocation "+strconv.Itoa(i+1)+" of "+strconv.Itoa(n), resp, err)
		} else {
			wantCode(t, "allocation past "+strconv.Itoa(n), want, resp, err)
		}
	}
}

// ok sends a request and fails the test unless it succeeds.
func (c *rawClient) ok(what string, method stun.Method, attrs ...stun.Setter) {
	c.t.Helper()
	resp, err := c.do(method, attrs...)
	wantSuccess(c.t, what, resp, err)
}

func raw(t stun.AttrType, v ...byte) stun.Setter {
	return stun.RawAttribute{Type: t, Value: v}
}

func chanNum(n uint16) stun.Setter {
	v := make([]byte, 4)
	binary.BigEndian.PutUint16(v, n)
	return stun.RawAttribute{Type: stun.AttrChannelNumber, Value: v}
}

// FuzzInspect feeds arbitrary client messages to the pre-filter: it must
// never panic, never pass on more than it was given, and whatever it passes
// on as STUN must still decode with the length it claims.
func FuzzInspect(f *testing.F) {
	u, p := credential("fuzz")
	for _, m := range []*stun.Message{
		stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint),
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestedTransportUDP(),
			stun.NewUsername(u), stun.NewRealm(DefaultRealm), stun.NewNonce("n"), stun.NewLongTermIntegrity(u, DefaultRealm, p), stun.Fingerprint),
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest), chanNum(0x4000),
			xorPeer(net.IPv4(1, 2, 3, 4), 5), stun.NewUsername(u), stun.NewRealm(DefaultRealm), stun.NewNonce("n"),
			stun.NewLongTermIntegrity(u, DefaultRealm, p)),
	} {
		f.Add(m.Raw)
	}
	f.Add([]byte{0x40, 0x00, 0x00, 0x01, 0xff})
	s, err := New(Config{ListenAddr: "127.0.0.1:0", Secrets: [][]byte{testSecret}, Sockets: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		n, pass := s.inspect(in, from, func(r []byte) {
			if m := (&stun.Message{Raw: r}); m.Decode() != nil {
				t.Errorf("pre-filter answered with a malformed message %x", r)
			}
		})
		if !pass {
			return
		}
		if n > len(b) || n < 0 {
			t.Fatalf("passes on %d bytes of %d", n, len(b))
		}
		if _, _, ok := stunHeader(in[:n]); ok && n != stunHeaderLen+int(binary.BigEndian.Uint16(in[2:4])) {
			t.Fatalf("passes on %d bytes of a STUN message claiming %d", n, binary.BigEndian.Uint16(in[2:4]))
		}
	})
}
