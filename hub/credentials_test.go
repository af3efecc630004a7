package hub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
)

// Addresses from the documentation ranges, handed to the hub through the
// test-only address hook.
const (
	addrA = "198.51.100.7"
	addrB = "203.0.113.9"
)

// turnICE hands out STUN and TURN with a fresh credential each call, as
// `tryst serve` does; minted counts the calls.
func turnICE(minted *atomic.Int64) func(string) proto.ICEConfig {
	return func(host string) proto.ICEConfig {
		n := minted.Add(1)
		return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
			{URLs: []string{"stun:" + host + ":3478"}},
			{
				URLs:     []string{"turn:" + host + ":3478?transport=udp", "turn:" + host + ":3478?transport=tcp", "turns:" + host + ":5349?transport=tcp"},
				Username: "1800000600:user" + strconv.FormatInt(n, 10), Credential: "secret",
			},
		}}
	}
}

// startBudgetHub starts a hub that keys its per-address limits on the test
// address header, hands out TURN credentials and runs on clock.
func startBudgetHub(t *testing.T, cfg hub.Config, clock *testclock.Clock) *testHub {
	t.Helper()
	var minted atomic.Int64
	cfg.ICE = turnICE(&minted)
	cfg.Now = clock.Now
	return startHub(t, hub.WithClientAddrForTest(cfg))
}

func from(addr string) http.Header { return http.Header{hub.AddrHeaderForTest: {addr}} }

func newClock() *testclock.Clock { return testclock.New(time.Unix(1_800_000_000, 0)) }

// hasTURN reports whether ice carries a TURN server with a credential.
func hasTURN(ice *proto.ICEConfig) bool {
	if ice == nil {
		return false
	}
	for _, s := range ice.Servers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn") && s.Username != "" && s.Credential != "" {
				return true
			}
		}
	}
	return false
}

// checkSTUNOnly fails unless ice is the limited, STUN-only configuration.
func checkSTUNOnly(t *testing.T, ice *proto.ICEConfig) {
	t.Helper()
	if ice == nil || !ice.Limited || ice.RetryAfter < 1 || ice.TTL != 0 || len(ice.Servers) == 0 {
		t.Fatalf("ice = %+v, want limited STUN only with retry_after", ice)
	}
	for _, s := range ice.Servers {
		if s.Username != "" || s.Credential != "" {
			t.Errorf("credential left in %+v", s)
		}
		for _, u := range s.URLs {
			if !strings.HasPrefix(u, "stun:") {
				t.Errorf("non-STUN URL %q left in", u)
			}
		}
	}
}

func createFrom(t *testing.T, th *testHub, addr string) (*client, proto.Frame) {
	t.Helper()
	c := dial(t, th.url, from(addr))
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	return c, c.next()
}

