package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/hub/storetest"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/proto"
)

var codeRE = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{3}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{3}){5}$`)

func TestSignalingFlow(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})

	host := dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created := host.expect(proto.TypeCreated)
	if !codeRE.MatchString(created.Room) {
		t.Errorf("room code %q is not 6 groups of 3 unambiguous symbols", created.Room)
	}
	if created.Role != "host" || created.Token == "" || created.ICE == nil || len(created.ICE.Servers) == 0 || created.RoomTTL <= 0 {
		t.Errorf("created frame incomplete: %+v", created)
	}
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "sealed-offer"})

	// A guest typing the code in lower case with spaces still gets in.
	guest := dial(t, th.url, nil)
	typed := strings.ToLower(strings.ReplaceAll(created.Room, "-", " "))
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: typed})
	joined := guest.expect(proto.TypeJoined)
	if joined.Room != created.Room || joined.Role != "guest" || joined.Token == "" || joined.Token == created.Token || joined.ICE == nil {
		t.Errorf("joined frame wrong: %+v", joined)
	}
	if f := guest.expect(proto.TypeOffer); f.Data != "sealed-offer" {
		t.Errorf("offer data %q", f.Data)
	}
	host.expect(proto.TypePeerJoined)

	guest.send(proto.Frame{Type: proto.TypeAnswer, Data: "sealed-answer"})
	if f := host.expect(proto.TypeAnswer); f.Data != "sealed-answer" {
		t.Errorf("answer data %q", f.Data)
	}
	host.send(proto.Frame{Type: proto.TypeCandidate, Data: "c-host"})
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "c-guest"})
	if f := guest.expect(proto.TypeCandidate); f.Data != "c-host" {
		t.Errorf("candidate to guest %q", f.Data)
	}
	if f := host.expect(proto.TypeCandidate); f.Data != "c-guest" {
		t.Errorf("candidate to host %q", f.Data)
	}

	// Roles are enforced.
	guest.send(proto.Frame{Type: proto.TypeOffer, Data: "x"})
	guest.expectError(proto.CodeBadRequest)
	host.send(proto.Frame{Type: proto.TypeAnswer, Data: "x"})
	host.expectError(proto.CodeBadRequest)

	if n := testutil.CollectAndCount(th.m.Pairing); n != 1 {
		t.Fatalf("pairing histogram has %d series", n)
	}
	if got := histCount(t, th); got != 1 {
		t.Errorf("pairing observations = %d, want 1", got)
	}
	if got := testutil.ToFloat64(th.m.Messages.WithLabelValues("candidate")); got != 2 {
		t.Errorf("candidate messages = %v, want 2", got)
	}
	if got := testutil.ToFloat64(th.m.Rooms); got != 1 {
		t.Errorf("rooms gauge = %v, want 1", got)
	}
}

func histCount(t *testing.T, th *testHub) uint64 {
	t.Helper()
	var m dto.Metric
	if err := th.m.Pairing.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func TestOfferIsDeliveredOnceAndRoomHoldsTwo(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	host := dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created := host.expect(proto.TypeCreated)
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "offer-1"})

	guest := dial(t, th.url, nil)
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	joined := guest.expect(proto.TypeJoined)
	guest.expect(proto.TypeOffer)
	host.expect(proto.TypePeerJoined)

	// A third party with the code never sees the offer: the room is full.
	third := dial(t, th.url, nil)
	third.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	third.expectError(proto.CodeRoomFull)

	// The guest leaves its connection (without leaving the room) and resumes:
	// the offer it already took is not delivered again.
	guest.ws.Close(websocket.StatusNormalClosure, "")
	host.expect(proto.TypePeerLeft)
	again := dial(t, th.url, nil)
	again.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
	r := again.expect(proto.TypeResumed)
	if r.Peer == nil || !*r.Peer {
		t.Errorf("resumed frame should report the host present: %+v", r)
	}
	host.expect(proto.TypePeerBack)
	// The next frame the guest sees is the host's fresh offer, not the old one.
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "offer-2"})
	if f := again.expect(proto.TypeOffer); f.Data != "offer-2" {
		t.Errorf("resumed guest got offer %q, want offer-2", f.Data)
	}
	if got := th.rejections("room_full"); got != 1 {
		t.Errorf("room_full rejections = %v", got)
	}
}

func TestUnknownAndMalformedCodesLookTheSame(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	c := dial(t, th.url, nil)
	for _, code := range []string{"222-222-222-222-222-222", "not a code", "OOO-III-LLL-000-111-UUU"} {
		c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: code})
		f := c.expectError(proto.CodeNoSuchRoom)
		if f.Message != "no such room" {
			t.Errorf("code %q: message %q", code, f.Message)
		}
	}
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: "bogus"})
	c.expectError(proto.CodeNoSuchRoom)
}

func TestRoomExpiresAfterIdleTTL(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	mem := hub.NewMemStore(time.Hour, clock.Now)
	ns := storetest.Watch(mem)
	th := startHub(t, hub.Config{Store: ns, Now: clock.Now})
	t.Cleanup(func() { mem.Close() })

	host := dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created := host.expect(proto.TypeCreated)
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "o"})
	host.ws.Close(websocket.StatusNormalClosure, "")
	ns.WaitDetached(t)

	// Just before the TTL the room is still there; resuming re-attaches.
	clock.Advance(time.Hour - time.Second)
	mem.Sweep()
	if mem.Len() != 1 {
		t.Fatal("room expired early")
	}
	clock.Advance(time.Second)
	mem.Sweep()
	if mem.Len() != 0 {
		t.Fatal("room did not expire after its idle TTL")
	}
	guest := dial(t, th.url, nil)
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	guest.expectError(proto.CodeNoSuchRoom)
	guest.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
	guest.expectError(proto.CodeNoSuchRoom)
}

func TestAttachedRoomDoesNotExpire(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	mem := hub.NewMemStore(time.Minute, clock.Now)
	th := startHub(t, hub.Config{Store: mem, Now: clock.Now})
	t.Cleanup(func() { mem.Close() })
	host := dial(t, th.url, nil)
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	created := host.expect(proto.TypeCreated)
	clock.Advance(24 * time.Hour)
	mem.Sweep()
	guest := dial(t, th.url, nil)
	guest.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	guest.expect(proto.TypeJoined)
}

func TestResume(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	host, guest, created, joined := pair(t, th)

	// The host drops; the guest is told; the host comes back with its token.
	host.ws.Close(websocket.StatusNormalClosure, "")
	if f := guest.expect(proto.TypePeerLeft); f.Reason == "" {
		t.Error("peer-left without a reason")
	}
	// While the host is away the guest's answer waits in the mailbox and
	// candidates are dropped.
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "lost"})
	guest.send(proto.Frame{Type: proto.TypeAnswer, Data: "answer-while-away"})
	// The hub handles a connection's frames in order: once it has answered
	// this one, it has handled those two (before the host resumes).
	guest.send(proto.Frame{Type: "sync"})
	guest.expectError(proto.CodeUnknownType)

	host2 := dial(t, th.url, nil)
	host2.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
	r := host2.expect(proto.TypeResumed)
	if r.Role != "host" || r.Room != created.Room || r.Peer == nil || !*r.Peer {
		t.Errorf("resumed: %+v", r)
	}
	if f := host2.expect(proto.TypeAnswer); f.Data != "answer-while-away" {
		t.Errorf("pending answer %q", f.Data)
	}
	guest.expect(proto.TypePeerBack)

	// Fresh offer/answer after the reconnect.
	host2.send(proto.Frame{Type: proto.TypeOffer, Data: "offer-2"})
	if f := guest.expect(proto.TypeOffer); f.Data != "offer-2" {
		t.Errorf("offer after resume %q", f.Data)
	}
	guest.send(proto.Frame{Type: proto.TypeAnswer, Data: "answer-2"})
	if f := host2.expect(proto.TypeAnswer); f.Data != "answer-2" {
		t.Errorf("answer after resume %q", f.Data)
	}

	// A token is bound to its role: the guest's token resumes the guest,
	// replacing the guest's current connection.
	guest2 := dial(t, th.url, nil)
	guest2.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
	if r := guest2.expect(proto.TypeResumed); r.Role != "guest" {
		t.Errorf("guest token resumed role %q", r.Role)
	}
	if code := guest.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("replaced connection closed with %v", code)
	}
	host2.expect(proto.TypePeerBack)
}

func TestLeaveClosesRoom(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	host, guest, created, _ := pair(t, th)
	guest.send(proto.Frame{Type: proto.TypeLeave})
	if code := guest.closed(); code != websocket.StatusNormalClosure {
		t.Errorf("leaver closed with %v", code)
	}
	host.expect(proto.TypeRoomClosed)
	c := dial(t, th.url, nil)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
	c.expectError(proto.CodeNoSuchRoom)
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{MessageRate: 0.001, MessageBurst: 5})
	host, _, _, _ := pair(t, th)
	for range 10 {
		if err := host.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"candidate","data":"c"}`)); err != nil {
			break // the hub may already have closed
		}
	}
	host.expectError(proto.CodeRateLimited)
	if code := host.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("close code %v, want 1008", code)
	}
	if th.rejections("rate_limited") != 1 {
		t.Error("rate_limited not counted")
	}
}

