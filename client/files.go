package client

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/proto"
)

// File transfer (docs/PROTOCOL.md, "Data channel messages") is two state
// machines that the session goroutine drives with the messages that
// arrive, the link's flow control and the reports of the disk goroutines
// (disk.go): a sender for the files this side queued and a receiver for
// the files the other side offers. They survive reconnects: a new link
// resumes what the last one cut.

// A receiver acks every proto.AckEvery bytes written. Acks drive the
// sender's progress and its resume point, not its pace: the pace comes from
// the bulk channel's buffer, so there is no stop-and-wait.

// pumpBudget bounds the bytes a sender sends in one go, so that the
// session goroutine turns to what else arrived (a ping, chat) at least
// that often.
const pumpBudget = readBlock

// outFile is a file queued by SendFile.
type outFile struct {
	id      uint64
	path    string
	name    string
	size    int64
	sha     string
	started time.Time

	done  bool  // it has a verdict; guarded by outQueue.mu
	acked int64 // the receiver's last ack; the session goroutine's own
}

// outQueue holds the files queued by SendFile, in order.
type outQueue struct {
	mu    sync.Mutex // SendFile and PendingFiles against the session goroutine
	files []*outFile
	wake  chan struct{} // signalled when a file is queued
}

func newOutQueue() *outQueue { return &outQueue{wake: make(chan struct{}, 1)} }

func (q *outQueue) add(of *outFile) {
	q.mu.Lock()
	q.files = append(q.files, of)
	q.mu.Unlock()
	notify(q.wake)
}

// next returns the first file without a verdict, or nil.
func (q *outQueue) next() *outFile {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, o := range q.files {
		if !o.done {
			return o
		}
	}
	return nil
}

func (q *outQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, o := range q.files {
		if !o.done {
			n++
		}
	}
	return n
}

func (q *outQueue) find(id uint64) *outFile {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, o := range q.files {
		if o.id == id {
			return o
		}
	}
	return nil
}

func (q *outQueue) finish(of *outFile) {
	q.mu.Lock()
	of.done = true
	q.mu.Unlock()
}

// SendFile queues a file. Files are sent one after another; a transfer cut
// by a reconnect resumes from what the receiver has written. It reads the
// whole file once, for its SHA-256, before it returns.
func (c *Client) SendFile(path string) error {
	of, err := newOutFile(path)
	if err != nil {
		return err
	}
	if abs, err := filepath.Abs(path); err == nil {
		// Offered under the id an earlier process of this command used, so
		// that the receiver continues what it has.
		of.id = c.state.sentID(abs, of.size, of.sha, of.id)
	}
	c.files.add(of)
	return nil
}

