package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
)

// The session goroutine over an in-memory transport, with real keys: the
// test plays the other member at the far end of a pipe.

// pipe is a transport in memory.
type pipe struct {
	in    [2]inbox
	open  chan struct{}
	low   chan struct{}
	ended *latch
	bulk  atomic.Uint64 // what bufferedAmount reports: tests hold the bulk channel full

	mu   sync.Mutex
	sent []sentFrame   // frames the session sent, not yet read by the test
	more chan struct{} // signalled when sent grows
}

type sentFrame struct {
	ch    int
	frame []byte
}

func newPipe() *pipe {
	p := &pipe{open: make(chan struct{}), low: make(chan struct{}, 1), ended: newLatch(), more: make(chan struct{}, 1)}
	p.in = newInboxes(p.ended.done())
	return p
}

func (p *pipe) frames(ch int) <-chan []byte { return p.in[ch].ch }
func (p *pipe) opened() <-chan struct{}     { return p.open }
func (p *pipe) lowWater() <-chan struct{}   { return p.low }
func (p *pipe) done() <-chan struct{}       { return p.ended.done() }
func (p *pipe) err() error                  { return p.ended.get() }
func (p *pipe) fail(err error)              { p.ended.set(err) }
func (p *pipe) bufferedAmount() uint64      { return p.bulk.Load() }
func (p *pipe) setLowWater(uint64)          {}
func (p *pipe) pathRTT() time.Duration      { return 0 }
func (p *pipe) path() string                { return "pipe" }

func (p *pipe) sendFrame(ch int, frame []byte) error {
	if err := p.err(); err != nil {
		return err
	}
	p.mu.Lock()
	p.sent = append(p.sent, sentFrame{ch, bytes.Clone(frame)})
	p.mu.Unlock()
	notify(p.more)
	return nil
}

// remote is the other member, at the far end of a pipe.
type remote struct {
	t    *testing.T
	p    *pipe
	keys *e2e.Session
}

// send seals and queues a message for the session on its channel; it
// blocks while the session's inbox is full.
func (r *remote) send(typ byte, payload []byte) bool {
	return r.sendOn(channelOf(typ), typ, payload)
}

// sendOn is send on channel ch, whatever the type.
func (r *remote) sendOn(ch int, typ byte, payload []byte) bool {
	return r.p.in[ch].push(r.keys.Channel(uint32(ch)).Seal(typ, payload))
}

// next returns the next frame the session sent, opened, and its channel,
// skipping pings; false if none came within the wait (which fails the test
// unless quiet).
func (r *remote) next(wait time.Duration, quiet bool) (ch int, typ byte, payload []byte, ok bool) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		r.p.mu.Lock()
		var f sentFrame
		if len(r.p.sent) > 0 {
			f, r.p.sent = r.p.sent[0], r.p.sent[1:]
		}
		r.p.mu.Unlock()
		if f.frame == nil {
			select {
			case <-r.p.more:
				continue
			case <-ctx.Done():
				if !quiet {
					r.t.Fatal("timed out waiting for a frame")
				}
				return 0, 0, nil, false
			}
		}
		got, payload, err := r.keys.Channel(uint32(f.ch)).Open(f.frame)
		if err != nil {
			r.t.Fatalf("channel %d: %v", f.ch, err)
		}
		if channelOf(got) != f.ch {
			r.t.Fatalf("a frame of type %d on channel %d", got, f.ch)
		}
		if got == proto.MsgPing {
			continue
		}
		return f.ch, got, payload, true
	}
}

// expect returns the payload of the next frame the session sent, skipping
// pings, and fails unless it is of type typ (on typ's channel).
func (r *remote) expect(typ byte) []byte {
	r.t.Helper()
	_, got, payload, _ := r.next(30*time.Second, false)
	if got != typ {
		r.t.Fatalf("got a frame of type %d (%.100q), want %d", got, payload, typ)
	}
	return payload
}

