package client

import (
	"context"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/teststack"
	"github.com/tryst-chat/tryst/metrics"
)

// stack is a real hub and TURN relay on loopback, as `tryst serve` wires them.
type stack struct {
	*teststack.Stack
	hubURL string
	tm     *metrics.TURN
}

func startStack(t *testing.T, store hub.Store) *stack {
	t.Helper()
	st := teststack.Start(t, teststack.Options{Store: store})
	return &stack{Stack: st, hubURL: st.URL, tm: st.TURNMetrics}
}

// member runs a Client and records its events.
type member struct {
	t      *testing.T
	c      *Client
	events chan Event
	done   chan error
	cancel context.CancelFunc
}

func startMember(t *testing.T, cfg Config) *member {
	t.Helper()
	m := &member{t: t, events: make(chan Event, 4096), done: make(chan error, 1)}
	cfg.LoopbackOnly = true
	if cfg.iterations == 0 {
		cfg.iterations = 1000 // the real 600,000 is checked in e2e's vectors
	}
	cfg.OnEvent = func(ev Event) {
		select {
		case m.events <- ev:
		default:
			t.Errorf("event buffer full; dropped %+v", ev)
		}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.c = c
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			t.Error("client did not stop")
		}
	})
	return m
}

// waitFor returns the next event of kind, failing after a generous timeout
// (a hang, not synchronisation).
func (m *member) waitFor(kind EventKind) Event {
	m.t.Helper()
	_, ev := m.until(kind)
	return ev
}

// until is waitFor that also returns the events it skipped.
func (m *member) until(kind EventKind) (skipped []Event, _ Event) {
	m.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-m.events:
			if testing.Verbose() {
				m.t.Logf("event %d %q %q", ev.Kind, ev.Text, ev.Path)
			}
			if ev.Kind == kind {
				return skipped, ev
			}
			skipped = append(skipped, ev)
		case err := <-m.done:
			m.done <- err
			m.t.Fatalf("client stopped (%v) while waiting for event %d", err, kind)
		case <-deadline:
			m.t.Fatalf("timed out waiting for event %d", kind)
		}
	}
}

// result waits for Run to return.
func (m *member) result() error {
	m.t.Helper()
	select {
	case err := <-m.done:
		m.done <- err
		return err
	case <-time.After(60 * time.Second):
		m.t.Fatal("client did not finish")
	}
	return nil
}

// pairUp starts a host and a guest and waits until both are connected.
func pairUp(t *testing.T, st *stack, host, guest Config) (*member, *member) {
	t.Helper()
	host.Hub, guest.Hub = st.hubURL, st.hubURL
	if host.Password == "" {
		host.Password = "hunter2"
	}
	if guest.Password == "" {
		guest.Password = host.Password
	}
	h := startMember(t, host)
	code := h.waitFor(EventRoom).Text
	guest.Room = code
	g := startMember(t, guest)
	return h, g
}
