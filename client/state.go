package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A client that keeps state (Config.StateDir) writes what a rerun of the
// same command needs to come back after the process died (kill -9, a crash,
// a power cut): the room, this member's role and resume token, the ids of
// the files it sends and, for the files it receives, where each .part file
// is and how much of it is verified. The resume token is the credential: the
// hub lets whoever presents it take over the member's slot (a connection
// still attached for it is closed), and it cannot check the password, so the
// file is 0600 in a 0700 directory. Leaving (Leave, the context ending) and
// every other end of the room remove the file; only a process that died
// leaves it behind.
//
// One file per room and member, rooms/KEY.json in the state directory, JSON:
//
//	{"version":1,"hub":"http://…","room":"K7Q-…","role":"guest","token":"…",
//	 "sent":[{"path":"/abs/a.bin","size":5,"sha256":"…","id":123}],
//	 "recv":[{"id":123,"name":"a.bin","size":5,"sha256":"…","final":"/out/a.bin","part":"/out/a.bin.part","length":1048576}],
//	 "done":[{"id":123,"ok":true,"name":"a.bin"}],
//	 "failures":1,"pending":{"sid":"…","master":"…","share":"c3.…","reply":"c3.…"}}
//
// Writing it never fails the session: a directory that cannot be written
// costs the ability to come back, said once in a warning.

// stateVersion is the format of a state file; a file of another version is
// ignored.
const stateVersion = 1

// stateSaveEvery bounds how often the verified length of a file being
// received is written: a rerun resends at most this much more than it must.
const stateSaveEvery = 250 * time.Millisecond

// roomState is one state file.
type roomState struct {
	Version int          `json:"version"`
	Hub     string       `json:"hub"`
	Room    string       `json:"room,omitempty"`
	Role    string       `json:"role,omitempty"`
	Token   string       `json:"token,omitempty"`
	Sent    []sentState  `json:"sent,omitempty"`
	Recv    []partState  `json:"recv,omitempty"`
	Done    []fileResult `json:"done,omitempty"`
	// ChatIDs is the chat ids this member has reserved: a rerun numbers
	// its messages above it, since the other side has shown every id up
	// to what the killed process sent and would take a reused one for a
	// duplicate (docs/PROTOCOL.md: ids count for the life of the room).
	ChatIDs uint64 `json:"chat_ids,omitempty"`
	// Failures counts the room's failed key confirmations, so that a rerun
	// goes on counting towards e2e.GuessLimit (docs/PROTOCOL.md, "PAKE").
	Failures int `json:"failures,omitempty"`
	// Pending is a guest's exchange waiting for the host's sealed offer: a
	// rerun answers the same share with the same reply, as the process
	// that died would have. Its master comes from CPace's Diffie-Hellman
	// secret and allows no password test; the reply crossed the hub.
	Pending *pendingState `json:"pending,omitempty"`
}

// pendingState is a guest's pending exchange.
type pendingState struct {
	SID    []byte `json:"sid"`
	Master []byte `json:"master"`
	Share  string `json:"share"` // the host's share it answers
	Reply  string `json:"reply"`
}

// sentState is a file this member sends: a rerun offers it under the same
// id, so that the receiver resumes its .part.
type sentState struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	ID     uint64 `json:"id"`
}

