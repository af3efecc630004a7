// Package proc places and measures the processes of a benchmark: the CPUs
// this process may use, pinning it to some of them, starting a child on
// others, a child that dies with its parent, and another process's CPU
// time from /proc.
//
// CPU placement and the parent-death signal are Linux only; elsewhere the
// placement functions fail with errors.ErrUnsupported (a benchmark then
// runs unpinned) and DieWithParent does nothing.
package proc

import (
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is
// 100 on every mainstream Linux configuration.
const clockTicks = 100

// CPUTime returns the user+system CPU time of pid from /proc/PID/stat,
// zero when pid is 0.
func CPUTime(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err // it names the file
	}
	return ParseStatCPU(string(b))
}

// ParseStatCPU returns the user+system CPU time in a /proc/PID/stat line.
func ParseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is parenthesised and may contain spaces.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || utime > math.MaxInt64/2 || stime > math.MaxInt64/2 {
		return 0, errors.New("malformed CPU times in /proc stat")
	}
	ticks := utime + stime
	if ticks > uint64(math.MaxInt64/int64(time.Second/clockTicks)) {
		return 0, errors.New("CPU time out of range in /proc stat")
	}
	return time.Duration(ticks) * (time.Second / clockTicks), nil
}
