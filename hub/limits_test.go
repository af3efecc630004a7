package hub

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tryst-chat/tryst/proto"
)

func TestLimiterTableWait(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	tab := newLimiterTable[netip.Addr](rate.Every(2*time.Second), 2, 1)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if d := tab.wait(a, now); d != 0 {
		t.Errorf("unknown address waits %v", d)
	}
	tab.allow(a, now)
	if d := tab.wait(a, now); d != 0 {
		t.Errorf("address with a token left waits %v", d)
	}
	tab.allow(a, now)
	if d := tab.wait(a, now); d != 2*time.Second {
		t.Errorf("empty bucket waits %v, want 2s", d)
	}
	if d := tab.wait(a, now.Add(1500*time.Millisecond)); d != 500*time.Millisecond {
		t.Errorf("half-refilled bucket waits %v, want 500ms", d)
	}
	// The table is full (max 1): b shares the overflow bucket, and waits
	// on it.
	tab.allow(b, now)
	tab.allow(b, now)
	if d := tab.wait(b, now); d != 2*time.Second {
		t.Errorf("overflow waits %v, want 2s", d)
	}
}

// A fail-open table (room codes) does not limit keys beyond its bound: a
// shared bucket would let a few rooms' reports refuse joins into others.
// Refilled buckets are swept, which makes room again.
func TestFailOpenTable(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	tab := newFailOpenTable[string](rate.Every(time.Minute), 1, 1)
	if !tab.allow("A", now) || tab.allow("A", now) || tab.ok("A", now) {
		t.Fatal("A's bucket of one does not empty")
	}
	for range 3 {
		if !tab.allow("B", now) || !tab.ok("B", now) || tab.wait("B", now) != 0 {
			t.Fatal("B, beyond the table's bound, is limited")
		}
	}
	if d := tab.wait("A", now); d != time.Minute {
		t.Errorf("A waits %v, want 1m", d)
	}
	tab.sweep(now.Add(30 * time.Second))
	if tab.ok("A", now.Add(30*time.Second)) {
		t.Error("A's half-refilled bucket was swept")
	}
	tab.sweep(now.Add(time.Minute))
	if !tab.allow("B", now) || tab.allow("B", now) {
		t.Error("once A's refilled bucket is swept, B does not get a bucket of its own")
	}
}

func TestRetrySeconds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2},
		{2 * time.Second, 2}, {time.Duration(1<<63 - 1), 3600},
	} {
		if got := retrySeconds(c.d); got != c.want {
			t.Errorf("retrySeconds(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

func TestSTUNOnly(t *testing.T) {
	t.Parallel()
	in := &proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
		{URLs: []string{"stun:h:3478"}},
		{URLs: []string{"STUNS:h:5349", "turn:h:3478?transport=udp"}, Username: "u", Credential: "p"},
		{URLs: []string{"turns:h:5349?transport=tcp"}, Username: "u", Credential: "p"},
	}}
	out := stunOnly(in, 7)
	if !out.Limited || out.RetryAfter != 7 || out.TTL != 0 || len(out.Servers) != 2 {
		t.Fatalf("stunOnly = %+v", out)
	}
	if s := out.Servers[1]; len(s.URLs) != 1 || s.URLs[0] != "STUNS:h:5349" || s.Username != "" || s.Credential != "" {
		t.Errorf("mixed server became %+v", s)
	}
	if len(in.Servers[1].URLs) != 2 || in.Servers[1].Username != "u" {
		t.Error("stunOnly changed its input")
	}
}
