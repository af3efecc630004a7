// Package storetest is the conformance suite of hub.Store. Every store
// must pass it: it runs two hubs (nodes A and B) on one store, as two
// processes behind a load balancer would, with real WebSocket clients on
// loopback, and checks what clients see: a host on A and a guest on B
// pairing, resuming from one node to the other, a connection replaced by a
// resume elsewhere, the mailbox's exactly-once delivery, expiry, leave,
// and races between nodes (run it under -race).
//
// A store's test calls Run with a Harness that makes the store: see
// hub's TestMemStoreConformance and the Redis store's.
package storetest

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// TTL is the room TTL the suite asks of a store.
const TTL = 10 * time.Minute

// Harness makes the stores under test.
type Harness struct {
	// New returns the store of node A and the store of node B for one
	// test: the same value for a store that lives in one process, two
	// values sharing one backend (two clients of one Redis) otherwise.
	// Their room TTL is TTL, they read the time from now, and the test
	// closes them. Each call gets a store with no rooms.
	New func(t *testing.T, now func() time.Time) (a, b hub.Store)
	// Sweep removes the rooms that have outlived their TTL by now's
	// clock, as the store's own janitor would.
	Sweep func(t *testing.T, s hub.Store)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
		// cfg, when set, adjusts both hubs' configuration.
		cfg func(*hub.Config)
	}{
		{"HostOnAGuestOnB", testHostOnAGuestOnB, nil},
		{"ResumeOnTheOtherNode", testResumeOnTheOtherNode, nil},
		{"ReplacedFromTheOtherNode", testReplacedFromTheOtherNode, nil},
		{"MailboxExactlyOnce", testMailboxExactlyOnce, nil},
		{"NewerOfferReplacesOlder", testNewerOfferReplacesOlder, nil},
		{"Expiry", testExpiry, nil},
		{"Leave", testLeave, nil},
		{"LeaveGuessLimit", testLeaveGuessLimit, nil},
		{"Reports", testReports, func(c *hub.Config) { c.FailureBurst = 6 }},
		{"Stats", testStats, nil},
		{"RaceJoins", testRaceJoins, nil},
		{"RaceResumes", testRaceResumes, nil},
		{"RacePosts", testRacePosts, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv(t, h, tc.cfg))
		})
	}
}

// env is one test's two nodes on one store.
type env struct {
	h        Harness
	clock    *testclock.Clock
	a, b     node
	detached chan struct{} // a Detach returned, on either node
}

// waitDetached waits for a hub to detach a member, on either node.
func (e *env) waitDetached(t *testing.T) {
	t.Helper()
	(&Watched{detached: e.detached}).WaitDetached(t)
}

// Watched wraps a Store and reports each Detach, so that a test can wait
// for a hub to notice a client that went away without sleeping. The suite
// gives its hubs their stores through it; hub's own tests use it too.
type Watched struct {
	hub.Store
	detached chan struct{}
}

// Watch wraps s.
func Watch(s hub.Store) *Watched { return &Watched{Store: s, detached: make(chan struct{}, 1024)} }

// Detach implements hub.Store, then reports it.
func (w *Watched) Detach(ctx context.Context, code string, role hub.Role, at hub.Ref) error {
	err := w.Store.Detach(ctx, code, role, at)
	w.detached <- struct{}{}
	return err
}

// WaitDetached waits for the next Detach (the timeout is for a hang).
func (w *Watched) WaitDetached(t testing.TB) {
	t.Helper()
	select {
	case <-w.detached:
	case <-time.After(10 * time.Second):
		t.Fatal("no hub detached the member within 10 s")
	}
}

type node struct {
	name  string
	store hub.Store
	hub   *hub.Hub
	m     *metrics.Hub
	url   string
}

func newEnv(t *testing.T, h Harness, tweak func(*hub.Config)) *env {
	t.Helper()
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	sa, sb := h.New(t, clock.Now)
	key := []byte(strings.Repeat("k", hub.MinHubKeyLen))
	e := &env{h: h, clock: clock, detached: make(chan struct{}, 1024)}
	e.a = e.startNode(t, "A", sa, key, tweak)
	e.b = e.startNode(t, "B", sb, key, tweak)
	return e
}

