package hub_test

import (
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/hub/storetest"
)

// TestMemStoreConformance runs the store suite on one MemStore shared by
// two hubs in this process.
func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, now func() time.Time) (hub.Store, hub.Store) {
			s := hub.NewMemStore(storetest.TTL, now)
			t.Cleanup(func() { _ = s.Close() })
			return s, s
		},
		Sweep: func(t *testing.T, s hub.Store) { s.(*hub.MemStore).Sweep() },
	})
}