// partState is a file being received.
type partState struct {
	ID     uint64 `json:"id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Final  string `json:"final"`
	Part   string `json:"part"`
	Length int64  `json:"length"` // bytes written to Part and flushed to the OS: where a resume continues
}

// RoomStateKey is the state key of a guest of room code on hubURL: a
// rerun of `tryst receive CODE` finds its state under it.
func RoomStateKey(hubURL, code string) string {
	return stateKey("guest", hubURL, code)
}

// SendStateKey is the state key of a sender of paths (absolute, in the
// order given) on hubURL: a rerun of `tryst send` with the same paths finds
// the room it opened.
func SendStateKey(hubURL string, paths []string) string {
	return stateKey(append([]string{"send", hubURL}, paths...)...)
}

func stateKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return parts[0] + "-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// stateFile is a client's state file. Its methods are safe for the hub
// loop, the API's callers and the disk goroutines at once; only the disk
// goroutines and the hub loop write it, never the session goroutine.
type stateFile struct {
	path string // "" when no state is kept
	warn func(error)

	mu       sync.Mutex
	st       roomState
	saved    time.Time // when a verified length was last written
	dirty    bool      // a verified length waits to be written
	warned   bool
	loaded   bool // the file existed when the client started
	disabled bool // removed for good: the room ended
	// claimed lists the ids of Sent taken by a SendFile of this process:
	// an id stored by an earlier process is offered again once (the
	// receiver continues that file); sending the same file again in this
	// process is a new file, with a new id.
	claimed map[uint64]bool
}

// openState reads the state file of key in dir, if any. An empty dir or
// key keeps no state.
func openState(dir, key, hub string, warn func(error)) *stateFile {
	s := &stateFile{warn: warn, st: roomState{Version: stateVersion, Hub: hub}}
	if dir == "" || key == "" {
		return s
	}
	s.path = filepath.Join(dir, "rooms", key+".json")
	b, err := os.ReadFile(s.path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.warnOnce(fmt.Errorf("cannot keep state in %s (%w); if this process dies, rerunning the command will not resume",
				filepath.Dir(s.path), err))
		}
		return s
	}
	var st roomState
	if json.Unmarshal(b, &st) != nil || st.Version != stateVersion || st.Hub != hub {
		return s // another version or a damaged file: start afresh
	}
	s.st, s.loaded = st, true
	return s
}

// keyed reports whether the client keeps state.
func (s *stateFile) keyed() bool { return s.path != "" }

// resumable returns the stored room, role and token, if the file had them.
func (s *stateFile) resumable() (room, role, token string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded || s.st.Token == "" {
		return "", "", "", false
	}
	return s.st.Room, s.st.Role, s.st.Token, true
}

// setRoom records the room, role and token the hub handed out.
func (s *stateFile) setRoom(room, role, token string) {
	s.update(func(st *roomState) bool {
		if st.Room == room && st.Role == role && st.Token == token {
			return false
		}
		st.Room, st.Role, st.Token = room, role, token
		return true
	})
}

// failures is the room's count of failed key confirmations so far.
func (s *stateFile) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Failures
}

// setFailures records the count of failed key confirmations.
func (s *stateFile) setFailures(n int) {
	s.update(func(st *roomState) bool {
		if st.Failures == n {
			return false
		}
		st.Failures = n
		return true
	})
}

// pending is a guest's exchange of an earlier process, if any.
func (s *stateFile) pending() *pendingState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Pending
}

// setPending records the guest's pending exchange (nil: none).
func (s *stateFile) setPending(p *pendingState) {
	s.update(func(st *roomState) bool {
		if st.Pending == nil && p == nil {
			return false
		}
		st.Pending = p
		return true
	})
}

// chatIDs is the chat id reservation of an earlier process (0: none).
func (s *stateFile) chatIDs() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.ChatIDs
}

// reserveChatIDs records that ids up to upTo may be used.
func (s *stateFile) reserveChatIDs(upTo uint64) {
	s.update(func(st *roomState) bool {
		st.ChatIDs = max(st.ChatIDs, upTo)
		return true
	})
}

// forgetRoom drops the room (it is gone) but keeps the files' ids, so
// that a fresh room offers them as before.
func (s *stateFile) forgetRoom() {
	s.update(func(st *roomState) bool {
		st.Room, st.Role, st.Token, st.Recv, st.Done, st.ChatIDs = "", "", "", nil, nil, 0
		st.Failures, st.Pending = 0, nil
		return true
	})
}

// sentID returns the id a file was offered under before, if it is the same
// file (path, size and SHA-256), and records it under id otherwise.
func (s *stateFile) sentID(path string, size int64, sha string, id uint64) uint64 {
	got := id
	s.update(func(st *roomState) bool {
		if s.claimed == nil {
			s.claimed = map[uint64]bool{}
		}
		for _, f := range st.Sent {
			if f.Path == path && f.Size == size && f.SHA256 == sha && !s.claimed[f.ID] {
				got = f.ID
				s.claimed[got] = true
				return false
			}
		}
		st.Sent = append(st.Sent, sentState{Path: path, Size: size, SHA256: sha, ID: id})
		s.claimed[id] = true
		return true
	})
	return got
}

// partial returns the stored state of an incoming file with id, if the
// offer matches it.
func (s *stateFile) partial(o fileOffer) (partState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.st.Recv {
		if r.ID == o.ID && r.Name == o.Name && r.Size == o.Size && r.SHA256 == o.SHA256 {
			return r, true
		}
	}
	return partState{}, false
}

// verdicts returns the stored verdicts on received files.
func (s *stateFile) verdicts() []fileResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fileResult(nil), s.st.Done...)
}

// recvStarted records a .part file that was created (or reopened).
func (s *stateFile) recvStarted(r partState) {
	s.update(func(st *roomState) bool {
		st.Recv = append(removeRecv(st.Recv, r.ID), r)
		return true
	})
}

// recvWrote records that the .part of id holds length bytes. It writes the
// file at most every stateSaveEvery (the rest waits for the next call or
// the end of the transfer).
func (s *stateFile) recvWrote(id uint64, length int64) {
	if !s.keyed() {
		return
	}
	s.mu.Lock()
	for i := range s.st.Recv {
		if s.st.Recv[i].ID == id {
			s.st.Recv[i].Length = length
			s.dirty = true
		}
	}
	now := time.Now()
	if !s.dirty || now.Sub(s.saved) < stateSaveEvery {
		s.mu.Unlock()
		return
	}
	s.saved = now
	s.saveLocked()
	s.mu.Unlock()
}

// recvEnded records the verdict on id; its .part is gone.
func (s *stateFile) recvEnded(res fileResult) {
	s.update(func(st *roomState) bool {
		st.Recv = removeRecv(st.Recv, res.ID)
		st.Done = append(st.Done, res)
		return true
	})
}

func removeRecv(rs []partState, id uint64) []partState {
	out := rs[:0]
	for _, r := range rs {
		if r.ID != id {
			out = append(out, r)
		}
	}
	return out
}

// remove deletes the file for good: the room ended, nothing to come back
// to. Later updates write nothing.
func (s *stateFile) remove() {
	if !s.keyed() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled = true
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.warnLocked(fmt.Errorf("cannot remove %s: %w", s.path, err))
	}
}

// update changes the state under the lock and writes it if fn says it
// changed.
func (s *stateFile) update(fn func(*roomState) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fn(&s.st) && s.keyed() {
		s.saveLocked()
	}
}

// saveLocked writes the file: a new file renamed over the old, so that a
// crash leaves the old or the new, never half of one.
func (s *stateFile) saveLocked() {
	if s.disabled {
		return
	}
	s.dirty = false
	b, _ := json.Marshal(s.st)
	dir := filepath.Dir(s.path)
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		f, err = os.CreateTemp(dir, ".tmp-*")
		if err == nil {
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(f.Name(), s.path)
			}
			if err != nil {
				_ = os.Remove(f.Name())
			}
		}
	}
	if err != nil {
		s.warnLocked(fmt.Errorf("cannot keep state in %s (%w); if this process dies, rerunning the command will not resume", dir, err))
	}
}

func (s *stateFile) warnOnce(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnLocked(err)
}

func (s *stateFile) warnLocked(err error) {
	if s.warned || s.warn == nil {
		return
	}
	s.warned = true
	s.warn(err)
}