func (e *env) startNode(t *testing.T, name string, s hub.Store, key []byte, tweak func(*hub.Config)) node {
	t.Helper()
	m, err := metrics.NewHub(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := hub.Config{
		Store: &Watched{Store: s, detached: e.detached}, Now: e.clock.Now, Metrics: m, HubKeys: [][]byte{key},
		// Budgets that the suite's bursts from one address do not reach.
		MaxConnsPerIP: -1, RoomBurst: -1, MaxIdleRoomsPerIP: -1, FailureRate: 1e6, FailureBurst: 1 << 20,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})
	return node{name: name, store: s, hub: h, m: m, url: "ws" + strings.TrimPrefix(srv.URL, "http") + proto.WebSocketPath}
}

// client is one WebSocket client of a node.
type client struct {
	t  *testing.T
	hc *hubconn.Conn
}

func (n node) dial(t *testing.T) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, n.url, nil)
	if err != nil {
		t.Fatalf("dial node %s: %v", n.name, err)
	}
	c := &client{t: t, hc: hubconn.New(ws, &hubconn.Options{Buffer: 1024})}
	t.Cleanup(func() { _ = c.hc.Close() })
	return c
}

func (c *client) send(f proto.Frame) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.hc.Send(ctx, f); err != nil {
		c.t.Fatalf("send %s: %v", f.Type, err)
	}
}

// next returns the next frame; the timeout is for a hang, not a wait.
func (c *client) next() (proto.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.hc.Next(ctx)
}

func (c *client) expect(typ string) proto.Frame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if f.Type != typ {
		c.t.Fatalf("got %+v, want a %s frame", f, typ)
	}
	return f
}

func (c *client) expectError(code string) {
	c.t.Helper()
	if f := c.expect(proto.TypeError); f.Code != code {
		c.t.Fatalf("got error %s (%s), want %s", f.Code, f.Message, code)
	}
}

// closed waits for the hub to close c and returns the status.
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.hc.Done():
	case <-time.After(10 * time.Second):
		c.t.Fatal("the hub did not close the connection")
	}
	return websocket.CloseStatus(c.hc.Err())
}

// drop closes c as a client that went away.
func (c *client) drop() {
	_ = c.hc.Close()
	<-c.hc.Done()
}

// create opens a room on n and returns the host and its created frame.
func create(t *testing.T, n node) (*client, proto.Frame) {
	t.Helper()
	host := n.dial(t)
	host.send(proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion})
	return host, host.expect(proto.TypeCreated)
}

// join joins room on n.
func join(t *testing.T, n node, room string) (*client, proto.Frame) {
	t.Helper()
	g := n.dial(t)
	g.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: room})
	return g, g.expect(proto.TypeJoined)
}

// resume resumes token on n.
func resume(t *testing.T, n node, token string) (*client, proto.Frame) {
	t.Helper()
	c := n.dial(t)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: token})
	return c, c.expect(proto.TypeResumed)
}

func testHostOnAGuestOnB(t *testing.T, e *env) {
	host, created := create(t, e.a)
	if created.RoomTTL != int(TTL.Seconds()) {
		t.Errorf("created says room_ttl %d, the store's TTL is %v", created.RoomTTL, TTL)
	}
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "offer"})
	guest, _ := join(t, e.b, created.Room)
	if f := guest.expect(proto.TypeOffer); f.Data != "offer" {
		t.Errorf("guest on B got offer %q", f.Data)
	}
	if f := host.expect(proto.TypePeerJoined); f.Token == "" {
		t.Error("peer-joined on A carries no fresh token")
	}
	guest.send(proto.Frame{Type: proto.TypeAnswer, Data: "answer"})
	if f := host.expect(proto.TypeAnswer); f.Data != "answer" {
		t.Errorf("host on A got answer %q", f.Data)
	}
	for i := range 3 {
		host.send(proto.Frame{Type: proto.TypeCandidate, Data: "h" + string(rune('0'+i))})
		guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "g" + string(rune('0'+i))})
	}
	for i := range 3 {
		if f := guest.expect(proto.TypeCandidate); f.Data != "h"+string(rune('0'+i)) {
			t.Errorf("guest's candidate %d: %q", i, f.Data)
		}
		if f := host.expect(proto.TypeCandidate); f.Data != "g"+string(rune('0'+i)) {
			t.Errorf("host's candidate %d: %q", i, f.Data)
		}
	}
	// The pairing is measured once, by the node that delivered the answer.
	if n := pairings(t, e.a.m) + pairings(t, e.b.m); n != 1 {
		t.Errorf("pairings observed on A and B: %d, want 1", n)
	}
}

