package termui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/client"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[float64]string{0: "0.0 B", 999: "999.0 B", 1500: "1.5 KB", 2e6: "2.0 MB", 3.25e12: "3.2 TB", 5e15: "5000.0 TB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%v) = %q, want %q", n, got, want)
		}
	}
}

// Off a terminal, progress is a line per 10 % step and one at the end,
// never a repeated step.
func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b)
	st := &client.FileStatus{Name: "a.bin", Size: 1000, Started: time.Now().Add(-time.Second)}
	for _, done := range []int64{0, 50, 99, 100, 150, 250, 999, 1000} {
		st.Done = done
		p.Update(st)
	}
	var pcts []string
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if !strings.HasPrefix(line, "* a.bin: ") || !strings.Contains(line, " of 1.0 KB, ") {
			t.Errorf("line %q", line)
		}
		pct, _, _ := strings.Cut(strings.TrimPrefix(line, "* a.bin: "), " ")
		pcts = append(pcts, pct)
	}
	if got := strings.Join(pcts, " "); got != "0% 10% 25% 99% 100%" {
		t.Errorf("steps %q", got)
	}
	// A file of size 0 draws nothing (it has no progress to show).
	b.Reset()
	p.Update(&client.FileStatus{Name: "empty"})
	if b.Len() != 0 {
		t.Errorf("empty file: %q", b.String())
	}
}

func TestPrinterEvents(t *testing.T) {
	var b bytes.Buffer
	p := NewPrinter(&b, &b)
	for _, tc := range []struct {
		ev   client.Event
		want string
	}{
		{client.Event{Kind: client.EventWaiting, Text: "waiting for the other side"}, "* waiting for the other side\n"},
		{client.Event{Kind: client.EventConnected, Path: "direct"}, "* connected: direct\n"},
		{client.Event{Kind: client.EventWarning, Text: "x"}, "* warning: x\n"},
		{client.Event{Kind: client.EventHub, Text: "reconnected to the hub"}, "* reconnected to the hub\n"},
		{client.Event{Kind: client.EventFileSent, File: &client.FileStatus{Name: "f", Size: 2000, OK: true}}, "* sent f (2.0 KB), verified by the receiver\n"},
		{client.Event{Kind: client.EventFileReceived, File: &client.FileStatus{Name: "f", Err: "bad hash"}}, "* refused or failed f: bad hash\n"},
	} {
		b.Reset()
		if !p.Event(tc.ev) || b.String() != tc.want {
			t.Errorf("%v: %q, want %q", tc.ev.Kind, b.String(), tc.want)
		}
	}
	b.Reset()
	if p.Event(client.Event{Kind: client.EventChat, Text: "hi"}) || b.Len() != 0 {
		t.Errorf("a chat line is the command's to print: %q", b.String())
	}
}
