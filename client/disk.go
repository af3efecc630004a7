package client

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/tryst-chat/tryst/proto"
)

// Disk I/O runs on goroutines of its own, one per transfer and direction,
// so that the session goroutine, and with it the keepalive, never waits for
// the disk: a reader reads an outgoing file ahead of the sender, a writer
// writes, hashes, syncs and stores an incoming one. Both talk to the session
// goroutine through channels only.

// readBlock is how much a reader reads ahead per batch (one system call per
// readBlock instead of one per chunk), and writeBlock how much a receiver
// gathers per write: one system call of 1 MiB instead of sixteen of 64 KiB
// chunks (or 64 of 16 KiB ones). A block is written, and its bytes
// acknowledged, at least at every ack, so an ack still means the bytes are
// in the file. A block holds less than writeBlock plus one chunk
// (proto.MaxChunkData at most), which is what its memory is sized for.
const (
	readBlock  = 1 << 20
	writeBlock = proto.AckEvery
)

// readAhead is how many batches a reader may have read before the sender
// takes them, and writerQueue how many writes may wait for a writer: what
// a slow disk can take in before the session stops reading frames.
const (
	readAhead   = 2
	writerQueue = 8
)

// reader reads one outgoing file from an offset, as batches of chunk frames
// ready to send (each proto.ChunkHeader bytes, then the data read straight into
// the frame).
type reader struct {
	out  chan readBatch // the open outcome first, then the batches; closed at the end
	free chan []byte    // batch buffers the sender is done with
	quit chan struct{}
	once sync.Once
}

// readBatch is one step of a reader.
type readBatch struct {
	opened bool     // the file is open at the offset
	frames [][]byte // chunk frames, in order
	buf    []byte   // the frames' memory, handed back through free
	fail   string   // reading failed: the verdict's error; nothing follows
}

func startReader(wg *sync.WaitGroup, of *outFile, offset int64, chunkSize int) *reader {
	r := &reader{out: make(chan readBatch, readAhead), free: make(chan []byte, readAhead+1), quit: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(r.out)
		r.run(of, offset, chunkSize)
	}()
	return r
}

func (r *reader) run(of *outFile, off int64, chunkSize int) {
	f, err := os.Open(of.path)
	if err != nil {
		r.put(readBatch{fail: err.Error()})
		return
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		r.put(readBatch{fail: err.Error()})
		return
	}
	if !r.put(readBatch{opened: true}) {
		return
	}
	br := bufio.NewReaderSize(f, readBlock)
	perBatch := max(1, readBlock/chunkSize)
	size := perBatch * (proto.ChunkHeader + chunkSize)
	for off < of.size {
		var buf []byte
		select {
		case buf = <-r.free:
		default:
			buf = make([]byte, size)
		}
		frames := make([][]byte, 0, perBatch)
		pos := 0
		for len(frames) < perBatch && off < of.size {
			n := int(min(int64(chunkSize), of.size-off))
			frame := buf[pos : pos+proto.ChunkHeader+n]
			if _, err := io.ReadFull(br, frame[proto.ChunkHeader:]); err != nil {
				r.put(readBatch{fail: "read: " + err.Error()})
				return
			}
			putChunkHeader(frame, of.id, off)
			frames = append(frames, frame)
			pos += len(frame)
			off += int64(n)
		}
		if !r.put(readBatch{frames: frames, buf: buf}) {
			return
		}
	}
}

// put hands b to the sender; it reports false once the sender stopped the
// reader.
func (r *reader) put(b readBatch) bool {
	select {
	case r.out <- b:
		return true
	case <-r.quit:
		return false
	}
}

// recycle hands a sent batch's memory back for the next read.
func (r *reader) recycle(b readBatch) {
	if b.buf != nil {
		select {
		case r.free <- b.buf:
		default:
		}
	}
}

// stop tells the reader to end; it does not wait (a read may be slow), the
// goroutine's WaitGroup does.
func (r *reader) stop() { r.once.Do(func() { close(r.quit) }) }

// store is where received files go: the output directory in production;
// tests wrap it to make the disk slow or failing.
type store interface {
	// create picks a final name for name that does not exist yet and
	// creates its ".part" file exclusively.
	create(name string) (final, part string, f partFile, err error)
	// publish moves part to final, or to the next free name, never
	// replacing a file; it returns the name used.
	publish(part, final string) (string, error)
	// remove deletes a ".part" file.
	remove(part string)
	// reopen opens the ".part" file of an earlier process to continue it:
	// it keeps at most length bytes (what was verified), writes them to h,
	// and returns the file positioned at their end, and their number.
	reopen(part string, length int64, h io.Writer) (partFile, int64, error)
}

// partFile is the ".part" file a transfer writes.
type partFile interface {
	io.Writer
	Sync() error
	Close() error
}

// dirStore stores files in a directory.
type dirStore struct{ dir string }

