package proto_test

import (
	"testing"

	"github.com/tryst-chat/tryst/proto"
)

func TestWebSocketURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":      "ws://127.0.0.1:8080/v1/ws",
		"http://127.0.0.1:8080/":     "ws://127.0.0.1:8080/v1/ws",
		"127.0.0.1:8080":             "ws://127.0.0.1:8080/v1/ws",
		"https://hub.example":        "wss://hub.example/v1/ws",
		"wss://hub.example/v1/ws":    "wss://hub.example/v1/ws",
		"ws://hub.example:80":        "ws://hub.example:80/v1/ws",
		"https://example.org/tryst/": "wss://example.org/tryst/v1/ws",
		"https://example.org/tryst":  "wss://example.org/tryst/v1/ws",
		"http://[::1]:8080/v1/ws/":   "ws://[::1]:8080/v1/ws",
	} {
		got, err := proto.WebSocketURL(in)
		if err != nil || got != want {
			t.Errorf("WebSocketURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://hub.example", "http://", "://x"} {
		if got, err := proto.WebSocketURL(bad); err == nil {
			t.Errorf("WebSocketURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestFrameErr(t *testing.T) {
	t.Parallel()
	if err := (proto.Frame{Type: proto.TypeCreated}).Err(); err != nil {
		t.Errorf("created frame as error: %v", err)
	}
	err := proto.Frame{Type: proto.TypeError, Code: proto.CodeRateLimited, Message: "slow down", RetryAfter: 3}.Err()
	pe, ok := err.(*proto.Error)
	if !ok || pe.Code != proto.CodeRateLimited || pe.RetryAfter != 3 || err.Error() != "hub error rate_limited: slow down" {
		t.Errorf("error frame as error: %#v (%v)", err, err)
	}
}