func TestOversizedFrame(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	c := dial(t, th.url, nil)
	// Exactly at the limit is fine (answered as an unknown type).
	atLimit := `{"type":"x","data":"` + strings.Repeat("a", 64<<10-len(`{"type":"x","data":""}`)) + `"}`
	c.sendRaw(websocket.MessageText, []byte(atLimit))
	c.expectError(proto.CodeUnknownType)
	c.sendRaw(websocket.MessageText, []byte(atLimit+" "))
	c.expectError(proto.CodeTooBig)
	if code := c.closed(); code != websocket.StatusMessageTooBig {
		t.Errorf("close code %v, want 1009", code)
	}
	if th.rejections("too_big") != 1 {
		t.Error("too_big not counted")
	}
}

func TestMalformedAndUnknownFramesKeepTheConnection(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	c := dial(t, th.url, nil)
	for _, raw := range []string{`{`, `[1,2]`, `"create"`, `{"type":5}`, `{"type":""}`, `{"type":"create"} {}`, "\xff\xfe"} {
		c.sendRaw(websocket.MessageText, []byte(raw))
		c.expectError(proto.CodeBadRequest)
	}
	c.send(proto.Frame{Type: "teleport"})
	c.expectError(proto.CodeUnknownType)
	c.send(proto.Frame{Type: proto.TypeOffer, Data: "x"})
	c.expectError(proto.CodeBadRequest) // no room yet
	// Still usable.
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	c.expect(proto.TypeCreated)
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	c.expectError(proto.CodeBadRequest) // already in a room
	if got := th.rejections("malformed"); got != 7 {
		t.Errorf("malformed rejections = %v, want 7", got)
	}
	if got := th.rejections("unknown_type"); got != 1 {
		t.Errorf("unknown_type rejections = %v", got)
	}
}

