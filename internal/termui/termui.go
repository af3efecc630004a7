// Package termui is how the peer commands (chat, send, receive) show a
// client's events to a person: one serialised line per event, and transfer
// progress as a bar on a terminal or a line per step in logs and scripts.
package termui

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

// Progress draws transfer progress: a redrawn bar on a terminal, a plain
// line per step otherwise (logs and scripts).
type Progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	last map[string]time.Time
	pct  map[string]int
}

// NewProgress draws on w; a bar only when w is a terminal.
func NewProgress(w io.Writer) *Progress {
	f, ok := w.(*os.File)
	return &Progress{w: w, tty: ok && term.IsTerminal(int(f.Fd())), last: map[string]time.Time{}, pct: map[string]int{}}
}

// HumanBytes writes a byte count in decimal units: 1.5 MB.
func HumanBytes(n float64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

// Update draws st: on a terminal a bar redrawn at most ten times a
// second, otherwise a line per 10 %.
func (p *Progress) Update(st *client.FileStatus) {
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
	name := Escape(st.Name)
	if p.tty {
		// Redraw at most ten times a second.
		if time.Since(p.last[key]) < 100*time.Millisecond && st.Done < st.Size {
			return
		}
		p.last[key] = time.Now()
		const width = 30
		fill := width * pct / 100
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		fmt.Fprintf(p.w, "\r%-24.24s %3d%% [%s] %10s/s ETA %-8s", name, pct, bar, HumanBytes(rate), eta)
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
	fmt.Fprintf(p.w, "* %s: %d%% of %s, %s/s, ETA %s\n", name, pct, HumanBytes(float64(st.Size)), HumanBytes(rate), eta)
}

// Printer serialises everything a command writes to its output: lines,
// and the progress of transfers.
type Printer struct {
	mu   sync.Mutex
	out  io.Writer
	prog *Progress
}

// NewPrinter prints lines to out and progress to prog (which may be the
// same writer).
func NewPrinter(out, prog io.Writer) *Printer {
	return &Printer{out: out, prog: NewProgress(prog)}
}

// Say prints one line: format and a as fmt.Sprintf has them, passed
// through Escape, then a newline. The arguments are often the other
// side's words (chat, file names, reasons), and the whole line is escaped
// so that no argument, whatever its type, reaches the terminal raw; the
// format, this program's own, needs no control character either.
func (p *Printer) Say(format string, a ...any) {
	line := Escape(fmt.Sprintf(format, a...))
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.out, line)
}

// Event prints the events every command shows the same way; it reports
// whether ev was one of them.
func (p *Printer) Event(ev client.Event) bool {
	switch ev.Kind {
	case client.EventWaiting:
		p.Say("* %s", ev.Text)
	case client.EventConnected:
		p.Say("* connected: %s", ev.Path)
	case client.EventDisconnected:
		p.Say("* connection lost: %s", ev.Text)
	case client.EventWarning:
		p.Say("* warning: %s", ev.Text)
	case client.EventPeerLeft, client.EventHub:
		p.Say("* %s", ev.Text)
	case client.EventProgress:
		p.prog.Update(ev.File)
	case client.EventFileResumed:
		p.Say("* resuming %s at %s", ev.File.Name, HumanBytes(float64(ev.File.Done)))
	case client.EventFileSent:
		if ev.File.OK {
			p.Say("* sent %s (%s), verified by the receiver", ev.File.Name, HumanBytes(float64(ev.File.Size)))
		} else {
			p.Say("* failed to send %s: %s", ev.File.Name, ev.File.Err)
		}
	case client.EventFileReceived:
		if ev.File.OK {
			p.Say("* received %s (%s, SHA-256 verified)", ev.File.Path, HumanBytes(float64(ev.File.Size)))
		} else {
			p.Say("* refused or failed %s: %s", ev.File.Name, ev.File.Err)
		}
	default:
		return false
	}
	return true
}
