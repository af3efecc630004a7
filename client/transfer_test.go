package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/proto"
)

// The file-transfer state machines (sender, receiver) over an in-memory
// link, without pion, keys or a session goroutine: a driver delivers the
// messages and the disk goroutines' results, as the session goroutine does.

// memMsg is a message in flight on a memLink.
type memMsg struct {
	typ     byte
	payload []byte
}

// memLink is one end of an in-memory link. What one end sends waits, in
// order, in the other end's queue until the driver delivers it; pending is
// what the other end has not taken yet, full reports it above highMark, and
// lowWater is signalled when it falls to lowMark after having been above
// it, as a data channel does.
type memLink struct {
	peer     *memLink
	queue    []memMsg // sent by peer, not yet delivered here
	pending  uint64   // bytes sent by this end, not yet delivered at peer
	lowMark  uint64
	highMark uint64
	low      chan struct{}
	lows     int // times low water was signalled
	err      error
	// edit, if set, rewrites what this end sends (a test playing another
	// implementation).
	edit func(typ byte, payload []byte) []byte
}

func newMemLinks() (a, b *memLink) {
	a = &memLink{lowMark: testLowWater, highMark: testHighWater, low: make(chan struct{}, 1)}
	b = &memLink{lowMark: testLowWater, highMark: testHighWater, low: make(chan struct{}, 1), peer: a}
	a.peer = b
	return a, b
}

func (l *memLink) send(typ byte, payload []byte) error {
	if l.err != nil {
		return l.err
	}
	payload = bytes.Clone(payload)
	if l.edit != nil {
		payload = l.edit(typ, payload)
	}
	l.peer.queue = append(l.peer.queue, memMsg{typ, payload})
	l.pending += uint64(len(payload))
	return nil
}

func (l *memLink) full() bool                { return l.pending > l.highMark }
func (l *memLink) lowWater() <-chan struct{} { return l.low }

// close cuts both ends; what was in flight is lost, as on a dead data
// channel.
func (l *memLink) close(err error) {
	for _, e := range []*memLink{l, l.peer} {
		e.err, e.queue, e.pending = err, nil, 0
	}
}

// take removes the next message sent to this end.
func (l *memLink) take() memMsg {
	m := l.queue[0]
	l.queue = l.queue[1:]
	before := l.peer.pending
	l.peer.pending -= uint64(len(m.payload))
	if before > l.peer.lowMark && l.peer.pending <= l.peer.lowMark {
		notify(l.peer.low)
		l.peer.lows++
	}
	return m
}

// endpoint is one side's sender and receiver, with what a session gives
// them.
type endpoint struct {
	send    *sender
	recv    *receiver
	q       *outQueue
	dir     string
	disk    sync.WaitGroup
	reports chan diskReport
	quit    chan struct{}
	link    *memLink
	events  []Event
	name    string
	trace   *[]string // "name<-type" for every message delivered, shared by a pair
	stopped sync.Once
}

// Small flow-control marks, so that a few megabytes exercise them.
const (
	testHighWater = 64 << 10
	testLowWater  = 16 << 10
)

// newEndpoint makes an endpoint that stores into a fresh directory through
// st (nil: the directory itself). It stops when the test ends.
func newEndpoint(t *testing.T, name string, trace *[]string, st func(dir string) store) *endpoint {
	e := &endpoint{
		q: newOutQueue(), dir: t.TempDir(), reports: make(chan diskReport, writerQueue), quit: make(chan struct{}),
		name: name, trace: trace,
	}
	record := func(ev Event) { e.events = append(e.events, ev) }
	e.send = newSender(e.q, 16<<10, record, func() {}, &e.disk)
	var s store = dirStore{e.dir}
	if st != nil {
		s = st(e.dir)
	}
	e.recv = newReceiver(s, record, &e.disk, e.reports, e.quit)
	t.Cleanup(e.stop)
	return e
}

// stop is what the session does when the client stops.
func (e *endpoint) stop() {
	e.stopped.Do(func() {
		close(e.quit)
		e.send.stop()
		e.recv.close()
		e.disk.Wait()
	})
}

