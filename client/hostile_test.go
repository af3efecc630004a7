package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A hostile peer (issue 13): names meant to pass for others on screen are
// refused with a fixed reason; what the sender is told never names the
// receiver's paths; names as long as a file system allows go through, with
// a shorter temporary name.

// TestHostileNamesRefused: names with control, direction-changing or
// invisible characters are refused before anything touches the disk; the
// sender hears a reason that names the problem, and neither the name nor
// the receiver's directory.
func TestHostileNamesRefused(t *testing.T) {
	a, b, _ := pair(t, nil)
	hostile := map[string]string{
		"invoice\u202efdp.exe":   "refused file name: contains invisible or direction-changing characters",
		"zero\u200bwidth.txt":    "refused file name: contains invisible or direction-changing characters",
		"iso\u2066late\u2069.sh": "refused file name: contains invisible or direction-changing characters",
		"\ufeffbom.txt":          "refused file name: contains invisible or direction-changing characters",
		"\x1b[2J.txt":            "refused file name: contains control characters",
		"\x1b]0;pwned\x07":       "refused file name: contains control characters",
		"\r* received x":         "refused file name: contains control characters",
	}
	var order []string
	for name := range hostile {
		a.queueFile(t, "x", 10)
		a.q.files[len(a.q.files)-1].name = name
		order = append(order, name)
	}
	connect(a, b)
	drive(t, a, b, a.has(EventFileSent, len(order)), nil)
	sent, got := a.verdicts(EventFileSent), b.verdicts(EventFileReceived)
	for i, name := range order {
		want := hostile[name]
		if sent[i].OK || sent[i].Err != want || strings.Contains(sent[i].Err, b.dir) {
			t.Errorf("%q: sender verdict %q, want %q", name, sent[i].Err, want)
		}
		// The receiver's own event has the name as offered, for its
		// terminal to show escaped (internal/termui).
		if got[i].OK || got[i].Name != name || got[i].Err != want {
			t.Errorf("%q: receiver verdict %+v", name, got[i])
		}
	}
	if entries, _ := os.ReadDir(b.dir); len(entries) != 0 {
		t.Errorf("left in the output directory: %v", entries)
	}
}

// failingStore is a directory whose creating, writing or storing fails
// with the kind of error a real disk gives, which names a path in it.
type failingStore struct {
	dirStore
	failCreate, failWrite, failPublish bool
}

func (s failingStore) create(name string) (string, string, partFile, error) {
	if s.failCreate {
		return "", "", nil, &os.PathError{Op: "open", Path: filepath.Join(s.dir, name+".part"), Err: errors.New("permission denied")}
	}
	final, part, f, err := s.dirStore.create(name)
	if err != nil || !s.failWrite {
		return final, part, f, err
	}
	return final, part, failingFile{f, part}, nil
}

func (s failingStore) publish(part, final string) (string, error) {
	if s.failPublish {
		return "", &os.LinkError{Op: "link", Old: part, New: final, Err: errors.New("operation not permitted")}
	}
	return s.dirStore.publish(part, final)
}

type failingFile struct {
	partFile
	path string
}

func (f failingFile) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: f.path, Err: errors.New("no space left on device")}
}

// TestHostileReasonsNameNoPath: when the receiver cannot create, write or
// store a file, the sender is told a fixed text; the receiver's own event
// keeps the error with its path, for the person at that side. A verdict
// said again after a reconnect is the same fixed text.
func TestHostileReasonsNameNoPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   failingStore
		want string
	}{
		{"create", failingStore{failCreate: true}, reasonNoCreate},
		{"write", failingStore{failWrite: true}, reasonNoWrite},
		{"publish", failingStore{failPublish: true}, reasonNoWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, _ := pair(t, func(dir string) store { tc.st.dir = dir; return tc.st })
			a.queueFile(t, "secret-plans.txt", 3<<20)
			connect(a, b)
			drive(t, a, b, a.has(EventFileSent, 1), nil)
			sent := a.verdicts(EventFileSent)[0]
			if sent.OK || sent.Err != tc.want {
				t.Errorf("sender verdict %q, want %q", sent.Err, tc.want)
			}
			got := b.verdicts(EventFileReceived)[0]
			if got.OK || !strings.Contains(got.Err, b.dir) {
				t.Errorf("receiver verdict %q: the person receiving should see what failed where", got.Err)
			}
			if tc.name == "create" {
				return
			}
			// The verdict lost in a reconnect is said again, as fixed.
			of := a.q.files[0]
			a.q.mu.Lock()
			of.done = false
			a.q.mu.Unlock()
			a.link.close(errString("cut"))
			a.send.stop()
			connect(a, b)
			drive(t, a, b, a.has(EventFileSent, 2), nil)
			if again := a.verdicts(EventFileSent)[1]; again.Err != tc.want {
				t.Errorf("repeated verdict %q, want %q", again.Err, tc.want)
			}
		})
	}
}

