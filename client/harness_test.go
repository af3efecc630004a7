package client_test

import (
	"testing"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/internal/teststack"
)

// stack is a real hub and TURN relay on loopback, as `tryst serve` wires them.
type stack struct {
	*teststack.Stack
	hubURL string
}

func startStack(t *testing.T, store hub.Store) *stack {
	t.Helper()
	st := teststack.Start(t, teststack.Options{Store: store})
	return &stack{Stack: st, hubURL: st.URL}
}

// startMember runs a Client for the test, with keys derived quickly (the
// real work factor is checked by e2e's vectors).
func startMember(t *testing.T, cfg client.Config) *clienttest.Member {
	t.Helper()
	return clienttest.Start(t, cfg)
}

// pairUp starts a host and a guest; the caller waits for them to connect.
func pairUp(t *testing.T, st *stack, host, guest client.Config) (*clienttest.Member, *clienttest.Member) {
	t.Helper()
	host.Hub, guest.Hub = st.hubURL, st.hubURL
	if host.Password == "" {
		host.Password = "hunter2"
	}
	if guest.Password == "" {
		guest.Password = host.Password
	}
	h := startMember(t, host)
	code := h.WaitFor(client.EventRoom).Text
	guest.Room = code
	g := startMember(t, guest)
	return h, g
}