// newOutFile describes the file at path for an offer.
func newOutFile(path string) (*outFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("send %s: not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("send %s: %w", path, err)
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	return &outFile{
		// Below 2^53, so the id is exact as a JSON number in JavaScript.
		id:      binary.BigEndian.Uint64(idb[:]) & (1<<53 - 1),
		path:    path,
		name:    filepath.Base(path),
		size:    st.Size(),
		sha:     hex.EncodeToString(h.Sum(nil)),
		started: time.Now(),
	}, nil
}

// PendingFiles reports how many queued files have no verdict yet.
func (c *Client) PendingFiles() int { return c.files.pending() }

// sendState is where the sender is with its current file.
//
//	idle ─offer─▶ offered ─accept─▶ opening ─opened─▶ streaming ─last chunk─▶ doneSent ─result─▶ idle (next file)
//	offered ─reject or bad offset─▶ idle (verdict: failed)
//	opening, streaming ─read error─▶ idle (verdict: failed)
//	any ─link lost─▶ idle; the file stays first in the queue, and the next link offers it again
type sendState int

const (
	sendIdle      sendState = iota // no file on this link: none queued, or none offered yet
	sendOffered                    // file-offer sent; waiting for file-accept
	sendOpening                    // the reader opens the file at the accepted offset
	sendStreaming                  // chunks go out as the reader and flow control allow
	sendDoneSent                   // file-done sent; waiting for file-result
)

// sender sends the queued files, one at a time, in queue order.
type sender struct {
	q         *outQueue
	chunkSize int
	emit      func(Event)
	progress  func()          // a file got its verdict
	disk      *sync.WaitGroup // readers

	state   sendState
	cur     *outFile
	offset  int64 // where the receiver asked to start
	rd      *reader
	batch   *readBatch // frames in hand; next is the first not sent
	next    int
	waitLow bool        // the link's bulk buffer is full
	verdict *fileResult // a file-result that came before file-done went out
}

func newSender(q *outQueue, chunkSize int, emit func(Event), progress func(), disk *sync.WaitGroup) *sender {
	return &sender{q: q, chunkSize: chunkSize, emit: emit, progress: progress, disk: disk}
}

// start offers the next queued file on l, unless a file is under way.
func (s *sender) start(l link) {
	if l == nil || s.state != sendIdle {
		return
	}
	of := s.q.next()
	if of == nil {
		return
	}
	b, _ := json.Marshal(fileOffer{ID: of.id, Name: of.name, Size: of.size, SHA256: of.sha})
	if l.send(proto.MsgFileOffer, b) != nil {
		return // the link is gone; the next one offers it
	}
	s.state, s.cur = sendOffered, of
}

// stop forgets the current link: the reader ends, and the current file
// waits for the next link.
func (s *sender) stop() {
	if s.rd != nil {
		s.rd.stop()
	}
	s.state, s.cur, s.rd, s.batch, s.next, s.waitLow, s.verdict = sendIdle, nil, nil, nil, 0, false, nil
}

// handle takes a message for the sending side: file-accept, file-ack or
// file-result.
func (s *sender) handle(l link, typ byte, payload []byte) {
	switch typ {
	case proto.MsgFileAccept:
		var a fileAccept
		if decodeJSON(payload, &a) != nil || s.state != sendOffered || a.ID != s.cur.id {
			return
		}
		switch {
		case a.Reject != "":
			s.finish(l, fileResult{ID: a.ID, Error: a.Reject})
		case a.Offset < 0 || a.Offset > s.cur.size:
			s.finish(l, fileResult{ID: a.ID, Error: "receiver asked for a bad offset"})
		default:
			s.state, s.offset = sendOpening, a.Offset
			s.rd = startReader(s.disk, s.cur, a.Offset, s.chunkSize)
		}
	case proto.MsgFileAck:
		var a fileAck
		if decodeJSON(payload, &a) != nil {
			return
		}
		if of := s.q.find(a.ID); of != nil {
			if a.Offset > of.acked && a.Offset <= of.size {
				of.acked = a.Offset
			}
			s.emit(Event{Kind: EventProgress, File: &FileStatus{Name: of.name, Size: of.size, Done: of.acked, Started: of.started}})
		}
	case proto.MsgFileResult:
		var r fileResult
		if decodeJSON(payload, &r) != nil || s.state == sendIdle || r.ID != s.cur.id {
			return
		}
		if s.state == sendDoneSent {
			s.finish(l, r)
			return
		}
		// The verdict counts once every chunk went out, as it did when
		// the receiver wrote it.
		s.verdict = &r
	}
}

// data is the channel to wait on for the reader, or nil when the sender
// needs nothing from it now.
func (s *sender) data() <-chan readBatch {
	if s.rd != nil && (s.state == sendOpening || s.state == sendStreaming && s.batch == nil) {
		return s.rd.out
	}
	return nil
}

// read takes what the reader sent on data; ok false is its end.
func (s *sender) read(l link, b readBatch, ok bool) {
	switch {
	case !ok:
		// Every chunk went out.
		s.rd = nil
		d, _ := json.Marshal(fileDone{ID: s.cur.id})
		if l.send(proto.MsgFileDone, d) != nil {
			return
		}
		s.state = sendDoneSent
		if s.verdict != nil {
			s.finish(l, *s.verdict)
		}
	case b.fail != "":
		s.finish(l, fileResult{ID: s.cur.id, Error: b.fail})
	case b.opened:
		s.state = sendStreaming
		if s.offset > 0 {
			s.emit(Event{Kind: EventFileResumed, File: &FileStatus{Name: s.cur.name, Size: s.cur.size, Done: s.offset, Started: s.cur.started}})
		}
	default:
		s.batch, s.next = &b, 0
	}
}

// canPump reports whether pump would send something now.
func (s *sender) canPump() bool { return s.state == sendStreaming && s.batch != nil && !s.waitLow }

// waitingLow reports whether the sender waits for the link's low water.
func (s *sender) waitingLow() bool { return s.waitLow }

// lowWater is the link's signal that its buffer drained.
func (s *sender) lowWater() { s.waitLow = false }

// pump sends chunks while the link's buffer is not full, up to pumpBudget
// bytes.
func (s *sender) pump(l link) {
	for budget := pumpBudget; budget > 0; {
		if l.full() {
			s.waitLow = true
			return
		}
		f := s.batch.frames[s.next]
		if l.send(proto.MsgFileChunk, f) != nil {
			s.stop() // the link is gone; the next one resumes
			return
		}
		s.next++
		budget -= len(f)
		if s.next == len(s.batch.frames) {
			s.rd.recycle(*s.batch)
			s.batch = nil
			return
		}
	}
}

// finish records the current file's verdict and goes on with the next.
func (s *sender) finish(l link, r fileResult) {
	of := s.cur
	s.stop()
	s.q.finish(of)
	if r.OK {
		of.acked = of.size
	}
	s.progress()
	s.emit(Event{Kind: EventFileSent, File: &FileStatus{
		Name: of.name, Path: r.Name, Size: of.size, Done: of.acked, Started: of.started, OK: r.OK, Err: r.Error,
	}})
	s.start(l)
}

// recvState is where the receiver is with one incoming file.
//
//	offer ─▶ creating ─created─▶ receiving ─file-done, all bytes─▶ finishing ─stored─▶ (finished)
//	creating ─cannot create─▶ (rejected, forgotten)
//	receiving, finishing ─write, hash, sync or store failed─▶ (finished, failed)
//	an offer for a known id: accept from what was received (resume), or repeat the verdict
type recvState int

const (
	recvCreating  recvState = iota // the writer creates the .part file; file-accept goes out once it exists
	recvReceiving                  // chunks are gathered and handed to the writer
	recvFinishing                  // the writer checks the SHA-256, syncs and stores
)

// inFile is a file being received.
type inFile struct {
	offer    fileOffer
	w        *writer
	state    recvState
	received int64  // bytes taken from chunks: what a resume continues from
	handed   int64  // bytes handed to the writer
	block    []byte // bytes gathered for the next write
	started  time.Time
	resume   *partState // the .part an earlier process of this member left, to continue
}

// receiver receives the files the other side offers, any number at once.
type receiver struct {
	store   store
	emit    func(Event)
	disk    *sync.WaitGroup // writers
	reports chan diskReport // from the writers
	quit    <-chan struct{} // closed when the session stops: writers stop reporting
	state   *stateFile      // where the writers record the transfers, for a rerun

	in       map[uint64]*inFile
	finished map[uint64]fileResult // verdicts sent, for an offer repeated after a reconnect
	held     *heldJob              // a job waiting for room at its writer
	blocks   [][]byte              // block memory for reuse
}

// heldJob is a write the writer had no room for. While one waits the
// session takes no bulk frames (control goes on): this is where a slow disk
// turns into backpressure on the bulk channel instead of memory.
type heldJob struct {
	in  *inFile
	job writeJob
}

func newReceiver(st store, emit func(Event), disk *sync.WaitGroup, reports chan diskReport, quit <-chan struct{}) *receiver {
	return &receiver{
		store: st, emit: emit, disk: disk, reports: reports, quit: quit, state: &stateFile{},
		in: make(map[uint64]*inFile), finished: make(map[uint64]fileResult),
	}
}

// restore takes up what an earlier process of this member recorded in
// state: the verdicts it gave (said again if the sender asks) and the .part
// files it left (continued when the sender offers them again).
func (r *receiver) restore(state *stateFile) {
	r.state = state
	for _, res := range state.verdicts() {
		r.finished[res.ID] = res
	}
}

// handle takes a message for the receiving side: file-offer, file-chunk or
// file-done. l is nil while no link is up.
func (r *receiver) handle(l link, typ byte, payload []byte) {
	switch typ {
	case proto.MsgFileOffer:
		var o fileOffer
		if decodeJSON(payload, &o) == nil {
			r.offer(l, o)
		}
	case proto.MsgFileChunk:
		if id, off, data, err := decodeChunk(payload); err == nil {
			r.chunk(id, off, data)
		}
	case proto.MsgFileDone:
		var d fileDone
		if decodeJSON(payload, &d) == nil {
			r.done(d)
		}
	}
}

func (r *receiver) offer(l link, o fileOffer) {
	if res, ok := r.finished[o.ID]; ok {
		// The verdict was lost in a reconnect: say it again.
		sendJSON(l, proto.MsgFileAccept, fileAccept{ID: o.ID, Offset: o.Size})
		sendJSON(l, proto.MsgFileResult, res)
		return
	}
	if in, ok := r.in[o.ID]; ok {
		if in.state != recvCreating {
			// Resume: continue from what was received.
			sendJSON(l, proto.MsgFileAccept, fileAccept{ID: o.ID, Offset: in.received})
		}
		return
	}
	if err := ValidateFileName(o.Name); err != nil {
		r.reject(l, o, refusedName(err), refusedName(err))
		return
	}
	if o.Size < 0 || o.SHA256 != "" && !isSHA256Hex(o.SHA256) {
		r.reject(l, o, reasonMalformed, reasonMalformed)
		return
	}
	in := &inFile{offer: o, started: time.Now()}
	if rs, ok := r.state.partial(o); ok {
		in.resume = &rs
	}
	in.w = startWriter(r.disk, r.store, r.state, in, r.reports, r.quit)
	r.in[o.ID] = in
}

// reject refuses o: this side's event says why in local's words, the
// sender is told peer, a fixed text (names.go) that names no local path.
func (r *receiver) reject(l link, o fileOffer, local, peer string) {
	r.emit(Event{Kind: EventFileReceived, File: &FileStatus{Name: o.Name, Size: o.Size, Incoming: true, Err: local}})
	sendJSON(l, proto.MsgFileAccept, fileAccept{ID: o.ID, Reject: peer})
}

func (r *receiver) chunk(id uint64, off int64, data []byte) {
	in, ok := r.in[id]
	if !ok || in.state != recvReceiving || off != in.received || in.received+int64(len(data)) > in.offer.Size {
		return // a chunk from before a resume, or beyond the size: ignore
	}
	if in.block == nil {
		in.block = r.newBlock()
	}
	in.block = append(in.block, data...)
	in.received += int64(len(data))
	if in.received-in.handed >= proto.AckEvery || in.received == in.offer.Size {
		r.queue(in, writeJob{data: in.block, end: in.received})
		in.handed, in.block = in.received, nil
	}
}

func (r *receiver) done(d fileDone) {
	in, ok := r.in[d.ID]
	if !ok || in.state != recvReceiving || in.received != in.offer.Size {
		return // unknown, finishing already, or chunks still missing (cut before a resume): the sender resends
	}
	// The file is checked against the offer's SHA-256, or, where the
	// sender hashed while sending, file-done's. With neither, nothing can
	// vouch for the bytes: the writer fails the file as corrupted.
	want := in.offer.SHA256
	if want == "" && isSHA256Hex(d.SHA256) {
		want = d.SHA256
	}
	in.state = recvFinishing
	r.queue(in, writeJob{finish: true, sha256: want})
}

// isSHA256Hex reports whether s is a SHA-256 as the protocol writes it: 64
// lowercase hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// queue hands job to in's writer, or holds it if the writer has no room.
// Only frames make jobs, and the session takes none while a job is held,
// so at most one is.
func (r *receiver) queue(in *inFile, job writeJob) {
	select {
	case in.w.jobs <- job:
	default:
		r.held = &heldJob{in: in, job: job}
	}
}

// holding reports whether a job waits for its writer.
func (r *receiver) holding() bool { return r.held != nil }

// heldFor is the channel and job to hand over when the writer has room;
// a nil channel when none is held.
func (r *receiver) heldFor() (chan<- writeJob, writeJob) {
	if r.held == nil {
		return nil, writeJob{}
	}
	return r.held.in.w.jobs, r.held.job
}

// handed: the held job went to its writer.
func (r *receiver) handed() { r.held = nil }

// report takes a writer's report. l is nil while no link is up; what it
// would have carried is said again when the sender offers the file anew.
func (r *receiver) report(l link, rep diskReport) {
	in := rep.in
	id := in.offer.ID
	if r.in[id] != in {
		return
	}
	st := func() *FileStatus {
		return &FileStatus{Name: in.offer.Name, Size: in.offer.Size, Done: in.received, Incoming: true, Started: in.started}
	}
	switch rep.kind {
	case reportCreated:
		in.state = recvReceiving
		in.received, in.handed = rep.end, rep.end
		if rep.end > 0 {
			fs := st()
			r.emit(Event{Kind: EventFileResumed, File: fs})
		}
		sendJSON(l, proto.MsgFileAccept, fileAccept{ID: id, Offset: in.received})
	case reportRejected:
		r.end(in)
		r.reject(l, in.offer, rep.err, reasonNoCreate)
	case reportWrote:
		if len(r.blocks) < writerQueue {
			r.blocks = append(r.blocks, rep.block[:0])
		}
		sendJSON(l, proto.MsgFileAck, fileAck{ID: id, Offset: rep.end})
		fs := st()
		fs.Done = rep.end
		r.emit(Event{Kind: EventProgress, File: fs})
	case reportFailed:
		r.end(in)
		res := fileResult{ID: id, OK: false, Error: peerReason(rep.err)}
		r.finished[id] = res
		sendJSON(l, proto.MsgFileResult, res)
		fs := st()
		fs.Started, fs.Err = time.Time{}, rep.err
		r.emit(Event{Kind: EventFileReceived, File: fs})
	case reportStored:
		r.end(in)
		res := fileResult{ID: id, OK: true, Name: filepath.Base(rep.final)}
		r.finished[id] = res
		sendJSON(l, proto.MsgFileResult, res)
		fs := st()
		fs.Path, fs.OK = rep.final, true
		r.emit(Event{Kind: EventFileReceived, File: fs})
	}
}

// end forgets in and lets its writer finish.
func (r *receiver) end(in *inFile) {
	delete(r.in, in.offer.ID)
	if r.held != nil && r.held.in == in {
		r.held = nil
	}
	close(in.w.jobs)
}

func (r *receiver) newBlock() []byte {
	if n := len(r.blocks); n > 0 {
		b := r.blocks[n-1]
		r.blocks = r.blocks[:n-1]
		return b
	}
	// A block is handed on once it holds writeBlock bytes or more, so
	// with one chunk more than that it never grows past its capacity.
	return make([]byte, 0, writeBlock+proto.MaxChunkData)
}

// close ends every transfer under way when the client stops: what was
// received goes to the .part files, which stay. It waits for room at the
// writers: the client is stopping, and its Run waits for them anyway.
func (r *receiver) close() {
	for _, in := range r.in {
		if r.held != nil && r.held.in == in {
			in.w.jobs <- r.held.job
			r.held = nil
		}
		if len(in.block) > 0 {
			in.w.jobs <- writeJob{data: in.block, end: in.received}
		}
		close(in.w.jobs)
	}
	clear(r.in)
}

// sendJSON sends a control message on l, if there is a link.
func sendJSON(l link, typ byte, v any) {
	if l == nil {
		return
	}
	b, _ := json.Marshal(v)
	_ = l.send(typ, b)
}

// putChunkHeader writes the header of a file chunk (id and offset; see
// proto.ChunkHeader) into the first proto.ChunkHeader bytes of frame.
func putChunkHeader(frame []byte, id uint64, offset int64) {
	binary.BigEndian.PutUint64(frame[0:8], id)
	binary.BigEndian.PutUint64(frame[8:16], uint64(offset))
}