func TestBinaryFrameRejected(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	c := dial(t, th.url, nil)
	c.sendRaw(websocket.MessageBinary, []byte(`{"type":"create"}`))
	c.expectError(proto.CodeBinary)
	if code := c.closed(); code != websocket.StatusUnsupportedData {
		t.Errorf("close code %v, want 1003", code)
	}
}

func TestOriginAllowList(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	_, err := tryDial(t, th.url, http.Header{"Origin": {"https://evil.example"}})
	var de *dialError
	if !errors.As(err, &de) || de.status != http.StatusForbidden {
		t.Fatalf("cross-origin dial: %v, want 403", err)
	}
	if th.rejections("origin") != 1 {
		t.Error("origin rejection not counted")
	}
	// Same origin passes, and so does a client without an Origin header.
	same := "http://" + strings.TrimPrefix(th.srv.URL, "http://")
	dial(t, th.url, http.Header{"Origin": {same}})
	dial(t, th.url, nil)

	allow := startHub(t, hub.Config{Origins: []string{"*.example.com", "https://chat.example.org"}})
	dial(t, allow.url, http.Header{"Origin": {"https://app.example.com"}})
	dial(t, allow.url, http.Header{"Origin": {"https://chat.example.org"}})
	if _, err := tryDial(t, allow.url, http.Header{"Origin": {"http://chat.example.org"}}); err == nil {
		t.Error("scheme mismatch allowed")
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	t.Parallel()
	ns := storetest.Watch(hub.NewMemStore(time.Hour, nil))
	t.Cleanup(func() { ns.Store.Close() })
	th := startHub(t, hub.Config{Store: ns, SendQueueBytes: 256 << 10, RelayBytesBurst: 128 << 10, RelayBytesRate: 1e12,
		MessageRate: 1e6, MessageBurst: 100, WriteTimeout: time.Minute})

	slow := dialNoRead(t, th.url)
	ctx := context.Background()
	if err := slow.Write(ctx, websocket.MessageText, []byte(`{"type":"create","version":3}`)); err != nil {
		t.Fatal(err)
	}
	// Read the created frame by hand, then never read again.
	_, b, err := slow.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var created proto.Frame
	_ = json.Unmarshal(b, &created)

	fast := dial(t, th.url, nil)
	fast.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	fast.expect(proto.TypeJoined)
	// Flood the stalled host until the socket buffers and the hub's queue
	// are full. The hub must keep serving the sender and cut the reader.
	big := `{"type":"candidate","data":"` + strings.Repeat("c", 60<<10) + `"}`
	for {
		fast.sendRaw(websocket.MessageText, []byte(big))
		if th.rejections("slow_consumer") > 0 {
			break
		}
	}
	ns.WaitDetached(t)
	fast.expect(proto.TypePeerLeft)
}

func TestDeadConnectionDroppedByHeartbeat(t *testing.T) {
	t.Parallel()
	ns := storetest.Watch(hub.NewMemStore(time.Hour, nil))
	t.Cleanup(func() { ns.Store.Close() })
	th := startHub(t, hub.Config{Store: ns, PingInterval: 50 * time.Millisecond, PongTimeout: 50 * time.Millisecond})
	dead := dialNoRead(t, th.url) // never reads, so never answers pings
	if err := dead.Write(context.Background(), websocket.MessageText, []byte(`{"type":"create","version":3}`)); err != nil {
		t.Fatal(err)
	}
	ns.WaitDetached(t)
}

func TestPerIPConnectionCap(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{MaxConnsPerIP: 2})
	dial(t, th.url, nil)
	dial(t, th.url, nil)
	_, err := tryDial(t, th.url, nil)
	var de *dialError
	if !errors.As(err, &de) || de.status != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v, want 429", err)
	}
	if th.rejections("ip_conn_limit") != 1 {
		t.Error("ip_conn_limit not counted")
	}
}