// getICE fetches /v1/ice as addr and returns the response and its body.
func getICE(t *testing.T, th *testHub, addr string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", th.srv.URL+"/v1/ice", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(hub.AddrHeaderForTest, addr)
	if len(hdr) == 2 {
		req.Header.Set(hdr[0], hdr[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// The attack of issue 10: one address loops create. With the default
// budget it gets 30 rooms, then refusals, each counted; another address is
// unaffected, and the budget refills with time.
func TestCreateLoopRefusedAfterBudget(t *testing.T) {
	t.Parallel()
	clock := newClock()
	// The room limits (burst 20) would refuse first: this test is about
	// the credential budget.
	th := startBudgetHub(t, hub.Config{RoomBurst: 100}, clock)

	for i := range 30 {
		_, f := createFrom(t, th, addrA)
		if f.Type != proto.TypeCreated || !hasTURN(f.ICE) {
			t.Fatalf("create %d: %+v, want created with TURN", i+1, f)
		}
	}
	c, f := createFrom(t, th, addrA)
	if f.Type != proto.TypeError || f.Code != proto.CodeRateLimited || f.Message == "" {
		t.Fatalf("create 31: %+v, want error rate_limited", f)
	}
	if f.RetryAfter != 2 || !strings.Contains(f.Message, "2 s") {
		t.Errorf("retry_after %d, message %q: want 2 s (one credential per 2 s)", f.RetryAfter, f.Message)
	}
	// The refusal leaves the connection usable; asking again at once is
	// refused again, without a room being made.
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	c.expectError(proto.CodeRateLimited)
	if got := th.rejections(metrics.RejectCredentials); got != 2 {
		t.Errorf("credentials rejections = %v, want 2", got)
	}
	if got := testutil.ToFloat64(th.m.Rooms); got != 30 {
		t.Errorf("rooms = %v, want 30", got)
	}

	// Another address still gets a room with a relay credential.
	_, other := createFrom(t, th, addrB)
	if other.Type != proto.TypeCreated || !hasTURN(other.ICE) {
		t.Fatalf("other address: %+v, want created with TURN", other)
	}

	// Two seconds later the first address has one more, on the same
	// connection.
	clock.Advance(2 * time.Second)
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	if f := c.expect(proto.TypeCreated); !hasTURN(f.ICE) {
		t.Errorf("create after refill: %+v", f)
	}
	if _, f := createFrom(t, th, addrA); f.Code != proto.CodeRateLimited {
		t.Fatalf("second create after one refill: %+v, want rate_limited", f)
	}
	if got := th.rejections(metrics.RejectCredentials); got != 3 {
		t.Errorf("credentials rejections = %v, want 3", got)
	}
}

// Join and resume at the limit are answered, with STUN only: the session
// goes on without a relay instead of stranding the client.
func TestJoinAndResumeAtLimitGetSTUNOnly(t *testing.T) {
	t.Parallel()
	clock := newClock()
	th := startBudgetHub(t, hub.Config{CredentialBurst: 2, CredentialRate: rate.Every(10 * time.Second)}, clock)

	// Address A spends its budget on a room and on joining it.
	host, created := createFrom(t, th, addrA)
	if created.Type != proto.TypeCreated {
		t.Fatalf("create: %+v", created)
	}
	guest := dial(t, th.url, from(addrA))
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	if f := guest.expect(proto.TypeJoined); !hasTURN(f.ICE) || f.ICE.Limited {
		t.Fatalf("join within budget: %+v", f.ICE)
	}
	host.expect(proto.TypePeerJoined)

	// The host's network drops; its resume is answered without TURN, and
	// signaling still works.
	host.ws.Close(websocket.StatusNormalClosure, "")
	guest.expect(proto.TypePeerLeft)
	host2 := dial(t, th.url, from(addrA))
	host2.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
	r := host2.expect(proto.TypeResumed)
	checkSTUNOnly(t, r.ICE)
	if r.ICE.RetryAfter != 10 {
		t.Errorf("retry_after = %d, want 10", r.ICE.RetryAfter)
	}
	if r.Room != created.Room || r.Token == "" || r.Role != "host" {
		t.Errorf("resumed: %+v", r)
	}
	guest.expect(proto.TypePeerBack)
	host2.send(proto.Frame{Type: proto.TypeOffer, Data: "offer-after-resume"})
	if f := guest.expect(proto.TypeOffer); f.Data != "offer-after-resume" {
		t.Errorf("offer %q", f.Data)
	}

	// A guest at A joining B's room gets in, also without TURN.
	_, createdB := createFrom(t, th, addrB)
	guestA := dial(t, th.url, from(addrA))
	guestA.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: createdB.Room})
	checkSTUNOnly(t, guestA.expect(proto.TypeJoined).ICE)
	if got := th.rejections(metrics.RejectCredentials); got != 2 {
		t.Errorf("credentials rejections = %v, want 2", got)
	}

	// Once the budget refills, a resume brings the relay back.
	clock.Advance(10 * time.Second)
	host3 := dial(t, th.url, from(addrA))
	host3.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
	if r := host3.expect(proto.TypeResumed); !hasTURN(r.ICE) || r.ICE.Limited || r.ICE.TTL != 600 {
		t.Errorf("resume after refill: %+v", r.ICE)
	}
}

// GET /v1/ice draws on the same budget as the WebSocket: neither is a way
// around the other.
func TestICEEndpointSharesBudget(t *testing.T) {
	t.Parallel()
	clock := newClock()
	th := startBudgetHub(t, hub.Config{CredentialBurst: 3, CredentialRate: rate.Every(5 * time.Second)}, clock)

	if _, f := createFrom(t, th, addrA); f.Type != proto.TypeCreated {
		t.Fatalf("create: %+v", f)
	}
	for i := range 2 {
		r, body := getICE(t, th, addrA)
		var ice proto.ICEConfig
		if err := json.Unmarshal([]byte(body), &ice); r.StatusCode != http.StatusOK || err != nil || !hasTURN(&ice) {
			t.Fatalf("/v1/ice %d: %d %s", i+1, r.StatusCode, body)
		}
	}
	r, body := getICE(t, th, addrA)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "5" {
		t.Fatalf("/v1/ice past the budget: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != proto.CodeRateLimited || e.Message == "" {
		t.Errorf("429 body %q", body)
	}
	// The WebSocket sees the same empty budget.
	if _, f := createFrom(t, th, addrA); f.Code != proto.CodeRateLimited {
		t.Errorf("create after /v1/ice spent the budget: %+v", f)
	}
	if got := th.rejections(metrics.RejectCredentials); got != 2 {
		t.Errorf("credentials rejections = %v, want 2", got)
	}
	if r, _ := getICE(t, th, addrB); r.StatusCode != http.StatusOK {
		t.Errorf("/v1/ice from another address: %d", r.StatusCode)
	}
}

// A client with a bad access token is answered 401 and spends nothing.
func TestUnauthorizedICEDoesNotSpendBudget(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	clock := newClock()
	th := startBudgetHub(t, hub.Config{TokenSecrets: [][]byte{secret}, CredentialBurst: 1, CredentialRate: rate.Every(time.Hour)}, clock)
	for range 5 {
		if r, _ := getICE(t, th, addrA, "Authorization", "Bearer nonsense"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", r.StatusCode)
		}
	}
	tok, err := hub.MintAccessToken(secret, "alice", 5*time.Minute, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r, body := getICE(t, th, addrA, "Authorization", "Bearer "+tok); r.StatusCode != http.StatusOK {
		t.Fatalf("good token: %d %s", r.StatusCode, body)
	}
	if r, _ := getICE(t, th, addrA, "Authorization", "Bearer "+tok); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("good token past the budget: %d", r.StatusCode)
	}
	// An unauthorized create spends nothing either: the next address's
	// budget is untouched after refusals.
	c := dial(t, th.url, from(addrB))
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	c.expectError(proto.CodeUnauthorized)
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion, Auth: tok})
	c.expect(proto.TypeCreated)
}

// The budget is per IPv4 address and per IPv6 /64, as the other per-address
// limits; an IPv4-mapped IPv6 address is its IPv4 address.
func TestBudgetKeying(t *testing.T) {
	t.Parallel()
	clock := newClock()
	th := startBudgetHub(t, hub.Config{CredentialBurst: 1, CredentialRate: rate.Every(time.Hour)}, clock)
	for _, step := range []struct {
		addr string
		want int
	}{
		{"2001:db8:1:2::1", http.StatusOK},
		{"2001:db8:1:2:ffff:ffff:ffff:fffe", http.StatusTooManyRequests}, // same /64
		{"2001:db8:1:3::1", http.StatusOK},                               // next /64
		{"192.0.2.1", http.StatusOK},
		{"::ffff:192.0.2.1", http.StatusTooManyRequests},
		{"192.0.2.2", http.StatusOK},
	} {
		if r, _ := getICE(t, th, step.addr); r.StatusCode != step.want {
			t.Errorf("%s: %d, want %d", step.addr, r.StatusCode, step.want)
		}
	}
}

// Honest use never meets the default budget: a household behind one NAT
// opening rooms and joining them, a tab reloaded over and over, and a client
// reconnecting through a flaky network with the clients' backoff.
func TestHonestUseStaysWithinDefaultBudget(t *testing.T) {
	t.Parallel()
	clock := newClock()
	// The connection cap is lifted only because the replaced connections of
	// the reconnect loop close asynchronously; it is not what is tested.
	th := startBudgetHub(t, hub.Config{MaxConnsPerIP: -1}, clock)
	check := func(what string, f proto.Frame) {
		t.Helper()
		if f.Type == proto.TypeError || !hasTURN(f.ICE) || f.ICE.Limited {
			t.Fatalf("%s: %+v, want TURN credentials", what, f)
		}
	}

	// Five rooms opened and joined from one home within a minute.
	var tokens []string
	for range 5 {
		host, created := createFrom(t, th, addrA)
		check("create", created)
		guest := dial(t, th.url, from(addrA))
		guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
		check("join", guest.expect(proto.TypeJoined))
		host.expect(proto.TypePeerJoined)
		tokens = append(tokens, created.Token)
		clock.Advance(10 * time.Second)
	}
	resume := func(what string) {
		t.Helper()
		c := dial(t, th.url, from(addrA))
		c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: tokens[0]})
		check(what, c.expect(proto.TypeResumed))
		c.ws.CloseNow()
	}
	// A tab reloaded every second for ten seconds.
	for range 10 {
		resume("reload")
		clock.Advance(time.Second)
	}
	// A flaky network: the clients' backoff (500 ms doubling to 10 s), the
	// connection lost again at once every time, for a quarter of an hour.
	backoff := 500 * time.Millisecond
	for elapsed := time.Duration(0); elapsed < 15*time.Minute; elapsed += backoff {
		clock.Advance(backoff)
		resume("reconnect")
		backoff = min(backoff*2, 10*time.Second)
	}
	if got := th.rejections(metrics.RejectCredentials); got != 0 {
		t.Errorf("credentials rejections = %v, want 0", got)
	}
}

// A negative burst turns the budget off, for hubs that cannot see client
// addresses.
func TestBudgetConfig(t *testing.T) {
	t.Parallel()
	clock := newClock()
	off := startBudgetHub(t, hub.Config{CredentialBurst: -1}, clock)
	for i := range 50 {
		if r, _ := getICE(t, off, addrA); r.StatusCode != http.StatusOK {
			t.Fatalf("/v1/ice %d with the budget off: %d", i+1, r.StatusCode)
		}
	}
	if err := (hub.Config{CredentialRate: -1}).Validate(); err == nil {
		t.Error("negative credential rate accepted")
	}
}
