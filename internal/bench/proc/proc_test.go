package proc_test

import (
	"os"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/internal/bench/proc"
)

func TestParseStatCPU(t *testing.T) {
	stat := "1234 (tryst serve (x)) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 100 0 0"
	got, err := proc.ParseStatCPU(stat)
	if err != nil || got != 3*time.Second {
		t.Fatalf("got %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0"} {
		if _, err := proc.ParseStatCPU(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add("1234 (tryst) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 100 0 0")
	f.Add("1 (a) b) R 0 0 0 0 0 0 0 0 0 0 18446744073709551615 1 0")
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := proc.ParseStatCPU(s); err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
	})
}

func TestCPUTime(t *testing.T) {
	if d, err := proc.CPUTime(0); d != 0 || err != nil {
		t.Errorf("CPUTime(0) = %v, %v; want nothing measured", d, err)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	if _, err := proc.CPUTime(os.Getpid()); err != nil {
		t.Errorf("CPUTime of this process: %v", err)
	}
}