func TestBruteForceThrottle(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{FailureBurst: 3, FailureRate: 0.0001})
	c := dial(t, th.url, nil)
	for range 3 {
		c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "222-222-222-222-222-222"})
		c.expectError(proto.CodeNoSuchRoom)
	}
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "333-333-333-333-333-333"})
	c.expectError(proto.CodeThrottled)
	if code := c.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("close %v, want 1008", code)
	}
	// The throttle is per address, not per connection.
	c2 := dial(t, th.url, nil)
	c2.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: "guess"})
	c2.expectError(proto.CodeThrottled)
	if th.rejections("brute_force") != 2 {
		t.Errorf("brute_force = %v", th.rejections("brute_force"))
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	host, guest, _, _ := pair(t, th)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := th.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, c := range []*client{host, guest} {
		if code := c.closed(); code != websocket.StatusGoingAway {
			t.Errorf("close code %v, want 1001", code)
		}
		if !strings.Contains(c.closeReason(), "reconnect") {
			t.Errorf("close reason %q does not say reconnect", c.closeReason())
		}
	}
	resp, err := http.Get(th.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining = %d", resp.StatusCode)
	}
	if _, err := tryDial(t, th.url, nil); err == nil {
		t.Error("new connection accepted while draining")
	}
}

func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{CredentialBurst: 2, CredentialRate: 0.0001})
	get := func(path string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", th.srv.URL+path, nil)
		if len(hdr) == 2 {
			req.Header.Set(hdr[0], hdr[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if r, _ := get("/healthz"); r.StatusCode != 200 {
		t.Errorf("healthz %d", r.StatusCode)
	}
	if r, _ := get("/readyz"); r.StatusCode != 200 {
		t.Errorf("readyz %d", r.StatusCode)
	}
	r, body := get("/")
	if r.StatusCode != 200 || !strings.Contains(body, "Tryst") || r.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("/ = %d %q", r.StatusCode, body)
	}
	r, body = get("/v1/ice")
	var ice proto.ICEConfig
	if err := json.Unmarshal([]byte(body), &ice); err != nil || r.StatusCode != 200 || len(ice.Servers) == 0 || ice.TTL != 600 {
		t.Errorf("/v1/ice = %d %q", r.StatusCode, body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Error("/v1/ice cacheable")
	}
	get("/v1/ice")
	if r, _ := get("/v1/ice"); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third /v1/ice = %d, want 429", r.StatusCode)
	}
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	th := startHub(t, hub.Config{TokenSecrets: [][]byte{secret}})
	c := dial(t, th.url, nil)
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	c.expectError(proto.CodeUnauthorized)
	expired, _ := hub.MintAccessToken(secret, "alice", time.Minute, time.Now().Add(-time.Hour))
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion, Auth: expired})
	c.expectError(proto.CodeUnauthorized)
	tok, err := hub.MintAccessToken(secret, "alice", 5*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion, Auth: tok})
	created := c.expect(proto.TypeCreated)
	// Guests join without a token: the host shared the code with them.
	g := dial(t, th.url, nil)
	g.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	g.expect(proto.TypeJoined)

	for _, auth := range []string{"", "Bearer " + expired, "Bearer " + tok} {
		req, _ := http.NewRequest("GET", th.srv.URL+"/v1/ice", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusUnauthorized
		if auth == "Bearer "+tok {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("/v1/ice with %q: %d, want %d", auth, resp.StatusCode, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, cfg := range []hub.Config{
		{MaxMessageBytes: 10},
		{RoomTTL: -time.Second},
		{SendQueueBytes: 1 << 20, RelayBytesBurst: 1 << 20},
		{RelayBytesBurst: 1024},
		{TokenSecrets: [][]byte{[]byte("short")}},
		{Origins: []string{"[bad"}},
	} {
		if h, err := hub.New(cfg); err == nil {
			h.Close()
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// Every message over the limit, whatever its size, gets too_big and close
// 1009, and nothing after the hub stopped reading it is parsed: here the
// payload hides a ping frame exactly where the hub stops reading.
func TestOversizedMessageIsNeverParsed(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	const limit = 64 << 10
	for _, size := range []int{limit + 1, 65_600, 100_000, 1 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			t.Parallel()
			c := rawDial(t, th)
			payload := []byte(`{"type":"candidate","data":"` + strings.Repeat("a", size) + `"}`)[:size]
			// The hub reads limit+1 bytes of a message to tell that it is
			// too big; a ping frame starts right after them.
			copy(payload[limit+1:], frame(opPing, []byte("hidden")))
			written := make(chan error, 1)
			go func() { written <- c.write(frame(opText, payload)) }()
			frames, code := c.untilClose()
			<-written
			var got []string
			for _, f := range frames {
				if f.opcode == opPong {
					t.Errorf("the hub answered a ping hidden in the payload: %q", f.payload)
				}
				got = append(got, string(f.payload))
			}
			if len(frames) != 1 || frames[0].opcode != opText || !strings.Contains(string(frames[0].payload), `"code":"too_big"`) {
				t.Errorf("frames before close: %q, want one too_big error", got)
			}
			if code != 1009 {
				t.Errorf("close code %d, want 1009", code)
			}
		})
	}
}

// A message over the limit sent in fragments (a text frame without FIN,
// then continuation frames) is refused like one sent whole, once its
// fragments add up past the limit: too_big, close 1009, and nothing after
// the point where the hub stopped reading is parsed, neither a ping hidden
// in a fragment's payload nor a real ping sent after the message.
func TestFragmentedOversizedMessageIsNeverParsed(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	const limit = 64 << 10
	for name, sizes := range map[string][]int{
		"two halves":             {40_000, 40_000},
		"many small":             slices.Repeat([]int{4096}, 20),
		"limit then more":        {limit, 100},
		"crossing in the last":   {30_000, 30_000, 10_000},
		"empty first, then more": {0, limit + 50},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			total := 0
			for _, n := range sizes {
				total += n
			}
			msg := []byte(`{"type":"candidate","data":"` + strings.Repeat("a", total) + `"}`)[:total]
			// The hub reads limit+1 bytes of the message to tell that it is
			// too big; a ping frame starts right after them.
			copy(msg[limit+1:], frame(opPing, []byte("hidden")))
			var wire []byte
			for i, n := range sizes {
				op := byte(opCont)
				if i == 0 {
					op = opText
				}
				f := frame(op, msg[:n])
				msg = msg[n:]
				if i < len(sizes)-1 {
					f[0] &^= 0x80 // not the final fragment
				}
				wire = append(wire, f...)
			}
			wire = append(wire, frame(opPing, []byte("after"))...)
			c := rawDial(t, th)
			written := make(chan error, 1)
			go func() { written <- c.write(wire) }()
			frames, code := c.untilClose()
			<-written
			var got []string
			for _, f := range frames {
				if f.opcode == opPong {
					t.Errorf("the hub answered a ping after the limit: %q", f.payload)
				}
				got = append(got, string(f.payload))
			}
			if len(frames) != 1 || frames[0].opcode != opText || !strings.Contains(string(frames[0].payload), `"code":"too_big"`) {
				t.Errorf("frames before close: %q, want one too_big error", got)
			}
			if code != 1009 {
				t.Errorf("close code %d, want 1009", code)
			}
		})
	}
}

// Pings and pongs draw on the message budget: a ping flood is answered no
// faster than messages are, then closed like any other flood.
func TestControlFramesCountAgainstRateLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pings bool
	}{
		{"pings and pongs", true},
		// Pongs alone are taken in the idle wait, never by coder/websocket.
		{"pongs", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			th := startHub(t, hub.Config{MessageRate: 0.001, MessageBurst: 5})
			c := rawDial(t, th)
			var flood []byte
			for i := range 200 {
				op := byte(opPong) // unsolicited pongs count as well
				if tc.pings && i%2 == 0 {
					op = opPing
				}
				flood = append(flood, frame(op, []byte("x"))...)
			}
			written := make(chan error, 1)
			go func() { written <- c.write(flood) }()
			frames, code := c.untilClose()
			<-written
			pongs := 0
			var errs []string
			for _, f := range frames {
				switch f.opcode {
				case opPong:
					pongs++
				case opText:
					errs = append(errs, string(f.payload))
				}
			}
			if pongs > 5 {
				t.Errorf("%d pings answered, want at most the burst of 5", pongs)
			}
			if len(errs) != 1 || !strings.Contains(errs[0], `"code":"rate_limited"`) {
				t.Errorf("error frames %q, want one rate_limited", errs)
			}
			if code != 1008 {
				t.Errorf("close code %d, want 1008", code)
			}
			if got := th.rejections("rate_limited"); got != 1 {
				t.Errorf("rate_limited rejections = %v, want 1", got)
			}
		})
	}
}

