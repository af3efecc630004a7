package client_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/metrics"
	"github.com/tryst-chat/tryst/proto"
)

// budgetRefill is the hub's refill interval in these tests: its
// retry_after, and so the least a client must wait, is 2 s.
const budgetRefill = 2 * time.Second

// budgetHub is a hub whose per-address credential budget is one token,
// refilled at one per budgetRefill on a clock that only the test moves, so
// the budget stays spent until the test says otherwise. It hands out the
// relay of a teststack. Every member dials it under its own path prefix
// (http://…/name, which the client turns into /name/v1/ws) so the test sees
// when each member (re)connects.
type budgetHub struct {
	t     *testing.T
	url   string
	st    *stack
	clock *testclock.Clock
	m     *metrics.Hub

	onDial func(name string, n int) // runs before the hub sees name's nth dial

	mu    sync.Mutex
	dials map[string]chan time.Time
	count map[string]int
}

func startBudgetHub(t *testing.T, onDial func(name string, n int)) *budgetHub {
	t.Helper()
	st := startStack(t, nil)
	b := &budgetHub{t: t, st: st, clock: testclock.New(time.Now()), dials: map[string]chan time.Time{}, count: map[string]int{}, onDial: onDial}
	m, err := metrics.NewHub(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b.m = m
	h, err := hub.New(hub.Config{
		CredentialBurst: 1, CredentialRate: rate.Every(budgetRefill), Now: b.clock.Now, Metrics: m,
		ICE: func(string) proto.ICEConfig {
			user, pass, _ := st.TURN.Credential("test")
			addr := st.TURN.UDPAddr().String()
			return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
				{URLs: []string{"stun:" + addr}},
				{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: user, Credential: pass},
			}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		at := time.Now()
		b.mu.Lock()
		b.count[name]++
		n := b.count[name]
		b.mu.Unlock()
		if b.onDial != nil {
			b.onDial(name, n)
		}
		b.dialsOf(name) <- at
		http.StripPrefix("/"+name, h).ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	b.url = srv.URL
	return b
}

func (b *budgetHub) dialsOf(name string) chan time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.dials[name]
	if !ok {
		ch = make(chan time.Time, 64)
		b.dials[name] = ch
	}
	return ch
}

// member starts a client that dials the hub as name.
func (b *budgetHub) member(name string, cfg client.Config) *clienttest.Member {
	b.t.Helper()
	cfg.Hub = b.url + "/" + name
	if cfg.Password == "" {
		cfg.Password = "hunter2"
	}
	return startMember(b.t, cfg)
}

// nextDial returns when name next dialled the hub (a hang fails the test).
func (b *budgetHub) nextDial(name string) time.Time {
	b.t.Helper()
	select {
	case at := <-b.dialsOf(name):
		return at
	case <-time.After(60 * time.Second):
		b.t.Fatalf("%s did not dial the hub", name)
	}
	return time.Time{}
}

// noDial fails if name has dialled the hub since the last nextDial.
func (b *budgetHub) noDial(name string) {
	b.t.Helper()
	select {
	case at := <-b.dialsOf(name):
		b.t.Errorf("%s dialled the hub again at %v", name, at)
	default:
	}
}

func (b *budgetHub) rejections() float64 {
	return testutil.ToFloat64(b.m.Rejections.WithLabelValues(metrics.RejectCredentials))
}

// TestRefusedCreateWaitsRetryAfter: a create refused for the spent budget
// is reported once, with when it is retried, and retried no sooner than the
// hub's retry_after (not at the usual first backoff of 500 ms); the retry
// then succeeds.
func TestRefusedCreateWaitsRetryAfter(t *testing.T) {
	var b *budgetHub
	b = startBudgetHub(t, func(name string, n int) {
		if name == "second" && n == 2 {
			// The retry: the budget has refilled by now.
			b.clock.Advance(budgetRefill)
		}
	})
	first := b.member("first", client.Config{}) // spends the budget
	first.WaitFor(client.EventRoom)

	second := b.member("second", client.Config{})
	refused := b.nextDial("second")
	ev := second.WaitFor(client.EventWarning)
	if !strings.Contains(ev.Text, "refused to open a room") || !strings.Contains(ev.Text, "retrying in 2s") {
		t.Errorf("refused create reported as %q", ev.Text)
	}
	retried := b.nextDial("second")
	if gap := retried.Sub(refused); gap < budgetRefill {
		t.Errorf("create retried %v after the refusal, before the hub's retry_after of %v", gap, budgetRefill)
	}
	second.WaitFor(client.EventRoom)
	b.noDial("second")
	if got := b.rejections(); got != 1 {
		t.Errorf("credentials rejections = %v, want only the first create", got)
	}
	for _, ev := range second.Drain() {
		if ev.Kind == client.EventWarning || ev.Kind == client.EventDisconnected {
			t.Errorf("reported again: %d %q", ev.Kind, ev.Text)
		}
	}
}

// TestLimitedJoinConnectsDirect: a guest whose join gets STUN only says so
// once and connects directly. When that connection then fails, it does not
// retry with the same ICE servers on the same hub connection but resumes,
// no sooner than retry_after, for a chance at a relay; the budget is still
// spent, so it connects directly again, without repeating the notice.
func TestLimitedJoinConnectsDirect(t *testing.T) {
	b := startBudgetHub(t, nil)
	host := b.member("host", client.Config{}) // spends the budget
	code := host.WaitFor(client.EventRoom).Text
	guest := b.member("guest", client.Config{Room: code})
	b.nextDial("guest")

	if ev := guest.WaitFor(client.EventWarning); ev.Text != client.NoticeNoRelay {
		t.Errorf("limited join reported as %q, want %q", ev.Text, client.NoticeNoRelay)
	}
	if ev := guest.WaitFor(client.EventConnected); !strings.HasPrefix(ev.Path, "direct") {
		t.Errorf("guest path %q, want direct (no relay was handed out)", ev.Path)
	}
	host.WaitFor(client.EventConnected)

	cut := time.Now()
	guest.Client.DropPeer()
	ev := guest.WaitFor(client.EventDisconnected)
	if !strings.Contains(ev.Text, "no relay to fall back on") || !strings.Contains(ev.Text, "in 2s") {
		t.Errorf("failure while limited reported as %q", ev.Text)
	}
	if gap := b.nextDial("guest").Sub(cut); gap < budgetRefill {
		t.Errorf("resumed %v after the failure, before the hub's retry_after of %v", gap, budgetRefill)
	}
	if ev := guest.WaitFor(client.EventConnected); !strings.HasPrefix(ev.Path, "direct") {
		t.Errorf("guest path %q after the resume, want direct", ev.Path)
	}
	for _, ev := range guest.Drain() {
		if ev.Kind == client.EventWarning {
			t.Errorf("warned again: %q", ev.Text)
		}
	}
	if got := b.rejections(); got != 2 {
		t.Errorf("credentials rejections = %v, want the join and the resume", got)
	}
}

// TestRelayOnlyLimitedResumesForRelay: a relay-only guest whose join gets
// STUN only cannot connect at all. It says so, leaves the hub connection,
// and resumes no sooner than retry_after; that resume carries TURN again
// and the pair connects through the relay.
func TestRelayOnlyLimitedResumesForRelay(t *testing.T) {
	var b *budgetHub
	b = startBudgetHub(t, func(name string, n int) {
		if name == "guest" && n == 2 {
			b.clock.Advance(budgetRefill) // the resume finds a token
		}
	})
	host := b.member("host", client.Config{Relay: true}) // spends the budget
	code := host.WaitFor(client.EventRoom).Text
	guest := b.member("guest", client.Config{Room: code, Relay: true})
	joined := b.nextDial("guest")

	ev := guest.WaitFor(client.EventWarning)
	if !strings.Contains(ev.Text, "only relayed connections are allowed") || !strings.Contains(ev.Text, "in 2s") {
		t.Errorf("limited join with relay only reported as %q", ev.Text)
	}
	if gap := b.nextDial("guest").Sub(joined); gap < budgetRefill {
		t.Errorf("resumed %v after the join, before the hub's retry_after of %v", gap, budgetRefill)
	}
	skipped, ev := guest.WaitUntil(client.EventConnected)
	if ev.Path != "relay" {
		t.Errorf("guest path %q, want relay", ev.Path)
	}
	for _, ev := range skipped {
		// Without a relay a relay-only connection cannot even start:
		// trying one only delays the resume by ICE's failure timeout.
		if ev.Kind == client.EventDisconnected {
			t.Errorf("tried a connection without a relay: %q", ev.Text)
		}
	}
	host.WaitFor(client.EventConnected)
	host.Client.Send("through the relay")
	if ev := guest.WaitFor(client.EventChat); ev.Text != "through the relay" {
		t.Errorf("guest got %q", ev.Text)
	}
	if b.st.RelayedBytes() == 0 {
		t.Error("nothing went through the relay")
	}
	b.noDial("guest")
	if got := b.rejections(); got != 1 {
		t.Errorf("credentials rejections = %v, want only the join", got)
	}
}
