package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tryst-chat/tryst/client/e2e"
)

// The session goroutine over an in-memory transport, with real keys: the
// test plays the other member at the far end of a pipe.

// pipe is a transport in memory.
type pipe struct {
	in    inbox
	open  chan struct{}
	low   chan struct{}
	ended *latch

	mu   sync.Mutex
	sent [][]byte      // frames the session sent, not yet read by the test
	more chan struct{} // signalled when sent grows
}

func newPipe() *pipe {
	p := &pipe{open: make(chan struct{}), low: make(chan struct{}, 1), ended: newLatch(), more: make(chan struct{}, 1)}
	p.in = newInbox(p.ended.done())
	return p
}

func (p *pipe) frames() <-chan []byte     { return p.in.ch }
func (p *pipe) opened() <-chan struct{}   { return p.open }
func (p *pipe) lowWater() <-chan struct{} { return p.low }
func (p *pipe) done() <-chan struct{}     { return p.ended.done() }
func (p *pipe) err() error                { return p.ended.get() }
func (p *pipe) fail(err error)            { p.ended.set(err) }
func (p *pipe) bufferedAmount() uint64    { return 0 }
func (p *pipe) path() string              { return "pipe" }

func (p *pipe) sendFrame(frame []byte) error {
	if err := p.err(); err != nil {
		return err
	}
	p.mu.Lock()
	p.sent = append(p.sent, bytes.Clone(frame))
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

// send seals and queues a frame for the session; it blocks while the
// session's inbox is full.
func (r *remote) send(typ byte, payload []byte) bool {
	return r.p.in.push(r.keys.Seal(typ, payload))
}

// expect returns the payload of the next frame the session sent, skipping
// pings, and fails unless it is of type typ.
func (r *remote) expect(typ byte) []byte {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		r.p.mu.Lock()
		var frame []byte
		if len(r.p.sent) > 0 {
			frame, r.p.sent = r.p.sent[0], r.p.sent[1:]
		}
		r.p.mu.Unlock()
		if frame == nil {
			select {
			case <-r.p.more:
				continue
			case <-ctx.Done():
				r.t.Fatalf("timed out waiting for a frame of type %d", typ)
			}
		}
		got, payload, err := r.keys.Open(frame)
		if err != nil {
			r.t.Fatal(err)
		}
		if got == msgPing {
			continue
		}
		if got != typ {
			r.t.Fatalf("got a frame of type %d (%s), want %d", got, payload, typ)
		}
		return payload
	}
}

// testSession runs a session (as the host) whose connection is a pipe, and
// completes key confirmation with the remote at its far end. The caller
// stops the session.
func testSession(t *testing.T, cfg Config, st store) (*session, *remote, chan Event) {
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
	if err := s.attach(context.Background(), &conn{t: r.p, keys: hostKeys, role: e2e.Host}); err != nil {
		t.Fatal(err)
	}
	close(r.p.open)
	if err := guestKeys.CheckConfirmation(r.expect(msgConfirm)); err != nil {
		t.Fatal(err)
	}
	r.send(msgConfirm, guestKeys.Confirmation(e2e.Guest))
	if ev := nextEvent(t, events, EventConnected); ev.Path != "pipe" {
		t.Errorf("connected over %q", ev.Path)
	}
	return s, r, events
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
	r.send(msgFileOffer, b)
	var a fileAccept
	if err := json.Unmarshal(r.expect(msgFileAccept), &a); err != nil || a.ID != id || a.Offset != 0 || a.Reject != "" {
		r.t.Fatalf("accept %+v (%v)", a, err)
	}
}

// sendChunks sends data[from:to] as 16 KiB chunks of file id; it reports
// false if the transport ended first.
func (r *remote) sendChunks(id uint64, data []byte, from, to int) bool {
	frame := make([]byte, chunkHeader+16<<10)
	for off := from; off < to; off += 16 << 10 {
		n := copy(frame[chunkHeader:], data[off:min(off+16<<10, to)])
		putChunkHeader(frame, id, int64(off))
		if !r.send(msgFileChunk, frame[:chunkHeader+n]) {
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
	r.send(msgPing, []byte(`{"t":42}`))
	if got := r.expect(msgPong); string(got) != `{"t":42}` {
		t.Errorf("pong %s, want the ping's payload", got)
	}
	chat, _ := json.Marshal(chatPayload{ID: 1, Text: "still there?", TS: 1})
	r.send(msgChat, chat)
	if ev := nextEvent(t, events, EventChat); ev.Text != "still there?" {
		t.Errorf("chat %q", ev.Text)
	}
	r.expect(msgChatAck)

	gs.open()
	var ack fileAck
	if err := json.Unmarshal(r.expect(msgFileAck), &ack); err != nil || ack.Offset != 1<<20 {
		t.Errorf("ack %+v (%v), want 1 MiB written", ack, err)
	}
	r.sendChunks(9, data, 1<<20, len(data))
	done, _ := json.Marshal(fileDone{ID: 9})
	r.send(msgFileDone, done)
	r.expect(msgFileAck)
	var res fileResult
	if err := json.Unmarshal(r.expect(msgFileResult), &res); err != nil || !res.OK || res.Name != "slow.bin" {
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
			frame := make([]byte, chunkHeader+16<<10)
			ok := true
			for off := 0; off < size && ok; off += 16 << 10 {
				copy(frame[chunkHeader:], data[off:off+16<<10])
				putChunkHeader(frame, 5, int64(off))
				ok = r.send(msgFileChunk, frame)
				pushed.Add(16 << 10)
			}
			burst <- ok
		}()
		synctest.Wait()
		if n := len(r.p.in.ch); n != inboxSize {
			t.Errorf("inbox holds %d frames while the disk is stuck, want it full (%d)", n, inboxSize)
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
		r.send(msgFileDone, done)
		checkStored(t, nextEvent(t, events, EventFileReceived).File, data)

		// Now the other side says nothing at all.
		time.Sleep(timeout + 2*time.Second)
		synctest.Wait()
		if err := r.p.err(); err == nil || !strings.Contains(err.Error(), "peer silent for 3s") {
			t.Errorf("after %v of silence the connection ended with %v", timeout+2*time.Second, err)
		}
	})
}