func testResumeOnTheOtherNode(t *testing.T, e *env) {
	host, created := create(t, e.a)
	guest, joined := join(t, e.b, created.Room)
	token := host.expect(proto.TypePeerJoined).Token
	host.drop()
	guest.expect(proto.TypePeerLeft)
	host2, r := resume(t, e.b, token)
	if r.Room != created.Room || r.Role != "host" || r.Peer == nil || !*r.Peer {
		t.Errorf("host resumed on B: %+v", r)
	}
	guest.expect(proto.TypePeerBack)
	host2.send(proto.Frame{Type: proto.TypeOffer, Data: "fresh offer"})
	if f := guest.expect(proto.TypeOffer); f.Data != "fresh offer" {
		t.Errorf("offer after the resume: %q", f.Data)
	}
	// And the guest from B to A.
	guest.drop()
	host2.expect(proto.TypePeerLeft)
	guest2, g := resume(t, e.a, joined.Token)
	if g.Role != "guest" || g.Peer == nil || !*g.Peer {
		t.Errorf("guest resumed on A: %+v", g)
	}
	host2.expect(proto.TypePeerBack)
	guest2.send(proto.Frame{Type: proto.TypeAnswer, Data: "answer"})
	if f := host2.expect(proto.TypeAnswer); f.Data != "answer" {
		t.Errorf("answer after both resumed: %q", f.Data)
	}
}

func testReplacedFromTheOtherNode(t *testing.T, e *env) {
	host, created := create(t, e.a)
	guest, _ := join(t, e.b, created.Room)
	token := host.expect(proto.TypePeerJoined).Token
	// The host comes back on B while its connection on A still looks
	// alive (a NAT rebinding, a client that reconnected through the
	// balancer): A's connection is closed as replaced.
	host2, r := resume(t, e.b, token)
	if r.Peer == nil || !*r.Peer {
		t.Errorf("resumed: %+v", r)
	}
	if code := host.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("replaced connection on A closed with %v, want 1008", code)
	}
	guest.expect(proto.TypePeerBack)
	// The old connection's detach is stale: the host stays attached on B,
	// so the guest hears of no peer-left and candidates reach B.
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "c1"})
	if f := host2.expect(proto.TypeCandidate); f.Data != "c1" {
		t.Errorf("candidate to the resumed host: %q", f.Data)
	}
	host2.send(proto.Frame{Type: proto.TypeCandidate, Data: "c2"})
	if f := guest.expect(proto.TypeCandidate); f.Data != "c2" {
		t.Errorf("guest got %+v, want the candidate (no peer-left)", f)
	}
}

func testMailboxExactlyOnce(t *testing.T, e *env) {
	host, created := create(t, e.a)
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "offer"})
	guest, joined := join(t, e.b, created.Room)
	guest.expect(proto.TypeOffer)
	token := host.expect(proto.TypePeerJoined).Token
	host.drop()
	guest.expect(proto.TypePeerLeft)
	// The answer waits for the absent host.
	guest.send(proto.Frame{Type: proto.TypeAnswer, Data: "answer"})
	h2 := e.b.dial(t)
	h2.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: token})
	h2.expect(proto.TypeResumed)
	if f := h2.expect(proto.TypeAnswer); f.Data != "answer" {
		t.Errorf("stored answer: %q", f.Data)
	}
	guest.expect(proto.TypePeerBack)
	// Delivered once: a resume on A now finds nothing waiting.
	h3 := e.a.dial(t)
	h3.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: token})
	h3.expect(proto.TypeResumed)
	h2.closed()
	guest.expect(proto.TypePeerBack)
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "after"})
	if f := h3.expect(proto.TypeCandidate); f.Data != "after" {
		t.Errorf("after the second resume the host got %+v, want only the candidate", f)
	}
	// The same for an offer waiting for an absent guest.
	guest.drop()
	h3.expect(proto.TypePeerLeft)
	h3.send(proto.Frame{Type: proto.TypeOffer, Data: "offer 2"})
	g2, _ := resume(t, e.a, joined.Token)
	if f := g2.expect(proto.TypeOffer); f.Data != "offer 2" {
		t.Errorf("stored offer: %q", f.Data)
	}
	h3.expect(proto.TypePeerBack)
	g2.drop()
	h3.expect(proto.TypePeerLeft)
	g3, _ := resume(t, e.b, joined.Token)
	h3.expect(proto.TypePeerBack)
	h3.send(proto.Frame{Type: proto.TypeCandidate, Data: "c"})
	if f := g3.expect(proto.TypeCandidate); f.Data != "c" {
		t.Errorf("the offer came twice: %+v", f)
	}
}

