package client

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/proto"
)

// chat is the reliable chat of docs/PROTOCOL.md: messages are numbered from
// 1, kept until the other side acknowledges them and sent again on every new
// connection; the receiving side shows each number once.
type chat struct {
	mu      sync.Mutex // Send's goroutine against the session goroutine
	next    uint64
	unacked []chatPayload
	// reserved is the highest id a state file has recorded as possibly
	// used, and reserve records a new one: ids are taken from the state
	// file in blocks (chatIDBlock), so that a rerun after kill -9 never
	// reuses one, at one write per block. nil without a state file.
	reserved uint64
	reserve  func(upTo uint64)
	wake     chan struct{} // signalled when a message is queued

	// The session goroutine's own.
	sent   uint64 // the highest id sent on the current connection
	lastIn uint64 // the highest id shown
}

func newChat() *chat { return &chat{wake: make(chan struct{}, 1)} }

// chatIDBlock is how many chat ids one write of the state file reserves.
const chatIDBlock = 64

// persist makes ch number its messages above what an earlier process of
// this member reserved, and reserve ids through save from now on.
func (ch *chat) persist(earlier uint64, save func(upTo uint64)) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.next = max(ch.next, earlier)
	ch.reserved = ch.next
	ch.reserve = save
}

// queue numbers text and keeps it until it is acknowledged; the session
// goroutine sends it.
func (ch *chat) queue(text string) {
	ch.mu.Lock()
	ch.next++
	if ch.reserve != nil && ch.next > ch.reserved {
		ch.reserved = ch.next + chatIDBlock - 1
		ch.reserve(ch.reserved)
	}
	ch.unacked = append(ch.unacked, chatPayload{ID: ch.next, Text: text, TS: time.Now().UnixMilli()})
	ch.mu.Unlock()
	notify(ch.wake)
}

// pending reports how many messages wait for an acknowledgement.
func (ch *chat) pending() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.unacked)
}

// reset starts a new connection: it has had none of the messages.
func (ch *chat) reset() { ch.sent = 0 }

// flush sends, in order, what l has not had yet.
func (ch *chat) flush(l link) {
	ch.mu.Lock()
	var todo []chatPayload
	for _, m := range ch.unacked {
		if m.ID > ch.sent {
			todo = append(todo, m)
		}
	}
	ch.mu.Unlock()
	for _, m := range todo {
		b, _ := json.Marshal(m)
		if l.send(proto.MsgChat, b) != nil {
			return // the link is gone; the next one gets them all again
		}
		ch.sent = m.ID
	}
}

// receive shows a message through show unless it was shown before, then
// acknowledges it.
func (ch *chat) receive(l link, payload []byte, show func(chatPayload)) {
	var m chatPayload
	if decodeJSON(payload, &m) != nil {
		return
	}
	if m.ID > ch.lastIn {
		ch.lastIn = m.ID
		show(m)
	}
	b, _ := json.Marshal(ackPayload{ID: m.ID})
	_ = l.send(proto.MsgChatAck, b)
}

// acked drops what an acknowledgement covers; it reports whether the
// payload was one.
func (ch *chat) acked(payload []byte) bool {
	var a ackPayload
	if decodeJSON(payload, &a) != nil {
		return false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	i := 0
	for i < len(ch.unacked) && ch.unacked[i].ID <= a.ID {
		i++
	}
	ch.unacked = ch.unacked[i:]
	return true
}