// What docs/PROTOCOL.md says about refusals is what the hub does.
func TestRefusalsAsDocumented(t *testing.T) {
	t.Parallel()
	httpCode := func(t *testing.T, url string, hdr http.Header) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
		if err == nil {
			ws.CloseNow()
			return http.StatusSwitchingProtocols, ""
		}
		if resp == nil {
			t.Fatal(err)
		}
		var body struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Code
	}

	t.Run("ip_conn_limit", func(t *testing.T) {
		t.Parallel()
		th := startHub(t, hub.Config{MaxConnsPerIP: 1})
		dial(t, th.url, nil)
		if st, code := httpCode(t, th.url, nil); st != http.StatusTooManyRequests || code != proto.CodeIPConnLimit {
			t.Errorf("second connection: %d %q, want 429 %q", st, code, proto.CodeIPConnLimit)
		}
	})
	t.Run("draining", func(t *testing.T) {
		t.Parallel()
		th := startHub(t, hub.Config{})
		th.StartDrain()
		if st, code := httpCode(t, th.url, nil); st != http.StatusServiceUnavailable || code != proto.CodeDraining {
			t.Errorf("connection while draining: %d %q, want 503 %q", st, code, proto.CodeDraining)
		}
	})
	t.Run("join without room", func(t *testing.T) {
		t.Parallel()
		th := startHub(t, hub.Config{FailureBurst: 1, FailureRate: 0.0001})
		c := dial(t, th.url, nil)
		for range 3 { // a malformed request is not a guess: no throttle
			c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion})
			c.expectError(proto.CodeBadRequest)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		t.Parallel()
		secret := []byte("0123456789abcdef0123456789abcdef")
		th := startHub(t, hub.Config{TokenSecrets: [][]byte{secret}})
		tok, err := hub.MintAccessToken(secret, "alice", 5*time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for auth, want := range map[string]int{
			"Bearer " + tok: http.StatusOK, "bearer " + tok: http.StatusOK, "BEARER  " + tok: http.StatusOK,
			tok: http.StatusUnauthorized, "Basic " + tok: http.StatusUnauthorized, "Bearer": http.StatusUnauthorized,
		} {
			req, _ := http.NewRequest("GET", th.srv.URL+"/v1/ice", nil)
			req.Header.Set("Authorization", auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("Authorization %.12q…: %d, want %d", auth, resp.StatusCode, want)
			}
		}
	})
	t.Run("same origin includes the scheme", func(t *testing.T) {
		t.Parallel()
		th := startHub(t, hub.Config{})
		host := strings.TrimPrefix(th.srv.URL, "http://")
		if st, code := httpCode(t, th.url, http.Header{"Origin": {"https://" + host}}); st != http.StatusForbidden || code != proto.CodeOrigin {
			t.Errorf("https origin on a plain-http hub: %d %q, want 403 %q", st, code, proto.CodeOrigin)
		}
		if st, _ := httpCode(t, th.url, http.Header{"Origin": {"http://" + host}}); st != http.StatusSwitchingProtocols {
			t.Errorf("same origin refused: %d", st)
		}
		// Behind a proxy that terminated TLS, the page is https.
		hdr := http.Header{"Origin": {"https://" + host}, "X-Forwarded-Proto": {"https"}}
		if st, _ := httpCode(t, th.url, hdr); st != http.StatusSwitchingProtocols {
			t.Errorf("https origin behind a TLS proxy refused: %d", st)
		}
		hdr = http.Header{"Origin": {"http://" + host}, "X-Forwarded-Proto": {"https"}}
		if st, _ := httpCode(t, th.url, hdr); st != http.StatusForbidden {
			t.Errorf("http origin on an https hub accepted: %d", st)
		}
	})
}

