package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
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

// TestMemStoreBudgetsExactAcrossShards: the node-wide budgets hold exactly
// when rooms in different shards race for them, and Stats counts what the
// shards hold.
func TestMemStoreBudgetsExactAcrossShards(t *testing.T) {
	const maxRooms, tries = 10, 64
	s := hub.NewMemStoreWithLimits(time.Hour, nil, hub.StoreLimits{MaxRooms: maxRooms, MaxMailboxBytes: 1000})
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	addr := netip.MustParseAddr("192.0.2.1")

	var made, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			m := hub.Member{Room: fmt.Sprintf("ROOM-%04d", i), Role: hub.Host}
			err := s.Create(ctx, m, hub.Attach{Ref: hub.Ref{Node: "n", Conn: uint64(i + 1)}, Addr: addr})
			var le *hub.LimitError
			switch {
			case err == nil:
				made.Add(1)
			case errors.As(err, &le) && le.Reason == hub.LimitRooms:
				refused.Add(1)
			default:
				t.Errorf("create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if made.Load() != maxRooms || refused.Load() != tries-maxRooms {
		t.Fatalf("%d rooms made, %d refused; want %d and %d", made.Load(), refused.Load(), maxRooms, tries-maxRooms)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Rooms != maxRooms || s.Len() != maxRooms {
		t.Fatalf("stats %+v (err %v), len %d; want %d rooms", st, err, s.Len(), maxRooms)
	}

	// Offers to absent guests, 100 bytes each, from every room at once:
	// exactly ten fit the 1,000-byte mailbox budget.
	var stored atomic.Int32
	codes := make([]string, 0, maxRooms)
	for i := range tries {
		code := fmt.Sprintf("ROOM-%04d", i)
		if s.Post(ctx, code, hub.Host, hub.Event{Type: "offer", Data: strings.Repeat("o", 10)}) == nil {
			codes = append(codes, code)
		}
	}
	if len(codes) != maxRooms {
		t.Fatalf("%d rooms took a post, want %d", len(codes), maxRooms)
	}
	for range 3 {
		for _, code := range codes {
			wg.Go(func() {
				err := s.Post(ctx, code, hub.Host, hub.Event{Type: "offer", Data: strings.Repeat("o", 100)})
				if err == nil {
					stored.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if stored.Load() != 3*maxRooms {
		t.Fatalf("%d of %d replacing offers stored; each fits the budget", stored.Load(), 3*maxRooms)
	}
	st, _ = s.Stats(ctx)
	if st.MailboxBytes > 1000 {
		t.Fatalf("mailboxes hold %d bytes, past the 1,000-byte budget", st.MailboxBytes)
	}
	if st.MailboxBytes != maxRooms*100 {
		t.Fatalf("mailboxes hold %d bytes, want %d (each room's newest offer)", st.MailboxBytes, maxRooms*100)
	}
	for _, code := range codes {
		if err := s.Leave(ctx, code, hub.Host, hub.LeftRoom); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = s.Stats(ctx)
	if st.Rooms != 0 || st.MailboxBytes != 0 {
		t.Fatalf("after every room left: %+v", st)
	}
}