// The longest names a file system takes: 255 bytes, in ASCII and in
// two-byte characters.
var longNames = []string{strings.Repeat("a", 251) + ".bin", strings.Repeat("é", 126) + ".bi"}

// TestHostileLongNameTransfersAndResumes: a 255-byte name is stored under
// that name; its temporary file is the shorter partName; a transfer cut
// mid-file resumes into it; a second file of the same name is stored under
// a numbered name cut to fit.
func TestHostileLongNameTransfersAndResumes(t *testing.T) {
	for _, name := range longNames {
		if len(name) != maxNameBytes || ValidateFileName(name) != nil {
			t.Fatalf("test name of %d bytes", len(name))
		}
		a, b, _ := pair(t, nil)
		data := a.queueFile(t, name, 5<<20+3)
		connect(a, b)
		drive(t, a, b, func() bool {
			p := a.verdicts(EventProgress)
			return len(p) > 0 && p[len(p)-1].Done >= 2<<20
		}, nil)
		part := filepath.Join(b.dir, partName(name))
		if st, err := os.Stat(part); err != nil || st.Size() < 2<<20 {
			t.Fatalf("temporary file %s: %v", filepath.Base(part), err)
		}
		if !strings.HasPrefix(filepath.Base(part), ".tryst-") {
			t.Errorf("temporary name %q", filepath.Base(part))
		}
		a.link.close(errString("cut"))
		a.send.stop()
		connect(a, b)
		drive(t, a, b, a.has(EventFileSent, 1), nil)
		if res := a.verdicts(EventFileResumed); len(res) != 1 || res[0].Done < 2<<20 {
			t.Errorf("resumed: %+v", res)
		}
		fs := b.verdicts(EventFileReceived)[0]
		checkStored(t, fs, data)
		if filepath.Base(fs.Path) != name {
			t.Errorf("stored as %q", filepath.Base(fs.Path))
		}
		noParts(t, b.dir)

		// The same name again: the numbered name is cut to 255 bytes.
		again := a.queueFile(t, name, 1000)
		a.send.start(a.link)
		drive(t, a, b, a.has(EventFileSent, 2), nil)
		fs = b.verdicts(EventFileReceived)[1]
		checkStored(t, fs, again)
		if base := filepath.Base(fs.Path); base != candidateName(name, 1) || len(base) > maxNameBytes {
			t.Errorf("second file stored as %q (%d bytes)", base, len(base))
		}
		noParts(t, b.dir)
	}
}

// TestHostileLongNamePartKept: a receiver that stops mid-file keeps what it
// received in the file partName gives for the name, where a later run
// finds it.
func TestHostileLongNamePartKept(t *testing.T) {
	a, b, _ := pair(t, nil)
	name := longNames[1]
	a.queueFile(t, name, 4<<20)
	connect(a, b)
	id := a.q.files[0].id
	drive(t, a, b, func() bool { in := b.recv.in[id]; return in != nil && in.received >= 3<<20/2 }, nil)
	a.link.close(errString("cut"))
	a.send.stop()
	received := b.recv.in[id].received
	b.stop()
	st, err := os.Stat(filepath.Join(b.dir, partName(name)))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != received {
		t.Errorf("temporary file holds %d bytes, received %d", st.Size(), received)
	}
}
