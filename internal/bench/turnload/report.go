package turnload

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"time"
)

// WriteTable prints r as `tryst bench turn` does.
func (r Result) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	r.table(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (r Result) table(w io.Writer) {
	secs := r.Duration.Seconds()
	loss := 0.0
	if r.Sent > 0 {
		loss = 100 * float64(r.Sent-r.Received) / float64(r.Sent)
	}
	rate := strconv.Itoa(r.Rate)
	if r.Rate == 0 {
		rate = "max (window " + strconv.Itoa(r.Window) + ")"
	}
	fmt.Fprintf(w, "server %s, %d allocations, %d-byte payloads, rate %s pps/allocation, %.1fs\n",
		r.Server, r.Allocations, r.Size, rate, secs)
	fmt.Fprintf(w, "allocations/s:     %.1f (%d in %v)\n", float64(r.Allocations)/r.AllocTime.Seconds(), r.Allocations, r.AllocTime.Round(time.Millisecond))
	fmt.Fprintf(w, "round trips/s:     %.0f\n", float64(r.Received)/secs)
	// Relayed payload through the server, both legs of every round trip.
	fmt.Fprintf(w, "relayed Mbit/s:    %.2f\n", float64(2*r.Received*int64(r.Size)*8)/secs/1e6)
	fmt.Fprintf(w, "loss:              %.3f%% (%d sent, %d echoed)\n", loss, r.Sent, r.Received)
	fmt.Fprintf(w, "RTT p50/p99:       %v / %v\n", r.RTTp50.Round(time.Microsecond), r.RTTp99.Round(time.Microsecond))
	if r.CPUMeasured {
		fmt.Fprintf(w, "server CPU:        %.2fs (%.0f%% of one core)\n", r.ServerCPU.Seconds(), 100*r.ServerCPU.Seconds()/secs)
		fmt.Fprintf(w, "packets/CPU-s:     %.0f (relayed packets per server CPU-second)\n", r.PacketsPerCPUSec)
	}
}