// pair makes two endpoints, a the sender and b the receiver; st wraps b's
// directory (nil: none).
func pair(t *testing.T, st func(dir string) store) (a, b *endpoint, trace *[]string) {
	trace = new([]string)
	return newEndpoint(t, "a", trace, nil), newEndpoint(t, "b", trace, st), trace
}

// l is the current link, a nil interface when there is none.
func (e *endpoint) l() link {
	if e.link == nil {
		return nil
	}
	return e.link
}

// queueFile queues a file of size random bytes named name and returns its
// content.
func (e *endpoint) queueFile(t *testing.T, name string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	of, err := newOutFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e.q.add(of)
	return data
}

// connect gives a and b a fresh link, as a reconnect does, and lets a's
// sender start.
func connect(a, b *endpoint) {
	a.link, b.link = newMemLinks()
	a.send.start(a.link)
	b.send.start(b.link)
}

// step does what e can do without waiting: take a message (unless a held
// write stops it taking any, as the session does), or send chunks. It
// reports whether it did something.
func (e *endpoint) step() bool {
	if e.link == nil {
		return false
	}
	if len(e.link.queue) > 0 && !e.recv.holding() {
		m := e.link.take()
		*e.trace = append(*e.trace, fmt.Sprintf("%s<-%d", e.name, m.typ))
		switch m.typ {
		case proto.MsgFileAccept, proto.MsgFileAck, proto.MsgFileResult:
			e.send.handle(e.link, m.typ, m.payload)
		case proto.MsgFileOffer, proto.MsgFileChunk, proto.MsgFileDone:
			e.recv.handle(e.link, m.typ, m.payload)
		}
		return true
	}
	if e.send.canPump() {
		e.send.pump(e.link)
		return true
	}
	return false
}

func (e *endpoint) low() <-chan struct{} {
	if e.link == nil || !e.send.waitingLow() {
		return nil
	}
	return e.link.low
}

// drive runs a and b until done reports true. Whenever only the disk
// goroutines can move things on, it first calls idle (if set), then waits
// for one of them. A transfer that stops moving fails the test.
func drive(t *testing.T, a, b *endpoint, done func() bool, idle func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !done() {
		if a.step() || b.step() {
			continue
		}
		if idle != nil {
			idle()
		}
		aHeld, aJob := a.recv.heldFor()
		bHeld, bJob := b.recv.heldFor()
		select {
		case r := <-a.reports:
			a.recv.report(a.l(), r)
		case r := <-b.reports:
			b.recv.report(b.l(), r)
		case bt, ok := <-a.send.data():
			a.send.read(a.l(), bt, ok)
		case bt, ok := <-b.send.data():
			b.send.read(b.l(), bt, ok)
		case aHeld <- aJob:
			a.recv.handed()
		case bHeld <- bJob:
			b.recv.handed()
		case <-a.low():
			a.send.lowWater()
		case <-b.low():
			b.send.lowWater()
		case <-ctx.Done():
			t.Fatal("transfer stuck")
		}
	}
}

// verdicts returns the events of kind.
func (e *endpoint) verdicts(kind EventKind) []*FileStatus {
	var fs []*FileStatus
	for _, ev := range e.events {
		if ev.Kind == kind {
			fs = append(fs, ev.File)
		}
	}
	return fs
}

// has returns a condition for drive: e has n events of kind.
func (e *endpoint) has(kind EventKind, n int) func() bool {
	return func() bool { return len(e.verdicts(kind)) >= n }
}

func checkStored(t *testing.T, fs *FileStatus, want []byte) {
	t.Helper()
	if !fs.OK {
		t.Fatalf("%s not stored: %s", fs.Name, fs.Err)
	}
	got, err := os.ReadFile(fs.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs from the file sent", fs.Path)
	}
}

// noParts fails if dir holds a .part file.
func noParts(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Errorf("%s left behind", e.Name())
		}
	}
}