func testNewerOfferReplacesOlder(t *testing.T, e *env) {
	host, created := create(t, e.a)
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "old"})
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "new"})
	// Both offers are stored once a bad request sent after them is
	// answered (the hub handles a connection's frames in order).
	host.send(proto.Frame{Type: proto.TypeAnswer, Data: "x"})
	host.expectError(proto.CodeBadRequest)
	guest, _ := join(t, e.b, created.Room)
	if f := guest.expect(proto.TypeOffer); f.Data != "new" {
		t.Errorf("guest got offer %q, want the newer one", f.Data)
	}
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "c"})
	host.expect(proto.TypePeerJoined)
	if f := host.expect(proto.TypeCandidate); f.Data != "c" {
		t.Errorf("host got %+v", f)
	}
}

func testExpiry(t *testing.T, e *env) {
	host, created := create(t, e.a)
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "offer"})
	guest, joined := join(t, e.b, created.Room)
	guest.expect(proto.TypeOffer)
	host.expect(proto.TypePeerJoined)
	host.drop()
	guest.expect(proto.TypePeerLeft)
	guest.drop()
	e.waitDetached(t)
	e.waitDetached(t)
	// Nobody attached: the room lives for its TTL from now.
	e.clock.Advance(TTL - time.Second)
	e.h.Sweep(t, e.a.store)
	g2, _ := resume(t, e.a, joined.Token)
	g2.drop()
	e.waitDetached(t)
	e.clock.Advance(TTL - time.Second)
	e.h.Sweep(t, e.b.store)
	g3, _ := resume(t, e.b, joined.Token)
	g3.drop()
	e.waitDetached(t)
	e.clock.Advance(TTL + time.Second)
	e.h.Sweep(t, e.b.store)
	c := e.a.dial(t)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: joined.Token})
	c.expectError(proto.CodeNoSuchRoom)
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	c.expectError(proto.CodeNoSuchRoom)
	st, err := e.b.store.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rooms != 0 || st.MailboxBytes != 0 || st.Expired != 1 {
		t.Errorf("after expiry, the sweeping node's store says %+v, want no rooms, no mailbox bytes and 1 expired", st)
	}
}

func testLeave(t *testing.T, e *env) {
	host, created := create(t, e.a)
	guest, _ := join(t, e.b, created.Room)
	host.expect(proto.TypePeerJoined)
	guest.send(proto.Frame{Type: proto.TypeLeave})
	if f := host.expect(proto.TypeRoomClosed); f.Reason != "guest left" || f.Code != "" {
		t.Errorf("room-closed reason %q, code %q; want \"guest left\" and no code", f.Reason, f.Code)
	}
	if code := guest.closed(); code != websocket.StatusNormalClosure {
		t.Errorf("guest closed with %v", code)
	}
	c := e.a.dial(t)
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	c.expectError(proto.CodeNoSuchRoom)
	c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: created.Token})
	c.expectError(proto.CodeNoSuchRoom)
}

