package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/client"
)

func TestChatBothWays(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, client.Config{}, client.Config{})
	if ev := h.WaitFor(client.EventConnected); ev.Path == "" || ev.Path == "relay" {
		t.Errorf("host path %q, want direct", ev.Path)
	}
	g.WaitFor(client.EventConnected)
	h.Client.Send("hello from host")
	if ev := g.WaitFor(client.EventChat); ev.Text != "hello from host" {
		t.Errorf("guest got %q", ev.Text)
	}
	g.Client.Send("hello from guest")
	if ev := h.WaitFor(client.EventChat); ev.Text != "hello from guest" {
		t.Errorf("host got %q", ev.Text)
	}
	g.Client.Leave()
	if err := g.WaitResult(); err != nil {
		t.Errorf("guest Run after Leave: %v", err)
	}
	if err := h.WaitResult(); !errors.Is(err, client.ErrPeerLeft) {
		t.Errorf("host Run: %v, want client.ErrPeerLeft", err)
	}
}

func TestWrongPasswordBothSides(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, client.Config{Password: "right"}, client.Config{Password: "wrong"})
	// The guest, whose password cannot change, ends; the host is told and
	// keeps the room for another try (docs/PROTOCOL.md, "PAKE").
	if err := g.WaitResult(); !errors.Is(err, client.ErrPasswordMismatch) {
		t.Errorf("guest: %v", err)
	}
	if ev := waitWarning(t, h, "password mismatch"); !strings.Contains(ev.Text, "(1 of 5 attempts)") {
		t.Errorf("host: %q", ev.Text)
	}
	if h.Client.Status().Room == "" {
		t.Error("the host left the room")
	}
}
