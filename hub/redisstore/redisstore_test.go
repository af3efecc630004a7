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