// testLeaveGuessLimit: a member that leaves because its client gave up
// after too many failed password attempts says so (leave with reason
// guess_limit), and the other member, on the other node, is told in
// room-closed's code; any other reason is a plain leave.
func testLeaveGuessLimit(t *testing.T, e *env) {
	host, created := create(t, e.a)
	guest, _ := join(t, e.b, created.Room)
	host.expect(proto.TypePeerJoined)
	guest.send(proto.Frame{Type: proto.TypeLeave, Reason: proto.ClosedGuessLimit})
	f := host.expect(proto.TypeRoomClosed)
	if f.Code != proto.ClosedGuessLimit || f.Reason != "the other side closed the room after too many failed password attempts" {
		t.Errorf("room-closed after leave with guess_limit: code %q, reason %q", f.Code, f.Reason)
	}
	if code := guest.closed(); code != websocket.StatusNormalClosure {
		t.Errorf("guest closed with %v", code)
	}
	c := e.a.dial(t)
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	c.expectError(proto.CodeNoSuchRoom)

	// The host leaves with a reason the hub does not know.
	host, created = create(t, e.b)
	guest, _ = join(t, e.a, created.Room)
	host.expect(proto.TypePeerJoined)
	host.send(proto.Frame{Type: proto.TypeLeave, Reason: "bored"})
	if f := guest.expect(proto.TypeRoomClosed); f.Code != "" || f.Reason != "host left" {
		t.Errorf("room-closed after leave with an unknown reason: code %q, reason %q", f.Code, f.Reason)
	}
}

// testReports: failed-confirmation reports from a guest on B. The charge
// reaches the node that holds the other member's connection (A), which
// throttles that address; the count per room is the reporting node's own.
// Every client of the suite has one address (loopback), and the clock
// stands still, so the failed attempts are exact: six per node.
func testReports(t *testing.T, e *env) {
	host, created := create(t, e.a)
	guest, _ := join(t, e.b, created.Room)
	host.expect(proto.TypePeerJoined)
	for range 5 { // the room's burst
		guest.send(proto.Frame{Type: proto.TypeReport, Reason: proto.ReportFailedConfirmation})
	}
	// The reports never reach the host's client; the candidate after
	// them does, once A has charged the address five times (A gets the
	// store's deliveries in order).
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "after"})
	if f := host.expect(proto.TypeCandidate); f.Data != "after" {
		t.Fatalf("host got %+v, want the candidate", f)
	}
	if n := testutil.ToFloat64(e.b.m.FailedConfirmations); n != 5 {
		t.Errorf("B counted %v failed confirmations, want 5", n)
	}
	if n := testutil.ToFloat64(e.a.m.FailedConfirmations); n != 0 {
		t.Errorf("A counted %v failed confirmations, want 0 (B took the reports)", n)
	}

	// On A: the room's count is B's, so a join gets as far as room_full,
	// the address's sixth failed attempt; the seventh is throttled.
	c := e.a.dial(t)
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	c.expectError(proto.CodeRoomFull)
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "ZZZ-ZZZ-ZZZ-ZZZ-ZZZ-ZZZ"})
	c.expectError(proto.CodeThrottled)
	if code := c.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("throttled join on A closed with %v, want 1008", code)
	}

	// On B: joins into the room are refused while its bucket is empty,
	// and the address has all its failed attempts (B charged nothing).
	c = e.b.dial(t)
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
	c.expectError(proto.CodeThrottled)
	if code := c.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("join into the reported room on B closed with %v, want 1008", code)
	}
	c = e.b.dial(t)
	c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "ZZZ-ZZZ-ZZZ-ZZZ-ZZZ-ZZZ"})
	c.expectError(proto.CodeNoSuchRoom)
	if n := testutil.ToFloat64(e.b.m.Rejections.WithLabelValues(metrics.RejectRoomGuesses)); n != 1 {
		t.Errorf("B's room_guesses rejections: %v, want 1", n)
	}
}

func testStats(t *testing.T, e *env) {
	if e.a.store.TTL() != TTL || e.b.store.TTL() != TTL {
		t.Errorf("TTL: %v and %v, want %v", e.a.store.TTL(), e.b.store.TTL(), TTL)
	}
	for _, s := range []hub.Store{e.a.store, e.b.store} {
		if err := s.Ready(context.Background()); err != nil {
			t.Errorf("Ready: %v", err)
		}
	}
	host, _ := create(t, e.a)
	host.send(proto.Frame{Type: proto.TypeOffer, Data: "12345"})
	create(t, e.b)
	// The offer is stored once the hub has handled it: a bad request sent
	// after it is answered after that.
	host.send(proto.Frame{Type: proto.TypeAnswer, Data: "x"})
	host.expectError(proto.CodeBadRequest)
	for _, s := range []hub.Store{e.a.store, e.b.store} {
		st, err := s.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Rooms != 2 || st.MailboxBytes != len("12345") {
			t.Errorf("stats %+v, want 2 rooms and 5 mailbox bytes", st)
		}
	}
}

