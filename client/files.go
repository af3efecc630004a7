package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// ackEvery is how many bytes a receiver writes between cumulative acks.
// Acks drive the sender's progress and its resume point, not its pace: the
// pace comes from the data channel's buffer, so there is no stop-and-wait.
const ackEvery = 1 << 20

// readBlock is how much a sender reads from disk at once, and writeBlock
// how much a receiver gathers before writing: 64 system calls of 16 KiB
// become one of 1 MiB. The receiver writes (flushes) at least at every
// ack, so an ack still means the bytes are in the file.
const (
	readBlock  = 1 << 20
	writeBlock = ackEvery
)

type fileState struct {
	mu       sync.Mutex
	out      []*outFile            // in the order they were queued
	in       map[uint64]*inFile    // transfers being received
	finished map[uint64]fileResult // results already sent, for a repeated offer
	wake     chan struct{}         // a file was queued
}

func (fs *fileState) init() {
	fs.in = make(map[uint64]*inFile)
	fs.finished = make(map[uint64]fileResult)
	fs.wake = make(chan struct{}, 1)
}

type outFile struct {
	id      uint64
	path    string
	name    string
	size    int64
	sha     string
	started time.Time

	acked  int64 // guarded by fileState.mu
	done   bool
	accept chan fileAccept
	result chan fileResult
}

type inFile struct {
	offer   fileOffer
	final   string // chosen final path
	part    string
	f       *os.File
	w       *bufio.Writer // buffers f; flushed at every ack
	h       hash.Hash
	written int64
	acked   int64
	started time.Time
}

// SendFile queues a file. Files are sent one after another; a transfer cut
// by a reconnect resumes from what the receiver has written.
func (c *Client) SendFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("send %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("send %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("send %s: not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("send %s: %w", path, err)
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	of := &outFile{
		// Below 2^53, so the id is exact as a JSON number in JavaScript.
		id:      binary.BigEndian.Uint64(idb[:]) & (1<<53 - 1),
		path:    path,
		name:    filepath.Base(path),
		size:    st.Size(),
		sha:     hex.EncodeToString(h.Sum(nil)),
		started: time.Now(),
		accept:  make(chan fileAccept, 1),
		result:  make(chan fileResult, 1),
	}
	c.files.mu.Lock()
	c.files.out = append(c.files.out, of)
	c.files.mu.Unlock()
	select {
	case c.files.wake <- struct{}{}:
	default:
	}
	return nil
}

// PendingFiles reports how many queued files have no verdict yet.
func (c *Client) PendingFiles() int {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	n := 0
	for _, o := range c.files.out {
		if !o.done {
			n++
		}
	}
	return n
}

func (c *Client) nextOutFile() *outFile {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	for _, o := range c.files.out {
		if !o.done {
			return o
		}
	}
	return nil
}

// sendFiles sends queued files over p until p closes.
func (c *Client) sendFiles(p *peer) {
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-p.closed
		cancel()
	}()
	for {
		of := c.nextOutFile()
		if of == nil {
			select {
			case <-c.files.wake:
				continue
			case <-p.closed:
				return
			}
		}
		if err := c.sendOne(ctx, p, of); err != nil {
			return // the connection broke; the next one resumes
		}
	}
}

