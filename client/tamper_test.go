package client

import (
	"bytes"
	"encoding/json"
	"testing"
)

func chatFrame(id uint64, text string) []byte {
	b, _ := json.Marshal(chatPayload{ID: id, Text: text, TS: 1})
	return b
}

// TestLiveTamperReplayReorder sends forged frames over a real data channel:
// a replayed, a reordered and a modified one. Each is rejected (its text is
// never shown), the connection is dropped and rebuilt with fresh keys, and
// the chat goes on.
func TestLiveTamperReplayReorder(t *testing.T) {
	st := startStack(t, nil)
	h, g := pairUp(t, st, Config{}, Config{})
	h.waitFor(EventConnected)
	g.waitFor(EventConnected)

	attacks := map[string]func(seal func(byte, []byte) []byte) [][]byte{
		// Pings, so that the one legitimate copy changes no chat state.
		"replayed": func(seal func(byte, []byte) []byte) [][]byte {
			f := seal(msgPing, []byte(`{"t":1}`))
			return [][]byte{f, bytes.Clone(f)}
		},
		"reordered": func(seal func(byte, []byte) []byte) [][]byte {
			a := seal(msgChat, chatFrame(2000, "first"))
			b := seal(msgChat, chatFrame(2001, "second"))
			return [][]byte{b, a}
		},
		"modified": func(seal func(byte, []byte) []byte) [][]byte {
			f := seal(msgChat, chatFrame(3000, "tampered"))
			f[len(f)-20] ^= 1
			return [][]byte{f}
		},
	}
	for _, name := range []string{"replayed", "reordered", "modified"} {
		t.Logf("attack %s", name)
		h.c.sendRaw(t, attacks[name])
		for {
			ev := g.waitFor(EventWarning)
			if bytes.Contains([]byte(ev.Text), []byte("rejected")) {
				break
			}
		}
		g.waitFor(EventConnected) // rebuilt with fresh keys
		h.c.Send("after " + name)
		for {
			ev := g.waitFor(EventChat)
			if ev.Text == "tampered" || ev.Text == "first" || ev.Text == "second" {
				t.Fatalf("%s: a forged or out-of-order frame was shown: %q", name, ev.Text)
			}
			if ev.Text == "after "+name {
				break
			}
		}
	}
}
