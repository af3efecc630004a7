package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/tryst-chat/tryst/client"
)

// progress draws transfer progress: a redrawn bar on a terminal, a plain
// line per step otherwise (logs and scripts).
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	last map[string]time.Time
	pct  map[string]int
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd())), last: map[string]time.Time{}, pct: map[string]int{}}
}

func humanBytes(n float64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func (p *progress) update(st *client.FileStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st.Size == 0 {
		return
	}
	pct := int(st.Done * 100 / st.Size)
	elapsed := time.Since(st.Started).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(st.Done) / elapsed
	}
	eta := "--"
	if rate > 0 && st.Done < st.Size {
		eta = time.Duration(float64(st.Size-st.Done) / rate * float64(time.Second)).Round(time.Second).String()
	} else if st.Done >= st.Size {
		eta = "0s"
	}
	key := st.Name
	if p.tty {
		// Redraw at most ten times a second.
		if time.Since(p.last[key]) < 100*time.Millisecond && st.Done < st.Size {
			return
		}
		p.last[key] = time.Now()
		const width = 30
		fill := width * pct / 100
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		fmt.Fprintf(p.w, "\r%-24.24s %3d%% [%s] %10s/s ETA %-8s", st.Name, pct, bar, humanBytes(rate), eta)
		if st.Done >= st.Size {
			fmt.Fprintln(p.w)
		}
		return
	}
	// Plain output: one line per 10% (and the end).
	step := pct / 10 * 10
	if prev, ok := p.pct[key]; ok && step <= prev && st.Done < st.Size {
		return
	}
	p.pct[key] = step
	fmt.Fprintf(p.w, "* %s: %d%% of %s, %s/s, ETA %s\n", st.Name, pct, humanBytes(float64(st.Size)), humanBytes(rate), eta)
}
