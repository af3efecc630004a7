package client

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tryst-chat/tryst/internal/rtc"
	"github.com/tryst-chat/tryst/proto"
)

// The two data channels of protocol version 2 (docs/PROTOCOL.md, "The
// channels"), over the in-memory transport of session_test.go: control and
// bulk each have their own sequences, file data goes on bulk only, and
// nothing on control waits for file data.

// TestControlFlowsWhileBulkHeld (sending side): while the bulk channel's
// buffer is held above the high-water mark, as by a receiver that does not
// read, no chunk goes out, and pings, chat and their answers still do, on
// control. Once the buffer drains, the file goes on and is verified.
func TestControlFlowsWhileBulkHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r, events := testSession(t, Config{PingInterval: time.Hour, PeerTimeout: time.Hour}, dirStore{t.TempDir()})
		defer s.stop()

		data := make([]byte, 3<<20)
		rand.Read(data)
		path := filepath.Join(t.TempDir(), "big.bin")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		of, err := newOutFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r.p.bulk.Store(rtc.HighWater + 1) // the bulk channel is full from the start
		s.send.q.add(of)
		var offer fileOffer
		if err := json.Unmarshal(r.expect(proto.MsgFileOffer), &offer); err != nil || offer.ID != of.id {
			t.Fatalf("offer %+v (%v)", offer, err)
		}
		accept, _ := json.Marshal(fileAccept{ID: of.id})
		r.send(proto.MsgFileAccept, accept)
		// Everything settles: the reader has read ahead, and the sender,
		// chunks in hand, waits for the bulk channel's low water.
		synctest.Wait()
		var waiting bool
		if err := s.call(t.Context(), func() { waiting = s.send.waitingLow() }); err != nil || !waiting {
			t.Fatalf("the sender is not waiting for low water (%v)", err)
		}

		// Control goes on; expect fails if a chunk comes first.
		for i := range 3 {
			ping := []byte(`{"t":` + strconv.Itoa(i) + `}`)
			r.send(proto.MsgPing, ping)
			if got := r.expect(proto.MsgPong); string(got) != string(ping) {
				t.Fatalf("pong %s, want %s", got, ping)
			}
		}
		chat, _ := json.Marshal(chatPayload{ID: 1, Text: "still there?", TS: 1})
		r.send(proto.MsgChat, chat)
		r.expect(proto.MsgChatAck)
		if ev := nextEvent(t, events, EventChat); ev.Text != "still there?" {
			t.Errorf("chat %q", ev.Text)
		}

		// The buffer drains: every chunk comes, on bulk, then file-done.
		r.p.bulk.Store(0)
		notify(r.p.low)
		var got []byte
		for len(got) < len(data) {
			ch, typ, payload, _ := r.next(30*time.Second, false)
			if ch != proto.BulkChannel || typ != proto.MsgFileChunk {
				t.Fatalf("type %d on channel %d, want file chunks on bulk", typ, ch)
			}
			_, off, chunk, err := decodeChunk(payload)
			if err != nil || off != int64(len(got)) {
				t.Fatalf("chunk at %d (%v), want %d", off, err, len(got))
			}
			got = append(got, chunk...)
		}
		if ch, typ, _, _ := r.next(30*time.Second, false); ch != proto.BulkChannel || typ != proto.MsgFileDone {
			t.Fatalf("type %d on channel %d, want file-done on bulk", typ, ch)
		}
		res, _ := json.Marshal(fileResult{ID: of.id, OK: true, Name: "big.bin"})
		r.send(proto.MsgFileResult, res)
		if ev := nextEvent(t, events, EventFileSent); !ev.File.OK || !bytes.Equal(got, data) {
			t.Errorf("verdict %+v; the chunks carried the file: %v", ev.File, bytes.Equal(got, data))
		}
	})
}

