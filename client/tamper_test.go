package client_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tryst-chat/tryst/client"
)

// chatFrame is a chat payload (docs/PROTOCOL.md, "Data channel messages").
func chatFrame(id uint64, text string) []byte {
	b, _ := json.Marshal(struct {
		ID   uint64 `json:"id"`
		Text string `json:"text"`
		TS   int64  `json:"ts"`
	}{id, text, 1})
	return b
}

// TestLiveTamperReplayReorder sends forged frames over a real data channel:
// a replayed, a reordered and a modified one. Each is rejected (its text is
// never shown), the connection is dropped and rebuilt with fresh keys, and
// the chat goes on.
func TestLiveTamperReplayReorder(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, client.Config{}, client.Config{})
	h.WaitFor(client.EventConnected)
	g.WaitFor(client.EventConnected)

	attacks := map[string]func(seal func(byte, []byte) []byte) [][]byte{
		// Pings, so that the one legitimate copy changes no chat state.
		"replayed": func(seal func(byte, []byte) []byte) [][]byte {
			f := seal(client.MsgPing, []byte(`{"t":1}`))
			return [][]byte{f, bytes.Clone(f)}
		},
		"reordered": func(seal func(byte, []byte) []byte) [][]byte {
			a := seal(client.MsgChat, chatFrame(2000, "first"))
			b := seal(client.MsgChat, chatFrame(2001, "second"))
			return [][]byte{b, a}
		},
		"modified": func(seal func(byte, []byte) []byte) [][]byte {
			f := seal(client.MsgChat, chatFrame(3000, "tampered"))
			f[len(f)-20] ^= 1
			return [][]byte{f}
		},
	}
	for _, name := range []string{"replayed", "reordered", "modified"} {
		t.Logf("attack %s", name)
		h.Client.SendRaw(t, attacks[name])
		for {
			ev := g.WaitFor(client.EventWarning)
			if bytes.Contains([]byte(ev.Text), []byte("rejected")) {
				break
			}
		}
		g.WaitFor(client.EventConnected) // rebuilt with fresh keys
		h.Client.Send("after " + name)
		for {
			ev := g.WaitFor(client.EventChat)
			if ev.Text == "tampered" || ev.Text == "first" || ev.Text == "second" {
				t.Fatalf("%s: a forged or out-of-order frame was shown: %q", name, ev.Text)
			}
			if ev.Text == "after "+name {
				break
			}
		}
	}
}