// testRaceJoins: guests on both nodes race for one room; exactly one gets in.
func testRaceJoins(t *testing.T, e *env) {
	host, created := create(t, e.a)
	const n = 16
	results := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		nd := e.a
		if i%2 == 1 {
			nd = e.b
		}
		c := nd.dial(t)
		wg.Go(func() {
			c.send(proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room})
			f, err := c.next()
			switch {
			case err != nil:
				results <- err.Error()
			case f.Type == proto.TypeError:
				results <- f.Code
			default:
				results <- f.Type
			}
		})
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts[proto.TypeJoined] != 1 || counts[proto.CodeRoomFull] != n-1 {
		t.Errorf("racing joins: %v, want 1 joined and %d room_full", counts, n-1)
	}
	host.expect(proto.TypePeerJoined)
}

// testRaceResumes: one member's token resumed on both nodes at once; one
// connection ends up attached, every other one is closed as replaced, and
// the other member sees the host present.
func testRaceResumes(t *testing.T, e *env) {
	host, created := create(t, e.a)
	guest, _ := join(t, e.b, created.Room)
	token := host.expect(proto.TypePeerJoined).Token
	host.drop()
	guest.expect(proto.TypePeerLeft)
	const n = 8
	conns := make([]*client, n)
	for i := range conns {
		nd := e.a
		if i%2 == 1 {
			nd = e.b
		}
		conns[i] = nd.dial(t)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.send(proto.Frame{Type: proto.TypeResume, Version: proto.ProtocolVersion, Token: token}) })
	}
	wg.Wait()
	// Every resume succeeds in turn and replaces the one before: all but
	// one connection are closed (a connection replaced at once may be
	// closed before its resumed frame goes out), the last one attached
	// stays.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closed := make(chan *client, n)
	for _, c := range conns {
		go func() {
			select {
			case <-c.hc.Done():
				closed <- c
			case <-ctx.Done():
			}
		}()
	}
	gone := map[*client]bool{}
	for len(gone) < n-1 {
		select {
		case c := <-closed:
			gone[c] = true
		case <-ctx.Done():
			t.Fatalf("%d of %d replaced connections closed", len(gone), n-1)
		}
	}
	var alive *client
	for _, c := range conns {
		if !gone[c] {
			alive = c
		}
	}
	// The guest saw the host come back and reaches the one that stayed,
	// which nobody closes.
	guest.expect(proto.TypePeerBack)
	guest.send(proto.Frame{Type: proto.TypeCandidate, Data: "c"})
	alive.expect(proto.TypeResumed)
	if f := alive.expect(proto.TypeCandidate); f.Data != "c" {
		t.Errorf("candidate %q", f.Data)
	}
	cancel()
	select {
	case c := <-closed:
		t.Errorf("the connection left attached was closed too (%v)", c == alive)
	default:
	}
}

// testRacePosts: both members post candidates as fast as they can from two
// nodes; every one arrives, in order.
func testRacePosts(t *testing.T, e *env) {
	host, created := create(t, e.a)
	guest, _ := join(t, e.b, created.Room)
	host.expect(proto.TypePeerJoined)
	const n = 40 // below the hub's per-connection message burst
	var wg sync.WaitGroup
	for _, c := range []*client{host, guest} {
		wg.Go(func() {
			for i := range n {
				c.send(proto.Frame{Type: proto.TypeCandidate, Data: candidate(i)})
			}
		})
	}
	for _, c := range []*client{host, guest} {
		wg.Go(func() {
			for i := range n {
				f, err := c.next()
				if err != nil {
					t.Errorf("candidate %d: %v", i, err)
					return
				}
				if f.Type != proto.TypeCandidate || f.Data != candidate(i) {
					t.Errorf("got %+v, want candidate %q", f, candidate(i))
					return
				}
			}
		})
	}
	wg.Wait()
}

func candidate(i int) string { return "candidate " + string(rune('A'+i%26)) + string(rune('a'+i/26)) }

// pairings is how many pairings m observed.
func pairings(t *testing.T, m *metrics.Hub) uint64 {
	t.Helper()
	var out dto.Metric
	if err := m.Pairing.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram().GetSampleCount()
}
