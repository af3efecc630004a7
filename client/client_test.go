package client

import (
	"errors"
	"testing"
)

func TestChatBothWays(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, Config{}, Config{})
	if ev := h.waitFor(EventConnected); ev.Path == "" || ev.Path == "relay" {
		t.Errorf("host path %q, want direct", ev.Path)
	}
	g.waitFor(EventConnected)
	h.c.Send("hello from host")
	if ev := g.waitFor(EventChat); ev.Text != "hello from host" {
		t.Errorf("guest got %q", ev.Text)
	}
	g.c.Send("hello from guest")
	if ev := h.waitFor(EventChat); ev.Text != "hello from guest" {
		t.Errorf("host got %q", ev.Text)
	}
	g.c.Leave()
	if err := g.result(); err != nil {
		t.Errorf("guest Run after Leave: %v", err)
	}
	if err := h.result(); !errors.Is(err, ErrPeerLeft) {
		t.Errorf("host Run: %v, want ErrPeerLeft", err)
	}
}

func TestWrongPasswordBothSides(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, Config{Password: "right"}, Config{Password: "wrong"})
	if err := g.result(); !errors.Is(err, ErrPasswordMismatch) {
		t.Errorf("guest: %v", err)
	}
	if err := h.result(); !errors.Is(err, ErrPasswordMismatch) {
		t.Errorf("host: %v", err)
	}
}
