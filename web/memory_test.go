package web

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// treeRSS is the resident memory of process pid and all its descendants
// (for Chromium: the browser, renderers, the GPU and utility processes,
// the network service, and through the renderers the workers), in bytes,
// from /proc/PID/status VmRSS. Processes that end while it reads are
// skipped; 0 if pid is not known.
func treeRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	var total int64
	for _, p := range descendants(pid) {
		total += vmRSS(p)
	}
	return total
}

// descendants is pid and every process below it, from the parent fields
// of /proc/*/stat.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		var state byte
		var ppid int
		if _, err := fmt.Sscanf(string(stat[i+1:]), " %c %d", &state, &ppid); err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

func vmRSS(pid int) int64 {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v) // "123456 kB"
			if len(f) == 2 {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

func TestTreeRSS(t *testing.T) {
	self := treeRSS(os.Getpid())
	if self <= 0 {
		t.Fatalf("this process's RSS: %d", self)
	}
	if treeRSS(0) != 0 {
		t.Error("pid 0 should count nothing")
	}
}

// TestBrowserMemoryFlat sends a 64 MiB and then a 256 MiB file from one
// browser to another through the client and samples the receiving
// browser's processes (all of them) every 250 ms: the growth for the large
// file must be about that for the small one, and far below the file's
// size. A receiver that holds the file in RAM grows by at least the file
// (issue 14: +570 MB for 200 MB); one that streams to disk (OPFS) does
// not grow with the file.
func TestBrowserMemoryFlat(t *testing.T) {
	const (
		// margin allows for what grows with time rather than with the
		// file: caches, the renderer's heap, a worker's.
		margin = 100e6
		// limit is issue 14's bound for a 2 GiB file.
		limit = 150e6
	)
	p := startClientPair(t, false, false)
	if p.version < 2 {
		t.Logf("client v%d (no #room-state): this test is written for the second client, which streams received files to OPFS", p.version)
	}
	growth := map[int64]float64{}
	for _, mib := range []int64{64, 256} {
		size := mib << 20
		src, sum := benchRandomFile(t, t.TempDir(), size)
		path := linkAs(t, src, fmt.Sprintf("memory-%d.bin", mib))
		r, err := p.transfer(path, size)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		p.recv.mustEval(time.Minute, jsReceivedSHA(filepath.Base(path)), &got)
		if got != sum {
			t.Fatalf("%d MiB: the receiver shows SHA-256 %q, want %s", mib, got, sum)
		}
		growth[mib] = float64(r.rssPeak - r.rssBefore)
		t.Logf("%d MiB in %.1f s (%.1f MB/s): receiving browser's processes %.0f MB before, peak %.0f MB (+%.0f MB; %d samples)",
			mib, r.d.Seconds(), benchMBps(size, r.d), float64(r.rssBefore)/1e6, float64(r.rssPeak)/1e6, growth[mib]/1e6, r.rssSamples)
		if r.rssSamples == 0 {
			t.Errorf("%d MiB: no memory sample during the transfer", mib)
		}
		// The sender has its verdict: free the disk for the next file.
		os.Remove(path)
		os.Remove(src)
	}
	if growth[256] > growth[64]+margin {
		t.Errorf("the receiving browser grew %.0f MB for 256 MiB and %.0f MB for 64 MiB: memory grows with the file (allowed: +%.0f MB)",
			growth[256]/1e6, growth[64]/1e6, margin/1e6)
	}
	if growth[256] > limit {
		t.Errorf("the receiving browser grew %.0f MB for a 256 MiB file (at most %.0f MB): the file is held in memory", growth[256]/1e6, limit/1e6)
	}
}

// jsReceivedSHA is the SHA-256 the receiving page shows for the verified
// file name: the file card's save button (button.save data-sha256), or
// the first client's download link.
func jsReceivedSHA(name string) string {
	return fmt.Sprintf(`((name) => {
	for (const c of document.querySelectorAll('.file-card[data-dir="in"]')) {
		const n = c.querySelector(".name");
		if (n && n.textContent.trim() === name) return c.querySelector("button.save")?.dataset.sha256 || "";
	}
	for (const a of document.querySelectorAll("a.download")) if (a.download === name) return a.dataset.sha256 || "";
	return "";
})(%s)`, benchJSString(name))
}
