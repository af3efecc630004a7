// Package clienttest is test support for code that runs a client.Client: it
// runs one for the length of a test and waits for the events it reports.
// Every wait is bounded by a context (the T variants by Timeout); none
// sleeps. Production code must not import it.
package clienttest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/client"
)

// DefaultTimeout bounds the T variants' waits: long enough for a reconnect
// on a loaded machine, so that reaching it means a hang.
const DefaultTimeout = 60 * time.Second

// eventBuffer is how many events a Member keeps before the test reads them;
// a transfer reports a progress event per MiB, so it is far more than a test
// produces.
const eventBuffer = 4096

// Member runs one Client and records its events.
type Member struct {
	// Client is the running client.
	Client *client.Client
	// Timeout bounds WaitFor, Until and WaitResult (default DefaultTimeout).
	Timeout time.Duration

	t      testing.TB
	events chan client.Event
	done   chan error // Run's result, put back by whoever reads it
}

// Start builds a Client from cfg, with LoopbackOnly set (tests use loopback
// addresses only) and OnEvent recording, and runs it until the test ends:
// cleanup cancels Run and waits for it to return.
func Start(t testing.TB, cfg client.Config) *Member {
	t.Helper()
	m := &Member{t: t, Timeout: DefaultTimeout, events: make(chan client.Event, eventBuffer), done: make(chan error, 1)}
	cfg.LoopbackOnly = true
	cfg.OnEvent = func(ev client.Event) {
		select {
		case m.events <- ev:
		default:
			t.Errorf("event buffer full; dropped %+v", ev)
		}
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Client = c
	ctx, cancel := context.WithCancel(context.Background())
	go func() { m.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		stop, cancelStop := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancelStop()
		select {
		case <-m.done:
		case <-stop.Done():
			t.Error("client did not stop")
		}
	})
	return m
}

// ErrStopped is returned by the waits for an event when Run returned first.
var ErrStopped = errors.New("client stopped")

// Next returns the next event of kind, discarding the events before it.
func (m *Member) Next(ctx context.Context, kind client.EventKind) (client.Event, error) {
	_, ev, err := m.Until(ctx, kind)
	return ev, err
}

// Until is Next that also returns the events it skipped.
func (m *Member) Until(ctx context.Context, kind client.EventKind) (skipped []client.Event, _ client.Event, _ error) {
	for {
		select {
		case ev := <-m.events:
			if testing.Verbose() {
				m.t.Logf("event %d %q %q", ev.Kind, ev.Text, ev.Path)
			}
			if ev.Kind == kind {
				return skipped, ev, nil
			}
			skipped = append(skipped, ev)
		case err := <-m.done:
			m.done <- err
			// Events emitted before Run returned still count: both cases
			// may be ready at once, and select picks either.
			select {
			case ev := <-m.events:
				if ev.Kind == kind {
					return skipped, ev, nil
				}
				skipped = append(skipped, ev)
				continue
			default:
			}
			return skipped, client.Event{}, fmt.Errorf("%w (%v) while waiting for event %d", ErrStopped, err, kind)
		case <-ctx.Done():
			return skipped, client.Event{}, fmt.Errorf("waiting for event %d: %w", kind, ctx.Err())
		}
	}
}

// Drain returns the events recorded so far that no wait has taken, without
// waiting for more.
func (m *Member) Drain() []client.Event {
	var evs []client.Event
	for {
		select {
		case ev := <-m.events:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// Result waits for Run to return and returns its error; if ctx ends first,
// it returns an error saying so.
func (m *Member) Result(ctx context.Context) error {
	select {
	case err := <-m.done:
		m.done <- err
		return err
	case <-ctx.Done():
		return fmt.Errorf("client still running: %w", ctx.Err())
	}
}

// WaitFor is Next bounded by Timeout; it fails the test if no such event
// comes.
func (m *Member) WaitFor(kind client.EventKind) client.Event {
	m.t.Helper()
	_, ev := m.WaitUntil(kind)
	return ev
}

// WaitUntil is Until bounded by Timeout; it fails the test if no such event
// comes.
func (m *Member) WaitUntil(kind client.EventKind) (skipped []client.Event, _ client.Event) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), m.Timeout)
	defer cancel()
	skipped, ev, err := m.Until(ctx, kind)
	if err != nil {
		m.t.Fatal(err)
	}
	return skipped, ev
}

// WaitResult is Result bounded by Timeout; it fails the test if Run does
// not return.
func (m *Member) WaitResult() error {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), m.Timeout)
	defer cancel()
	select {
	case err := <-m.done:
		m.done <- err
		return err
	case <-ctx.Done():
		m.t.Fatal("client did not finish")
	}
	return nil
}