// testSession runs a session (as the host) whose connection is a pipe, and
// completes key confirmation with the remote at its far end. The caller
// stops the session.
func testSession(t *testing.T, cfg Config, st store) (*session, *remote, chan Event) {
	t.Helper()
	s, r, events := startSession(t, cfg, st)
	if err := r.keys.CheckConfirmation(r.expect(proto.MsgConfirm)); err != nil {
		t.Fatal(err)
	}
	r.send(proto.MsgConfirm, r.keys.Confirmation(e2e.Guest))
	if ev := nextEvent(t, events, EventConnected); ev.Path != "pipe" {
		t.Errorf("connected over %q", ev.Path)
	}
	return s, r, events
}

// startSession is testSession up to the opening of the pipe, before key
// confirmation either way.
func startSession(t *testing.T, cfg Config, st store) (*session, *remote, chan Event) {
	t.Helper()
	events := make(chan Event, 1024)
	cfg.ChunkSize = 16 << 10
	s := newSession(cfg, func(ev Event) {
		select {
		case events <- ev:
		default:
			t.Errorf("event buffer full; dropped %+v", ev)
		}
	}, newLatch(), &status{}, newChat(), newOutQueue())
	s.recv.store = st
	s.start()

	master := make([]byte, 32)
	rand.Read(master)
	nh, ng := e2e.NewNonce(), e2e.NewNonce()
	const fpH, fpG = "sha-256 0A:1B", "sha-256 F9:E8"
	hostKeys, err := e2e.NewSession(master, e2e.Host, nh, ng, fpH, fpG)
	if err != nil {
		t.Fatal(err)
	}
	guestKeys, err := e2e.NewSession(master, e2e.Guest, nh, ng, fpH, fpG)
	if err != nil {
		t.Fatal(err)
	}
	r := &remote{t: t, p: newPipe(), keys: guestKeys}
	if err := s.attach(context.Background(), newConn(r.p, hostKeys, e2e.Host)); err != nil {
		t.Fatal(err)
	}
	close(r.p.open)
	return s, r, events
}

// expectControlFlows checks that the session answers pings (each pong
// carries its ping's payload) and shows and acks a chat message with id.
func expectControlFlows(t *testing.T, r *remote, events chan Event, pings int, id uint64, text string) {
	t.Helper()
	for i := range pings {
		ping := fmt.Appendf(nil, `{"t":%d}`, 42+i)
		r.send(proto.MsgPing, ping)
		if got := r.expect(proto.MsgPong); string(got) != string(ping) {
			t.Errorf("pong %s, want the ping's payload %s", got, ping)
		}
	}
	chat, _ := json.Marshal(chatPayload{ID: id, Text: text, TS: 1})
	r.send(proto.MsgChat, chat)
	if ev := nextEvent(t, events, EventChat); ev.Text != text {
		t.Errorf("chat %q, want %q", ev.Text, text)
	}
	r.expect(proto.MsgChatAck)
}

func nextEvent(t *testing.T, events chan Event, kind EventKind) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("timed out waiting for event %d", kind)
		}
	}
}

// offerFile offers data as file id and checks that the session accepts it
// from offset 0.
func (r *remote) offerFile(id uint64, name string, data []byte) {
	r.t.Helper()
	b, _ := json.Marshal(fileOffer{ID: id, Name: name, Size: int64(len(data)), SHA256: sha256Hex(data)})
	r.send(proto.MsgFileOffer, b)
	var a fileAccept
	if err := json.Unmarshal(r.expect(proto.MsgFileAccept), &a); err != nil || a.ID != id || a.Offset != 0 || a.Reject != "" {
		r.t.Fatalf("accept %+v (%v)", a, err)
	}
}

// sendChunks sends data[from:to] as 16 KiB chunks of file id; it reports
// false if the transport ended first.
func (r *remote) sendChunks(id uint64, data []byte, from, to int) bool {
	frame := make([]byte, proto.ChunkHeader+16<<10)
	for off := from; off < to; off += 16 << 10 {
		n := copy(frame[proto.ChunkHeader:], data[off:min(off+16<<10, to)])
		putChunkHeader(frame, id, int64(off))
		if !r.send(proto.MsgFileChunk, frame[:proto.ChunkHeader+n]) {
			return false
		}
	}
	return true
}