func TestTransferStateMachines(t *testing.T) {
	a, b, _ := pair(t, nil)
	// Not a multiple of the chunk size, nor of the ack interval.
	data := a.queueFile(t, "report.pdf", 3<<20+12345)
	connect(a, b)
	drive(t, a, b, a.has(EventFileSent, 1), nil)

	sent := a.verdicts(EventFileSent)[0]
	if !sent.OK || sent.Done != int64(len(data)) || sent.Path != "report.pdf" {
		t.Errorf("sender verdict %+v", sent)
	}
	got := b.verdicts(EventFileReceived)
	if len(got) != 1 || filepath.Dir(got[0].Path) != b.dir {
		t.Fatalf("receiver verdicts %+v", got)
	}
	checkStored(t, got[0], data)
	noParts(t, b.dir)
	// Acks every MiB and at the end, each reported on both sides.
	var acked []int64
	for _, fs := range a.verdicts(EventProgress) {
		acked = append(acked, fs.Done)
	}
	if want := []int64{1 << 20, 2 << 20, 3 << 20, int64(len(data))}; fmt.Sprint(acked) != fmt.Sprint(want) {
		t.Errorf("sender progress %v, want %v", acked, want)
	}
	if n := len(b.verdicts(EventProgress)); n != 4 {
		t.Errorf("receiver reported progress %d times, want 4", n)
	}
	if a.q.pending() != 0 {
		t.Errorf("%d files pending after the verdict", a.q.pending())
	}
	if a.link.lows == 0 {
		t.Error("the sender never waited for low water")
	}
}

// TestTransferResumesAfterReconnect: a link cut mid-file loses what was in
// flight; the next link offers the file again and the receiver accepts from
// what it received, so the sender resumes there. A second cut after the
// receiver stored the file, before its verdict arrived, gets the verdict
// repeated on the next link.
func TestTransferResumesAfterReconnect(t *testing.T) {
	a, b, _ := pair(t, nil)
	data := a.queueFile(t, "big.bin", 5<<20)
	connect(a, b)
	// Cut once the sender has heard of 2 MiB written.
	drive(t, a, b, func() bool {
		p := a.verdicts(EventProgress)
		return len(p) > 0 && p[len(p)-1].Done >= 2<<20
	}, nil)
	a.link.close(errString("cut"))
	a.send.stop()
	if a.q.pending() != 1 {
		t.Fatal("the cut file is no longer pending")
	}
	connect(a, b)
	drive(t, a, b, a.has(EventFileResumed, 1), nil)
	res := a.verdicts(EventFileResumed)[0]
	if res.Done < 2<<20 || res.Done >= int64(len(data)) {
		t.Errorf("resumed at %d, want at least the 2 MiB acknowledged", res.Done)
	}

	// Run until the receiver stored it, then cut before the verdict
	// reaches the sender.
	drive(t, a, b, b.has(EventFileReceived, 1), nil)
	a.link.close(errString("cut"))
	a.send.stop()
	if len(a.verdicts(EventFileSent)) != 0 {
		t.Fatal("the verdict arrived before the cut")
	}
	connect(a, b)
	drive(t, a, b, a.has(EventFileSent, 1), nil)
	if sent := a.verdicts(EventFileSent)[0]; !sent.OK {
		t.Errorf("sender verdict %+v", sent)
	}
	got := b.verdicts(EventFileReceived)
	if len(got) != 1 {
		t.Fatalf("receiver stored %d files, want 1", len(got))
	}
	checkStored(t, got[0], data)
}

type errString string

func (e errString) Error() string { return string(e) }