// A burst at the limit, in messages and in bytes, reaches a peer that
// reads: the receiver's queue holds whatever the sender may send at once.
// (With a queue of 32 frames, 9 of 10 readers were cut at a 60-frame burst.)
func TestBurstAtTheLimitReachesAReadingPeer(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	const (
		burst      = 60 - 1    // messages: the default MessageBurst, less the host's create
		burstBytes = 512 << 10 // the default RelayBytesBurst
	)
	envelope := len(`{"type":"candidate","data":""}`)
	data := strings.Repeat("c", burstBytes/burst-envelope)
	msg := []byte(`{"type":"candidate","data":"` + data + `"}`)
	const pairs = 10
	done := make(chan error, pairs)
	for range pairs {
		host, guest, _, _ := pair(t, th)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for range burst {
				if err := host.ws.Write(ctx, websocket.MessageText, msg); err != nil {
					done <- err
					return
				}
			}
			for i := range burst {
				f, err := guest.hc.Await(ctx, proto.TypeCandidate)
				if err != nil {
					done <- fmt.Errorf("candidate %d of %d: %w", i+1, burst, err)
					return
				}
				if f.Data != data {
					done <- fmt.Errorf("candidate %d altered", i+1)
					return
				}
			}
			done <- nil
		}()
	}
	for range pairs {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	for _, reason := range []string{"slow_consumer", "rate_limited"} {
		if got := th.rejections(reason); got != 0 {
			t.Errorf("%s rejections = %v, want 0", reason, got)
		}
	}
}

