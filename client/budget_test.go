package client

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/testclock"
	"github.com/tryst-chat/tryst/metrics"
)

// TestClientAtCredentialBudget runs clients against a hub whose
// per-address credential budget (one, never refilled until the clock is
// advanced) is spent: a guest's join is answered with STUN only and still
// connects directly; a second host's create is refused with a clear error
// and retried with backoff until the budget allows it.
func TestClientAtCredentialBudget(t *testing.T) {
	st := startStack(t, nil)
	clock := testclock.New(time.Now())
	hm, err := metrics.NewHub(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{
		CredentialBurst: 1, CredentialRate: rate.Every(time.Hour), Now: clock.Now, Metrics: hm,
		ICE: func(string) hub.ICEConfig {
			user, pass, _ := st.TURN.Credential("test")
			addr := st.TURN.UDPAddr().String()
			return hub.ICEConfig{TTL: 600, Servers: []hub.ICEServer{
				{URLs: []string{"stun:" + addr}},
				{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: user, Credential: pass},
			}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})

	host := startMember(t, Config{Hub: srv.URL, Password: "hunter2"}) // spends the budget
	code := host.waitFor(EventRoom).Text
	guest := startMember(t, Config{Hub: srv.URL, Password: "hunter2", Room: code})
	if ev := guest.waitFor(EventConnected); !strings.HasPrefix(ev.Path, "direct") {
		t.Errorf("guest path %q, want direct (no relay was handed out)", ev.Path)
	}
	host.waitFor(EventConnected)

	second := startMember(t, Config{Hub: srv.URL, Password: "hunter2"})
	ev := second.waitFor(EventDisconnected)
	if !strings.Contains(ev.Text, "try again in") || !strings.Contains(ev.Text, "reconnecting in") {
		t.Errorf("refused create reported as %q", ev.Text)
	}
	clock.Advance(time.Hour)
	second.waitFor(EventRoom)
	if got := testutil.ToFloat64(hm.Rejections.WithLabelValues(metrics.RejectCredentials)); got < 2 {
		t.Errorf("credentials rejections = %v, want the join and at least one create", got)
	}
}