func (c *Client) sendOne(ctx context.Context, p *peer, of *outFile) error {
	// Drop a stale verdict from an earlier connection.
	select {
	case <-of.accept:
	default:
	}
	b, _ := json.Marshal(fileOffer{ID: of.id, Name: of.name, Size: of.size, SHA256: of.sha})
	if err := p.send(msgFileOffer, b); err != nil {
		return err
	}
	var acc fileAccept
	select {
	case acc = <-of.accept:
	case <-ctx.Done():
		return ctx.Err()
	}
	if acc.Reject != "" {
		c.finishOut(of, fileResult{ID: of.id, OK: false, Error: acc.Reject})
		return nil
	}
	if acc.Offset < 0 || acc.Offset > of.size {
		c.finishOut(of, fileResult{ID: of.id, OK: false, Error: "receiver asked for a bad offset"})
		return nil
	}
	f, err := os.Open(of.path)
	if err != nil {
		c.finishOut(of, fileResult{ID: of.id, OK: false, Error: err.Error()})
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(acc.Offset, io.SeekStart); err != nil {
		c.finishOut(of, fileResult{ID: of.id, OK: false, Error: err.Error()})
		return nil
	}
	if acc.Offset > 0 {
		c.emit(Event{Kind: EventFileResumed, File: &FileStatus{Name: of.name, Size: of.size, Done: acc.Offset, Started: of.started}})
	}
	// Read ahead in large blocks (one system call per readBlock instead of
	// one per chunk) and read each chunk straight into its frame, after
	// the header.
	r := bufio.NewReaderSize(f, readBlock)
	frame := make([]byte, chunkHeader+c.cfg.ChunkSize)
	off := acc.Offset
	for off < of.size {
		n, err := io.ReadFull(r, frame[chunkHeader:chunkHeader+min(int64(c.cfg.ChunkSize), of.size-off)])
		if err != nil {
			c.finishOut(of, fileResult{ID: of.id, OK: false, Error: "read: " + err.Error()})
			return nil
		}
		putChunkHeader(frame, of.id, off)
		if err := p.sendBulk(ctx, msgFileChunk, frame[:chunkHeader+n]); err != nil {
			return err
		}
		off += int64(n)
	}
	b, _ = json.Marshal(fileDone{ID: of.id})
	if err := p.send(msgFileDone, b); err != nil {
		return err
	}
	select {
	case r := <-of.result:
		c.finishOut(of, r)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) finishOut(of *outFile, r fileResult) {
	c.files.mu.Lock()
	of.done = true
	if r.OK {
		of.acked = of.size
	}
	c.files.mu.Unlock()
	c.signalProgress()
	c.emit(Event{Kind: EventFileSent, File: &FileStatus{
		Name: of.name, Path: r.Name, Size: of.size, Done: of.acked, Started: of.started, OK: r.OK, Err: r.Error,
	}})
}

func (c *Client) findOut(id uint64) *outFile {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	for _, o := range c.files.out {
		if o.id == id {
			return o
		}
	}
	return nil
}

func (c *Client) handleFileMessage(p *peer, typ byte, payload []byte) {
	switch typ {
	case msgFileAccept:
		var a fileAccept
		if decodeJSON(payload, &a) != nil {
			return
		}
		if of := c.findOut(a.ID); of != nil {
			putLatest(of.accept, a)
		}
	case msgFileAck:
		var a fileAck
		if decodeJSON(payload, &a) != nil {
			return
		}
		if of := c.findOut(a.ID); of != nil {
			c.files.mu.Lock()
			if a.Offset > of.acked && a.Offset <= of.size {
				of.acked = a.Offset
			}
			st := FileStatus{Name: of.name, Size: of.size, Done: of.acked, Started: of.started}
			c.files.mu.Unlock()
			c.emit(Event{Kind: EventProgress, File: &st})
		}
	case msgFileResult:
		var r fileResult
		if decodeJSON(payload, &r) != nil {
			return
		}
		if of := c.findOut(r.ID); of != nil {
			putLatest(of.result, r)
		}
	case msgFileOffer:
		var o fileOffer
		if decodeJSON(payload, &o) != nil {
			return
		}
		c.receiveOffer(p, o)
	case msgFileChunk:
		id, off, data, err := decodeChunk(payload)
		if err != nil {
			return
		}
		c.receiveChunk(p, id, off, data)
	case msgFileDone:
		var d fileDone
		if decodeJSON(payload, &d) != nil {
			return
		}
		c.receiveDone(p, d.ID)
	}
}

func putLatest[T any](ch chan T, v T) {
	select {
	case <-ch:
	default:
	}
	ch <- v
}

func (c *Client) sendJSON(p *peer, typ byte, v any) {
	b, _ := json.Marshal(v)
	_ = p.send(typ, b)
}

// ValidateFileName checks a name offered by the other side. It must be a
// plain file name: no path separators, no "." or "..", no control
// characters, valid UTF-8, at most 255 bytes.
func ValidateFileName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return errors.New("empty or dot name")
	case len(name) > 255:
		return errors.New("name longer than 255 bytes")
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	case strings.ContainsAny(name, `/\`):
		return errors.New("name contains a path separator")
	case filepath.IsAbs(name) || filepath.VolumeName(name) != "":
		return errors.New("absolute path")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return errors.New("name contains control characters")
		}
	}
	return nil
}

func (c *Client) receiveOffer(p *peer, o fileOffer) {
	c.files.mu.Lock()
	if r, ok := c.files.finished[o.ID]; ok {
		c.files.mu.Unlock()
		// Verdict lost in a reconnect: say it again.
		c.sendJSON(p, msgFileAccept, fileAccept{ID: o.ID, Offset: o.Size})
		c.sendJSON(p, msgFileResult, r)
		return
	}
	if in, ok := c.files.in[o.ID]; ok {
		// Resume: continue from what is on disk.
		written := in.written
		c.files.mu.Unlock()
		c.sendJSON(p, msgFileAccept, fileAccept{ID: o.ID, Offset: written})
		return
	}
	c.files.mu.Unlock()

	reject := func(reason string) {
		c.emit(Event{Kind: EventFileReceived, File: &FileStatus{Name: o.Name, Size: o.Size, Incoming: true, Err: reason}})
		c.sendJSON(p, msgFileAccept, fileAccept{ID: o.ID, Reject: reason})
	}
	if err := ValidateFileName(o.Name); err != nil {
		reject("refused file name " + strconvQuote(o.Name) + ": " + err.Error())
		return
	}
	if o.Size < 0 || len(o.SHA256) != 64 {
		reject("malformed file offer")
		return
	}
	final, part, f, err := createPart(c.cfg.OutDir, o.Name)
	if err != nil {
		reject("cannot store the file: " + err.Error())
		return
	}
	in := &inFile{offer: o, final: final, part: part, f: f, w: bufio.NewWriterSize(f, writeBlock), h: sha256.New(), started: time.Now()}
	c.files.mu.Lock()
	c.files.in[o.ID] = in
	c.files.mu.Unlock()
	c.sendJSON(p, msgFileAccept, fileAccept{ID: o.ID, Offset: 0})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// createPart picks a final name in dir that does not exist yet ("a.txt",
// "a (1).txt", …) and creates its ".part" file exclusively, so an existing
// file, or a symlink planted in dir, is never written through.
func createPart(dir, name string) (final, part string, f *os.File, err error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		cand := name
		if i > 0 {
			cand = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		final = filepath.Join(dir, cand)
		if _, err := os.Lstat(final); err == nil {
			continue
		}
		part = final + ".part"
		f, err = os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", "", nil, err
		}
		return final, part, f, nil
	}
	return "", "", nil, errors.New("no free file name")
}

func (c *Client) receiveChunk(p *peer, id uint64, off int64, data []byte) {
	// The lock also orders this against a resume on a newer connection.
	c.files.mu.Lock()
	in, ok := c.files.in[id]
	if !ok || off != in.written || in.written+int64(len(data)) > in.offer.Size {
		c.files.mu.Unlock()
		return // a chunk from before a resume, or beyond the size: ignore
	}
	if _, err := in.w.Write(data); err != nil {
		c.files.mu.Unlock()
		c.failIn(p, id, in, "write: "+err.Error())
		return
	}
	in.h.Write(data)
	in.written += int64(len(data))
	ack := in.written-in.acked >= ackEvery || in.written == in.offer.Size
	if ack {
		if err := in.w.Flush(); err != nil {
			c.files.mu.Unlock()
			c.failIn(p, id, in, "write: "+err.Error())
			return
		}
		in.acked = in.written
	}
	st := FileStatus{Name: in.offer.Name, Size: in.offer.Size, Done: in.written, Incoming: true, Started: in.started}
	c.files.mu.Unlock()
	if ack {
		c.sendJSON(p, msgFileAck, fileAck{ID: id, Offset: st.Done})
		c.emit(Event{Kind: EventProgress, File: &st})
	}
}

func (c *Client) failIn(p *peer, id uint64, in *inFile, reason string) {
	in.f.Close()
	os.Remove(in.part)
	r := fileResult{ID: id, OK: false, Error: reason}
	c.files.mu.Lock()
	delete(c.files.in, id)
	c.files.finished[id] = r
	c.files.mu.Unlock()
	c.sendJSON(p, msgFileResult, r)
	c.emit(Event{Kind: EventFileReceived, File: &FileStatus{Name: in.offer.Name, Size: in.offer.Size, Done: in.written, Incoming: true, Err: reason}})
}

func (c *Client) receiveDone(p *peer, id uint64) {
	c.files.mu.Lock()
	in, ok := c.files.in[id]
	complete := ok && in.written == in.offer.Size
	c.files.mu.Unlock()
	if !complete {
		return // unknown, or chunks still missing (cut before a resume); the sender resends
	}
	if got := hex.EncodeToString(in.h.Sum(nil)); got != in.offer.SHA256 {
		c.failIn(p, id, in, "SHA-256 mismatch: the file was corrupted")
		return
	}
	if err := in.w.Flush(); err != nil {
		c.failIn(p, id, in, "write: "+err.Error())
		return
	}
	if err := in.f.Sync(); err != nil {
		c.failIn(p, id, in, "sync: "+err.Error())
		return
	}
	in.f.Close()
	final, err := publish(in.part, in.final)
	if err != nil {
		os.Remove(in.part)
		c.failIn(p, id, in, "store: "+err.Error())
		return
	}
	r := fileResult{ID: id, OK: true, Name: filepath.Base(final)}
	c.files.mu.Lock()
	delete(c.files.in, id)
	c.files.finished[id] = r
	c.files.mu.Unlock()
	c.sendJSON(p, msgFileResult, r)
	c.emit(Event{Kind: EventFileReceived, File: &FileStatus{Name: in.offer.Name, Path: final, Size: in.offer.Size, Done: in.written, Incoming: true, Started: in.started, OK: true}})
}

// publish moves part to final without ever replacing an existing file:
// os.Link fails if final exists (someone created it meanwhile), and then
// the next free name is tried.
func publish(part, final string) (string, error) {
	dir := filepath.Dir(final)
	name := filepath.Base(final)
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		cand := final
		if i > 0 {
			cand = filepath.Join(dir, fmt.Sprintf("%s (%d)%s", stem, i, ext))
		}
		err := os.Link(part, cand)
		if err == nil {
			return cand, os.Remove(part)
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", errors.New("no free file name")
}

// closeAll closes files still being received; their .part files stay, so
// nothing received is lost.
func (fs *fileState) closeAll() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, in := range fs.in {
		_ = in.w.Flush()
		in.f.Close()
	}
}

// putChunkHeader writes the header of a file chunk (id and offset; see
// chunkHeader) into the first chunkHeader bytes of frame.
func putChunkHeader(frame []byte, id uint64, offset int64) {
	binary.BigEndian.PutUint64(frame[0:8], id)
	binary.BigEndian.PutUint64(frame[8:16], uint64(offset))
}
