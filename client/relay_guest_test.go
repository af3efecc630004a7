package client_test

import (
	"testing"
	"time"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/internal/rtc"
)

// connectTime starts a host with hostCfg, then a guest with guestCfg, and
// returns the time from the guest's start until both are connected, and
// the path the host reports.
func connectTime(t *testing.T, st *stack, hostCfg, guestCfg client.Config) (time.Duration, string) {
	t.Helper()
	hostCfg.Hub, guestCfg.Hub = st.hubURL, st.hubURL
	hostCfg.Password, guestCfg.Password = "hunter2", "hunter2"
	h := startMember(t, hostCfg)
	guestCfg.Room = h.WaitFor(client.EventRoom).Text
	start := time.Now()
	g := startMember(t, guestCfg)
	hc := h.WaitFor(client.EventConnected)
	gc := g.WaitFor(client.EventConnected)
	if gc.Path != hc.Path {
		t.Errorf("host path %q, guest path %q", hc.Path, gc.Path)
	}
	return max(hc.Time.Sub(start), gc.Time.Sub(start)), hc.Path
}

// TestRelayGuestConnectsFast: a relay-only guest (tryst chat --room CODE
// --relay) joining a host that may go direct connects through the relay
// without the 2 s the host's connection waits for a direct pair: the
// guest asks for a relay restart, and the host's next connection takes
// the first relayed pair. Before, and with NoRelayRestart, it waited the
// full relay acceptance wait.
func TestRelayGuestConnectsFast(t *testing.T) {
	st := startStack(t, nil)
	wait := rtc.Waits(false).Relay
	fast, path := connectTime(t, st, client.Config{}, client.Config{Relay: true})
	if path != "relay" {
		t.Fatalf("relay-only guest: path %q, want relay", path)
	}
	slow, path := connectTime(t, st, client.Config{}, client.NoRelayRestart(client.Config{Relay: true}))
	if path != "relay" {
		t.Fatalf("relay-only guest without relay restart: path %q, want relay", path)
	}
	t.Logf("relay-only guest, normal host: %v with the relay restart, %v without (relay wait %v)", fast, slow, wait)
	if fast >= wait*3/4 {
		t.Errorf("relay-only guest connected in %v, want well under the host's relay wait %v", fast, wait)
	}
	if slow < wait {
		t.Errorf("without the relay restart it connected in %v, under the relay wait %v: the baseline measures nothing", slow, wait)
	}
}

// TestRelayGuestKeepsDirect: the relay restart changes nothing for other
// guests: a plain guest with a plain host still selects the direct host
// pair (the relayed path works too, and the host's relay wait keeps it
// out), and a relay-only host with a relay-only guest connects relayed.
func TestRelayGuestKeepsDirect(t *testing.T) {
	st := startStack(t, nil)
	if _, path := connectTime(t, st, client.Config{}, client.Config{}); path != "direct (host)" {
		t.Errorf("plain host and guest: path %q, want direct (host)", path)
	}
	d, path := connectTime(t, st, client.Config{Relay: true}, client.Config{Relay: true})
	if path != "relay" {
		t.Errorf("relay-only host and guest: path %q, want relay", path)
	}
	if wait := rtc.Waits(false).Relay; d >= wait*3/4 {
		t.Errorf("relay-only host and guest connected in %v, want well under %v", d, wait)
	}
}

// TestRelayGuestReconnectsFast: a relay-only guest whose connection fails
// says it is relay-only in its restart request, so the host's next
// connection does not wait for a direct pair either, and the guest answers
// that offer at once (no second request).
func TestRelayGuestReconnectsFast(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, client.Config{}, client.Config{Relay: true})
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)
	start := time.Now()
	g.Client.DropPeer()
	hc := h.WaitFor(client.EventConnected)
	gc := g.WaitFor(client.EventConnected)
	if hc.Path != "relay" || gc.Path != "relay" {
		t.Errorf("paths after the restart: host %q, guest %q, want relay", hc.Path, gc.Path)
	}
	d := max(hc.Time.Sub(start), gc.Time.Sub(start))
	t.Logf("relay-only guest reconnected in %v", d)
	if wait := rtc.Waits(false).Relay; d >= wait*3/4 {
		t.Errorf("relay-only guest reconnected in %v, want well under the host's relay wait %v", d, wait)
	}
}