// TestControlFlowsWhileBulkInboxFull (receiving side): with this side's
// disk stuck, the session stops taking file data, whose inbox fills, yet
// still answers a ping and shows chat: they come on control.
func TestControlFlowsWhileBulkInboxFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gs := newGatedStore(t.TempDir())
		s, r, events := testSession(t, Config{PingInterval: time.Hour, PeerTimeout: time.Hour}, gs)
		defer s.stop()
		defer gs.open()

		data := make([]byte, 32<<20)
		rand.Read(data)
		r.offerFile(5, "big.bin", data)
		burst := make(chan bool, 1)
		go func() { burst <- r.sendChunks(5, data, 0, len(data)) }()
		// Everything settles: the first write is stuck at the disk, the
		// writer's queue is full, a job is held, and the bulk inbox fills
		// until the burst blocks.
		synctest.Wait()
		var held bool
		if err := s.call(t.Context(), func() { held = s.recv.holding() }); err != nil || !held {
			t.Fatalf("no write held for the disk (%v)", err)
		}
		if n := len(r.p.in[proto.BulkChannel].ch); n != bulkInboxSize {
			t.Fatalf("bulk inbox holds %d frames, want it full (%d)", n, bulkInboxSize)
		}

		expectControlFlows(t, r, events, 3, 1, "hello")
		select {
		case <-burst:
			t.Fatal("the whole file went in while the disk was stuck")
		default:
		}

		gs.open()
		if !<-burst {
			t.Fatal("the connection ended during the burst")
		}
		done, _ := json.Marshal(fileDone{ID: 5})
		r.send(proto.MsgFileDone, done)
		checkStored(t, nextEvent(t, events, EventFileReceived).File, data)
	})
}

// TestWrongChannelIgnored: a known type on the other channel is opened (the
// channel's sequence advances) and ignored: file data on control, chat and
// a file offer on bulk. What follows on each channel is taken as usual.
func TestWrongChannelIgnored(t *testing.T) {
	s, r, events := testSession(t, Config{PingInterval: time.Hour, PeerTimeout: time.Hour}, dirStore{t.TempDir()})
	defer s.stop()

	data := []byte("hello, two channels")
	r.offerFile(3, "two.txt", data)
	done, _ := json.Marshal(fileDone{ID: 3})
	chat1, _ := json.Marshal(chatPayload{ID: 1, Text: "on bulk", TS: 1})
	chat2, _ := json.Marshal(chatPayload{ID: 2, Text: "on control", TS: 1})
	offer, _ := json.Marshal(fileOffer{ID: 4, Name: "other.txt", Size: 1, SHA256: sha256Hex([]byte("x"))})
	// File data on control: had this chunk counted, the real one at the
	// same offset would be ignored and the file would never complete.
	r.sendOn(proto.ControlChannel, proto.MsgFileChunk, chunkFrame(3, 0, []byte("XXXXX")))
	r.sendOn(proto.ControlChannel, proto.MsgFileDone, done)
	r.send(proto.MsgChat, chat2)
	// Control messages on bulk: none is shown or answered.
	r.sendOn(proto.BulkChannel, proto.MsgChat, chat1)
	r.sendOn(proto.BulkChannel, proto.MsgFileOffer, offer)
	r.sendOn(proto.BulkChannel, proto.MsgPing, []byte(`{"t":1}`))
	r.send(proto.MsgFileChunk, chunkFrame(3, 0, data))
	r.send(proto.MsgFileDone, done)

	// Each channel is taken in order, so once chat 2 is acknowledged and
	// the file has its verdict, every frame above was handled.
	var acked, verdict bool
	for !acked || !verdict {
		_, typ, payload, _ := r.next(30*time.Second, false)
		switch typ {
		case proto.MsgChatAck:
			var a ackPayload
			if err := json.Unmarshal(payload, &a); err != nil || a.ID != 2 {
				t.Fatalf("chat-ack %s: the chat message on bulk was taken", payload)
			}
			acked = true
		case proto.MsgFileAck:
		case proto.MsgFileResult:
			var res fileResult
			if err := json.Unmarshal(payload, &res); err != nil || res.ID != 3 || !res.OK {
				t.Fatalf("verdict %s", payload)
			}
			verdict = true
		default:
			t.Fatalf("the session answered with type %d (%s)", typ, payload)
		}
	}
	for _, ev := range drainEvents(events) {
		switch {
		case ev.Kind == EventChat && ev.Text != "on control":
			t.Errorf("shown: %q", ev.Text)
		case ev.Kind == EventFileReceived:
			checkStored(t, ev.File, data)
		}
	}
	if err := r.p.err(); err != nil {
		t.Errorf("the connection ended: %v", err)
	}
}