// One byte past the relay burst is refused to the sender, who is told.
func TestRelayByteBudget(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{RelayBytesBurst: 64 << 10, RelayBytesRate: 0.001, MessageBurst: 60})
	host, guest, _, _ := pair(t, th)
	envelope := len(`{"type":"candidate","data":""}`)
	host.send(proto.Frame{Type: proto.TypeCandidate, Data: strings.Repeat("c", 32<<10-envelope)})
	host.send(proto.Frame{Type: proto.TypeCandidate, Data: strings.Repeat("c", 32<<10-envelope)})
	guest.expect(proto.TypeCandidate)
	guest.expect(proto.TypeCandidate)
	host.send(proto.Frame{Type: proto.TypeCandidate, Data: "c"})
	host.expectError(proto.CodeRateLimited)
	if code := host.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("close code %v, want 1008", code)
	}
}

// Clients announce their protocol version. The hub serves version 3 only
// (a version-2 client cannot talk to a version-3 one): any other, absent
// (version 1) included, gets an error frame that names both versions and
// tells a person what to do, and the connection stays open for another try.
func TestProtocolVersion(t *testing.T) {
	t.Parallel()
	th := startHub(t, hub.Config{})
	c := dial(t, th.url, nil)
	for _, tc := range []struct {
		version, says int // what the client sends, and what the hub reads
		advice        string
	}{
		{0, 1, "reload the page, or install a newer tryst"},
		{1, 1, "reload the page, or install a newer tryst"},
		{2, 2, "reload the page, or install a newer tryst"},
		{-1, -1, "reload the page, or install a newer tryst"},
		{4, 4, "ask the hub's operator to update it"},
	} {
		for _, typ := range []string{proto.TypeCreate, proto.TypeJoin, proto.TypeResume} {
			c.send(proto.Frame{Type: typ, Version: tc.version, Room: "K7Q-MX2-P9R-TVW-4HN-C8D", Token: "x"})
			f := c.expectError(proto.CodeUnsupportedVersion)
			want := fmt.Sprintf("this hub speaks protocol version 3, your client version %d: ", tc.says)
			if !strings.HasPrefix(f.Message, want) || !strings.Contains(f.Message, tc.advice) {
				t.Errorf("%s with version %d: message %q, want %q…%q", typ, tc.version, f.Message, want, tc.advice)
			}
		}
	}
	// The connection is still open, and version 3 is served.
	c.send(proto.Frame{Type: proto.TypeCreate, Version: 3})
	created := c.expect(proto.TypeCreated)
	if created.Version != 3 {
		t.Errorf("created announces version %d", created.Version)
	}
	g := dial(t, th.url, nil)
	g.send(proto.Frame{Type: proto.TypeJoin, Version: 3, Room: created.Room})
	if f := g.expect(proto.TypeJoined); f.Version != 3 {
		t.Errorf("joined announces version %d", f.Version)
	}
	c.expect(proto.TypePeerJoined)
	r := dial(t, th.url, nil)
	r.send(proto.Frame{Type: proto.TypeResume, Version: 3, Token: created.Token})
	if f := r.expect(proto.TypeResumed); f.Version != 3 {
		t.Errorf("resumed announces version %d", f.Version)
	}
	if got := th.rejections("unsupported_version"); got != 15 {
		t.Errorf("unsupported_version rejections = %v, want 15", got)
	}
}
