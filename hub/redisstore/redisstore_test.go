package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/hub/redisstore"
	"github.com/tryst-chat/tryst/hub/storetest"
	"github.com/tryst-chat/tryst/internal/redistest"
)

var prefixes atomic.Int64

// newStore connects a store to srv under prefix, closed when the test ends.
func newStore(t *testing.T, srv *redistest.Server, prefix string, now func() time.Time) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(context.Background(), redisstore.Options{
		URL: srv.URL(), Prefix: prefix, TTL: storetest.TTL, Now: now, SweepEvery: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformance runs the store suite with each node on its own client
// of one real redis-server, each test under its own key prefix.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, now func() time.Time) (hub.Store, hub.Store) {
			prefix := fmt.Sprintf("test%d:", prefixes.Add(1))
			return newStore(t, srv, prefix, now), newStore(t, srv, prefix, now)
		},
		Sweep: func(t *testing.T, s hub.Store) {
			if _, err := s.(*redisstore.Store).Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// events is a node's connections as a channel of what reaches them.
type events chan hub.Event

func (e events) Deliver(_ uint64, ev hub.Event) bool { e <- ev; return true }
func (e events) Replaced(uint64)                     {}

// TestReadyWaitsForTheSubscription: after Redis has been down, commands
// work again a little before a node's subscription has reconnected, and
// what is published in between is lost. The store is not ready until its
// own subscription delivers again; once it is, a relayed frame arrives.
func TestReadyWaitsForTheSubscription(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newStore(t, srv, "ready:", time.Now)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(events, 16)
	if err := s.Register(ctx, "a", got); err != nil {
		t.Fatal(err)
	}
	defer s.Unregister("a")
	host := hub.Member{Room: "ROOM", Role: hub.Host, Since: 1, Nonce: 1}
	guest := hub.Member{Room: "ROOM", Role: hub.Guest, Since: 2, Nonce: 2}
	if err := s.Create(ctx, host, hub.Attach{Ref: hub.Ref{Node: "a", Conn: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, guest, hub.Attach{Ref: hub.Ref{Node: "a", Conn: 2}}); err != nil {
		t.Fatal(err)
	}
	if ev := <-got; ev.Type != "peer-joined" {
		t.Fatalf("host got %q, want peer-joined", ev.Type)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("ready before the outage: %v", err)
	}

	srv.Kill()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("ready with Redis down")
	}
	srv.Restart(t)
	if err := s.Ready(ctx); err == nil {
		t.Fatal("ready at once after Redis came back: the subscription was not known to deliver")
	}
	for s.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			t.Fatal("never ready again after Redis came back")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := s.Post(ctx, "ROOM", hub.Guest, hub.Event{Type: "candidate", Data: "after"}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Type != "candidate" || ev.Data != "after" {
			t.Fatalf("host got %+v, want the candidate", ev)
		}
	case <-ctx.Done():
		t.Fatal("a frame relayed once the store was ready again never arrived")
	}
}