// drainEvents returns the events received so far.
func drainEvents(events chan Event) []Event {
	var out []Event
	for {
		select {
		case ev := <-events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// TestBulkBeforeReadyDropsConnection: file data before the other side's
// key confirmation cannot come from a correct peer (it follows a
// file-accept, sent only once ready): the connection is dropped.
func TestBulkBeforeReadyDropsConnection(t *testing.T) {
	s, r, events := startSession(t, Config{PingInterval: time.Hour, PeerTimeout: time.Hour}, dirStore{t.TempDir()})
	defer s.stop()
	r.expect(proto.MsgConfirm)
	r.send(proto.MsgFileChunk, chunkFrame(1, 0, []byte("early")))
	waitSignal(t, r.p.done(), "the connection to be dropped")
	if err := r.p.err(); !strings.Contains(err.Error(), "file data before key confirmation") {
		t.Errorf("the connection ended with %v", err)
	}
	if ev := nextEvent(t, events, EventWarning); !strings.Contains(ev.Text, "before key confirmation") {
		t.Errorf("warning %q", ev.Text)
	}
	if err := s.fatal.get(); err != nil {
		t.Errorf("the session ended (%v): it should reconnect", err)
	}
}

// TestChunkSizeLimit: a chunk of proto.MaxChunkData bytes, the most a
// correct sender puts in one, is taken; one byte more is ignored like any
// other bad chunk (the connection lives on, and the file completes from
// where it was).
func TestChunkSizeLimit(t *testing.T) {
	s, r, events := testSession(t, Config{PingInterval: time.Hour, PeerTimeout: time.Hour}, dirStore{t.TempDir()})
	defer s.stop()

	data := make([]byte, 2*proto.MaxChunkData+1)
	rand.Read(data)
	r.offerFile(8, "max.bin", data)
	r.send(proto.MsgFileChunk, chunkFrame(8, 0, data[:proto.MaxChunkData]))
	// Too big, though it fits the file: ignored.
	r.send(proto.MsgFileChunk, chunkFrame(8, proto.MaxChunkData, data[proto.MaxChunkData:]))
	done, _ := json.Marshal(fileDone{ID: 8})
	r.send(proto.MsgFileDone, done) // ignored: the file is not complete
	r.send(proto.MsgFileChunk, chunkFrame(8, proto.MaxChunkData, data[proto.MaxChunkData:2*proto.MaxChunkData]))
	r.send(proto.MsgFileChunk, chunkFrame(8, 2*proto.MaxChunkData, data[2*proto.MaxChunkData:]))
	r.send(proto.MsgFileDone, done)
	var ack fileAck
	if err := json.Unmarshal(r.expect(proto.MsgFileAck), &ack); err != nil || ack.Offset != int64(len(data)) {
		t.Fatalf("ack %+v (%v), want all %d bytes", ack, err, len(data))
	}
	var res fileResult
	if err := json.Unmarshal(r.expect(proto.MsgFileResult), &res); err != nil || !res.OK {
		t.Fatalf("verdict %+v (%v)", res, err)
	}
	checkStored(t, nextEvent(t, events, EventFileReceived).File, data)
}