// TestTransferWrongHash: a file that changed after it was queued (so its
// bytes no longer match the SHA-256 offered) is refused, and nothing of it
// stays on disk.
func TestTransferWrongHash(t *testing.T) {
	a, b, _ := pair(t, nil)
	a.queueFile(t, "changed.bin", 2<<20+7)
	of := a.q.next()
	corrupt := make([]byte, of.size)
	rand.Read(corrupt)
	if err := os.WriteFile(of.path, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	connect(a, b)
	drive(t, a, b, a.has(EventFileSent, 1), nil)
	const want = "SHA-256 mismatch: the file was corrupted"
	if sent := a.verdicts(EventFileSent)[0]; sent.OK || sent.Err != want {
		t.Errorf("sender verdict %+v", sent)
	}
	if got := b.verdicts(EventFileReceived)[0]; got.OK || got.Err != want {
		t.Errorf("receiver verdict %+v", got)
	}
	if entries, _ := os.ReadDir(b.dir); len(entries) != 0 {
		t.Errorf("left in the output directory: %v", entries)
	}
}

// TestTransferSHA256InDone: a sender that hashes while sending (the
// browser) leaves the SHA-256 out of file-offer and gives it in file-done;
// the receiver checks the file against it. With no SHA-256 anywhere, or a
// wrong one, the file fails as corrupted and nothing stays on disk; an
// offer's SHA-256 is the one that counts when both carry one.
func TestTransferSHA256InDone(t *testing.T) {
	for _, c := range []struct {
		name        string
		offer, done func(right string) string
		ok          bool
	}{
		{"in file-done", func(string) string { return "" }, func(r string) string { return r }, true},
		{"nowhere", func(string) string { return "" }, func(string) string { return "" }, false},
		{"wrong in file-done", func(string) string { return "" }, func(string) string { return strings.Repeat("0", 64) }, false},
		{"upper case in file-done", func(string) string { return "" }, strings.ToUpper, false},
		{"in both, file-done's wrong", func(r string) string { return r }, func(string) string { return strings.Repeat("0", 64) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, _ := pair(t, nil)
			data := a.queueFile(t, "hashed-late.bin", 3<<20+11)
			a.link, b.link = newMemLinks() // connect, with the edit in place before the offer
			var right string
			a.link.edit = func(typ byte, payload []byte) []byte {
				switch typ {
				case proto.MsgFileOffer:
					var o fileOffer
					if err := json.Unmarshal(payload, &o); err != nil {
						t.Fatal(err)
					}
					right, o.SHA256 = o.SHA256, c.offer(o.SHA256)
					payload, _ = json.Marshal(o)
				case proto.MsgFileDone:
					var d fileDone
					if err := json.Unmarshal(payload, &d); err != nil {
						t.Fatal(err)
					}
					d.SHA256 = c.done(right)
					payload, _ = json.Marshal(d)
				}
				return payload
			}
			a.send.start(a.link)
			b.send.start(b.link)
			drive(t, a, b, a.has(EventFileSent, 1), nil)
			got := b.verdicts(EventFileReceived)[0]
			if c.ok {
				checkStored(t, got, data)
				return
			}
			if got.OK || got.Err != reasonCorrupted {
				t.Errorf("receiver verdict %+v, want %q", got, reasonCorrupted)
			}
			if entries, _ := os.ReadDir(b.dir); len(entries) != 0 {
				t.Errorf("left in the output directory: %v", entries)
			}
		})
	}
}

// TestTransferHostileNames: names that are not plain file names are
// refused before anything touches the disk; an existing file is never
// replaced and a planted symlink never written through.
func TestTransferHostileNames(t *testing.T) {
	a, b, _ := pair(t, nil)
	if err := os.WriteFile(filepath.Join(b.dir, "exists.txt"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	if err := os.Symlink(target, filepath.Join(b.dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	hostile := []string{"../escape.txt", "/tmp/abs.txt", "sub/dir.txt", `..\evil`, "..", "", "new\nline", "\xff\xfe"}
	for _, name := range hostile {
		a.queueFile(t, "x", 10)
		a.q.files[len(a.q.files)-1].name = name
	}
	fine := map[string][]byte{}
	for _, name := range []string{"exists.txt", "link.txt"} {
		fine[name] = a.queueFile(t, name, 100)
	}
	connect(a, b)
	n := len(hostile) + len(fine)
	drive(t, a, b, a.has(EventFileSent, n), nil)

	sent := a.verdicts(EventFileSent)
	got := b.verdicts(EventFileReceived)
	for i, name := range hostile {
		if sent[i].OK || !strings.Contains(sent[i].Err, "refused file name") {
			t.Errorf("%q: sender verdict %+v", name, sent[i])
		}
		if got[i].OK || got[i].Err != sent[i].Err {
			t.Errorf("%q: receiver verdict %+v", name, got[i])
		}
	}
	for i, name := range []string{"exists.txt", "link.txt"} {
		fs := got[len(hostile)+i]
		if filepath.Base(fs.Path) == name || filepath.Dir(fs.Path) != b.dir {
			t.Errorf("%s stored as %q", name, fs.Path)
		}
		checkStored(t, fs, fine[name])
	}
	if b, _ := os.ReadFile(filepath.Join(b.dir, "exists.txt")); string(b) != "keep me" {
		t.Error("existing file overwritten")
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Error("wrote through the symlink")
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(b.dir), "escape.txt")); !os.IsNotExist(err) {
		t.Error("file written outside the output directory")
	}
}

// gatedStore is a directory whose .part files hold every write at a gate:
// a write says it started on entered, then waits until the gate opens.
type gatedStore struct {
	dirStore
	entered chan struct{}
	gate    chan struct{}
	once    *sync.Once
}

func newGatedStore(dir string) gatedStore {
	return gatedStore{dirStore: dirStore{dir}, entered: make(chan struct{}, 1), gate: make(chan struct{}), once: new(sync.Once)}
}

// open lets every write through, now and later.
func (g gatedStore) open() { g.once.Do(func() { close(g.gate) }) }

func (g gatedStore) create(name string) (string, string, partFile, error) {
	final, part, f, err := g.dirStore.create(name)
	if err != nil {
		return "", "", nil, err
	}
	return final, part, gatedFile{f, g}, nil
}

type gatedFile struct {
	partFile
	g gatedStore
}

func (f gatedFile) Write(b []byte) (int, error) {
	notify(f.g.entered)
	<-f.g.gate
	return f.partFile.Write(b)
}

// TestTransferBurstBackpressure: the other side sends a whole file at
// once, ignoring flow control, while the disk is stuck. The receiver hands
// the writer what its queue takes, holds one write more, and then takes no
// message until the writer has room: the rest waits on the link, nothing is
// dropped, and once the disk moves the file arrives intact.
func TestTransferBurstBackpressure(t *testing.T) {
	var gs gatedStore
	a, b, _ := pair(t, func(dir string) store { gs = newGatedStore(dir); return gs })
	t.Cleanup(gs.open) // before the endpoints stop: their writers wait at the gate
	a.link, b.link = newMemLinks()

	const size = 16 << 20
	data := make([]byte, size)
	rand.Read(data)
	offer, _ := json.Marshal(fileOffer{ID: 7, Name: "burst.bin", Size: size, SHA256: sha256Hex(data)})
	a.link.send(proto.MsgFileOffer, offer)
	drive(t, a, b, func() bool { return len(a.link.queue) > 0 }, nil) // the accept
	if m := a.link.take(); m.typ != proto.MsgFileAccept || !strings.Contains(string(m.payload), `"offset":0`) {
		t.Fatalf("answer %d %s", m.typ, m.payload)
	}
	const chunk = 16 << 10
	frame := make([]byte, proto.ChunkHeader+chunk)
	for off := 0; off < size; off += chunk {
		copy(frame[proto.ChunkHeader:], data[off:off+chunk])
		putChunkHeader(frame, 7, int64(off))
		a.link.send(proto.MsgFileChunk, frame)
	}
	done, _ := json.Marshal(fileDone{ID: 7})
	a.link.send(proto.MsgFileDone, done)

	atGate, checked := false, false
	drive(t, a, b, b.has(EventFileReceived, 1), func() {
		if checked {
			return
		}
		if !atGate {
			waitSignal(t, gs.entered, "a write reaching the disk")
			atGate = true
		}
		in := b.recv.in[7]
		if !b.recv.holding() || len(in.w.jobs) < writerQueue {
			return // the writer took a write since; there is room for the held one
		}
		// Stuck: one write at the gate, a queue full of them, one held;
		// the rest of the burst still on the link.
		checked = true
		if want := (writerQueue + 2) * proto.AckEvery; in.received != int64(want) {
			t.Errorf("took %d bytes from the link while the disk was stuck, want %d", in.received, want)
		}
		if left := len(b.link.queue); left == 0 {
			t.Error("the whole burst was taken in")
		}
		gs.open()
	})
	if !checked {
		t.Fatal("the receiver never waited for the disk")
	}
	checkStored(t, b.verdicts(EventFileReceived)[0], data)
}

// TestTransferLinkClosedMidFile: a link that dies mid-file, with no other
// to follow, leaves the file pending at the sender and, once the client
// stops, the bytes received in the .part file.
func TestTransferLinkClosedMidFile(t *testing.T) {
	a, b, _ := pair(t, nil)
	a.queueFile(t, "cut.bin", 4<<20)
	connect(a, b)
	drive(t, a, b, func() bool { in := b.recv.in[a.q.files[0].id]; return in != nil && in.received >= 3<<20/2 }, nil)
	a.link.close(errString("cut"))
	// The sender learns it from its next send or from the session.
	for a.send.canPump() {
		a.send.pump(a.link)
	}
	a.send.stop()
	if a.q.pending() != 1 || len(a.verdicts(EventFileSent)) != 0 {
		t.Errorf("pending %d, verdicts %v", a.q.pending(), a.verdicts(EventFileSent))
	}
	in := b.recv.in[a.q.files[0].id]
	received := in.received
	b.stop()
	st, err := os.Stat(filepath.Join(b.dir, "cut.bin.part"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != received {
		t.Errorf(".part holds %d bytes, received %d", st.Size(), received)
	}
}

// TestTransferSecondFile: queued files go one after the other, the next
// offered only once the previous has its verdict; a file queued while the
// sender is idle goes when the session starts it.
func TestTransferSecondFile(t *testing.T) {
	a, b, trace := pair(t, nil)
	first := a.queueFile(t, "first.bin", 1<<20+1)
	second := a.queueFile(t, "second.bin", 2<<20)
	connect(a, b)
	drive(t, a, b, a.has(EventFileSent, 2), nil)
	third := a.queueFile(t, "third.bin", 3)
	a.send.start(a.link) // what the session does when the queue wakes it
	drive(t, a, b, a.has(EventFileSent, 3), nil)

	got := b.verdicts(EventFileReceived)
	checkStored(t, got[0], first)
	checkStored(t, got[1], second)
	checkStored(t, got[2], third)
	offers, results := 0, 0
	for _, ev := range *trace {
		switch ev {
		case fmt.Sprintf("b<-%d", proto.MsgFileOffer):
			offers++
			if offers != results+1 {
				t.Fatalf("offer %d before the verdict on file %d: %v", offers, offers-1, *trace)
			}
		case fmt.Sprintf("a<-%d", proto.MsgFileResult):
			results++
		}
	}
	if offers != 3 || results != 3 {
		t.Errorf("%d offers, %d verdicts", offers, results)
	}
}

// TestTransferManySmallFiles: many files, empty ones among them, each
// stored intact under its own name.
func TestTransferManySmallFiles(t *testing.T) {
	a, b, _ := pair(t, nil)
	const n = 60
	want := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("f%02d.txt", i)
		want[name] = a.queueFile(t, name, i*i*37%5000)
	}
	connect(a, b)
	drive(t, a, b, a.has(EventFileSent, n), nil)
	for _, fs := range b.verdicts(EventFileReceived) {
		checkStored(t, fs, want[filepath.Base(fs.Path)])
		delete(want, filepath.Base(fs.Path))
	}
	if len(want) != 0 {
		t.Errorf("not stored: %d files", len(want))
	}
	if len(b.recv.in) != 0 {
		t.Errorf("%d transfers still open", len(b.recv.in))
	}
	noParts(t, b.dir)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// waitSignal waits for ch, failing the test after a generous bound (a hang,
// not synchronisation).
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
}