// create picks a final name in the directory that does not exist yet
// ("a.txt", "a (1).txt", …) and creates its ".part" file exclusively, so an
// existing file, or a symlink planted there, is never written through.
func (d dirStore) create(name string) (final, part string, _ partFile, _ error) {
	for i := 0; i < 1000; i++ {
		cand := candidateName(name, i)
		final = filepath.Join(d.dir, cand)
		if _, err := os.Lstat(final); err == nil {
			continue
		}
		part = filepath.Join(d.dir, partName(cand))
		f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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

// publish moves part to final without ever replacing an existing file:
// os.Link fails if final exists (someone created it meanwhile), and then
// the next free name is tried.
func (dirStore) publish(part, final string) (string, error) {
	dir := filepath.Dir(final)
	name := filepath.Base(final)
	for i := 0; i < 1000; i++ {
		cand := filepath.Join(dir, candidateName(name, i))
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

func (dirStore) remove(part string) { _ = os.Remove(part) }

// reopen continues a ".part" file that an earlier process wrote. It must
// still be a regular file (not a symlink planted since) and is cut to the
// verified length, whose bytes are hashed again to continue the SHA-256.
func (dirStore) reopen(part string, length int64, h io.Writer) (partFile, int64, error) {
	before, err := os.Lstat(part)
	if err != nil {
		return nil, 0, err
	}
	if !before.Mode().IsRegular() {
		return nil, 0, errors.New("not a regular file")
	}
	f, err := os.OpenFile(part, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) (partFile, int64, error) {
		_ = f.Close()
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !os.SameFile(before, st) {
		return fail(errors.New("the file changed while it was opened"))
	}
	length = max(0, min(length, st.Size()))
	if err := f.Truncate(length); err != nil {
		return fail(err)
	}
	n, err := io.Copy(h, io.NewSectionReader(f, 0, length))
	if err != nil {
		return fail(err)
	}
	if n != length {
		return fail(io.ErrUnexpectedEOF)
	}
	if _, err := f.Seek(length, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, length, nil
}

// writeJob is one thing a writer does, in the order given.
type writeJob struct {
	finish bool   // check the SHA-256, sync, store; otherwise write data
	sha256 string // finish: the SHA-256 the file must have, hex ("": none was given, so it fails)
	data   []byte // a block of the file; the writer owns it until it reports
	end    int64  // the file offset after data
}

// diskReport is what a writer tells the session goroutine.
type diskReport struct {
	in    *inFile
	kind  reportKind
	end   int64  // wrote: the bytes now in the file; created: the bytes a reopened .part holds
	block []byte // wrote: the block's memory, for reuse
	final string // created: the chosen name; stored: the name used
	err   string // rejected, failed: why
}

type reportKind int

const (
	reportCreated  reportKind = iota + 1 // the .part file exists
	reportRejected                       // it could not be created
	reportWrote                          // a block is in the file
	reportFailed                         // writing, checking or storing failed; the .part is gone
	reportStored                         // the file is verified and stored
)

// writer writes one incoming file. It creates the .part file first, then
// takes jobs until the session closes jobs; after a failure it discards
// them. Closing jobs mid-file (the client stops) leaves the .part file.
type writer struct {
	jobs chan writeJob
}

func startWriter(wg *sync.WaitGroup, st store, state *stateFile, in *inFile, reports chan<- diskReport, quit <-chan struct{}) *writer {
	w := &writer{jobs: make(chan writeJob, writerQueue)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(st, state, in, func(r diskReport) {
			r.in = in
			select {
			case reports <- r:
			case <-quit: // the session has stopped; nobody listens
			}
		})
	}()
	return w
}

func (w *writer) run(st store, state *stateFile, in *inFile, report func(diskReport)) {
	h := sha256.New()
	var (
		final, part string
		f           partFile
		have        int64
		err         error
	)
	if r := in.resume; r != nil {
		// A .part file an earlier process of this member wrote: continue
		// it from its verified length.
		if f, have, err = st.reopen(r.Part, r.Length, h); err == nil {
			final, part = r.Final, r.Part
		} else {
			h.Reset()
		}
	}
	if f == nil {
		final, part, f, err = st.create(in.offer.Name)
		if err != nil {
			report(diskReport{kind: reportRejected, err: "cannot store the file: " + err.Error()})
			for range w.jobs {
			}
			return
		}
	}
	o := in.offer
	state.recvStarted(partState{ID: o.ID, Name: o.Name, Size: o.Size, SHA256: o.SHA256, Final: final, Part: part, Length: have})
	report(diskReport{kind: reportCreated, final: final, end: have})
	fail := func(reason string) {
		_ = f.Close()
		st.remove(part)
		f = nil
		state.recvEnded(fileResult{ID: o.ID, Error: reason})
		report(diskReport{kind: reportFailed, err: reason})
	}
	for job := range w.jobs {
		switch {
		case f == nil:
			// Failed or stored: nothing more to do until the session
			// closes jobs.
		case !job.finish:
			h.Write(job.data)
			if _, err := f.Write(job.data); err != nil {
				fail("write: " + err.Error())
				continue
			}
			state.recvWrote(o.ID, job.end)
			report(diskReport{kind: reportWrote, end: job.end, block: job.data})
		case job.sha256 == "" || hex.EncodeToString(h.Sum(nil)) != job.sha256:
			fail(reasonCorrupted)
		default:
			if err := f.Sync(); err != nil {
				fail("sync: " + err.Error())
				continue
			}
			_ = f.Close()
			f = nil
			stored, err := st.publish(part, final)
			if err != nil {
				st.remove(part)
				state.recvEnded(fileResult{ID: o.ID, Error: "store: " + err.Error()})
				report(diskReport{kind: reportFailed, err: "store: " + err.Error()})
				continue
			}
			state.recvEnded(fileResult{ID: o.ID, OK: true, Name: filepath.Base(stored)})
			report(diskReport{kind: reportStored, final: stored})
		}
	}
	if f != nil {
		// The client stopped mid-file: keep the .part, nothing received is
		// lost.
		_ = f.Close()
	}
}
