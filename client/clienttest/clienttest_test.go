package clienttest_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/client/clienttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWaits: a client whose hub refuses connections reports it and keeps
// retrying; waits end with their context, and Result does not wait for a
// client that is still running.
func TestWaits(t *testing.T) {
	// Nothing listens on port 1 of loopback: every dial is refused at once.
	m := clienttest.Start(t, client.Config{Hub: "http://127.0.0.1:1", Password: "pw"})
	if ev := m.WaitFor(client.EventHub); ev.Text != "cannot reach the hub at http://127.0.0.1:1; retrying in 500ms" {
		t.Errorf("refused dial reported as %q", ev.Text)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Next(done, client.EventConnected); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with an ended context: %v", err)
	}
	if err := m.Result(done); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Result of a running client with an ended context: %v", err)
	}
	m.Drain()
}