// TestKeepaliveAnsweredWhileDiskWriteBlocked: with a write of a received
// file stuck in the disk, the session goroutine still answers a ping and
// shows chat; the file goes on once the disk does.
func TestKeepaliveAnsweredWhileDiskWriteBlocked(t *testing.T) {
	gs := newGatedStore(t.TempDir())
	s, r, events := testSession(t, Config{PingInterval: time.Hour, PeerTimeout: time.Hour}, gs)
	defer s.stop()
	defer gs.open() // before the session stops: its writer may wait at the gate

	data := make([]byte, 2<<20)
	rand.Read(data)
	r.offerFile(9, "slow.bin", data)
	r.sendChunks(9, data, 0, 1<<20) // one ack's worth: the first write
	waitSignal(t, gs.entered, "the first write to reach the disk")

	// The write cannot return before the gate opens, below.
	expectControlFlows(t, r, events, 1, 1, "still there?")

	gs.open()
	var ack fileAck
	if err := json.Unmarshal(r.expect(proto.MsgFileAck), &ack); err != nil || ack.Offset != 1<<20 {
		t.Errorf("ack %+v (%v), want 1 MiB written", ack, err)
	}
	r.sendChunks(9, data, 1<<20, len(data))
	done, _ := json.Marshal(fileDone{ID: 9})
	r.send(proto.MsgFileDone, done)
	r.expect(proto.MsgFileAck)
	var res fileResult
	if err := json.Unmarshal(r.expect(proto.MsgFileResult), &res); err != nil || !res.OK || res.Name != "slow.bin" {
		t.Errorf("verdict %+v (%v)", res, err)
	}
	checkStored(t, nextEvent(t, events, EventFileReceived).File, data)
}

// TestSlowDiskIsNotSilence: frames that wait because this side's disk is
// stuck hold the other side back (its pushes block: backpressure, nothing
// dropped, the inbox bounded), and while they wait the keepalive does not
// take the other side for silent. Real silence still ends the connection
// after PeerTimeout. Time is synctest's: the waits take none.
func TestSlowDiskIsNotSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		gs := newGatedStore(t.TempDir())
		s, r, events := testSession(t, Config{PingInterval: time.Second, PeerTimeout: timeout}, gs)
		defer s.stop()
		defer gs.open()

		const size = 32 << 20
		data := make([]byte, size)
		rand.Read(data)
		r.offerFile(5, "big.bin", data)
		var pushed atomic.Int64
		burst := make(chan bool, 1)
		go func() {
			frame := make([]byte, proto.ChunkHeader+16<<10)
			ok := true
			for off := 0; off < size && ok; off += 16 << 10 {
				copy(frame[proto.ChunkHeader:], data[off:off+16<<10])
				putChunkHeader(frame, 5, int64(off))
				ok = r.send(proto.MsgFileChunk, frame)
				pushed.Add(16 << 10)
			}
			burst <- ok
		}()
		synctest.Wait()
		if n := len(r.p.in[proto.BulkChannel].ch); n != bulkInboxSize {
			t.Errorf("bulk inbox holds %d frames while the disk is stuck, want it full (%d)", n, bulkInboxSize)
		}
		if pushed.Load() >= size {
			t.Fatal("the whole burst went in while the disk was stuck")
		}
		time.Sleep(4 * timeout) // synctest's clock: the keepalive ticks meanwhile
		if err := r.p.err(); err != nil {
			t.Fatalf("connection ended while only the disk was slow: %v", err)
		}

		gs.open()
		if !<-burst {
			t.Fatal("the connection ended during the burst")
		}
		done, _ := json.Marshal(fileDone{ID: 5})
		r.send(proto.MsgFileDone, done)
		checkStored(t, nextEvent(t, events, EventFileReceived).File, data)

		// Now the other side says nothing at all.
		time.Sleep(timeout + 2*time.Second)
		synctest.Wait()
		if err := r.p.err(); err == nil || !strings.Contains(err.Error(), "peer silent for 3s") {
			t.Errorf("after %v of silence the connection ended with %v", timeout+2*time.Second, err)
		}
	})
}
