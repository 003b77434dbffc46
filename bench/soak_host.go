package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// hostMeter tells the soak's own CPU from the rest of the machine's: a
// stall that comes with other processes taking the cores is the
// machine's, not the server's.
type hostMeter struct {
	at                    time.Time
	busy, niced, soakTree float64 // CPU seconds so far
}

// hostCPU returns the host's CPU seconds so far, busy at nice 0 or below
// and busy niced, from the first line of /proc/stat.
func hostCPU() (busy, niced float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]float64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[i+1], 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	return (v[0] + v[2] + v[5] + v[6] + v[7]) / clockTicks, v[1] / clockTicks, nil
}

// soakTreeCPU is the CPU seconds of this process and all its descendants,
// the living ones and those it has reaped (cutime + cstime).
func soakTreeCPU() float64 {
	self := os.Getpid()
	cpu := (&ProcWatch{PID: self}).Usage().CPUSeconds
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", self)); err == nil {
		if f := statFields(b); len(f) > 14 {
			cu, _ := strconv.ParseFloat(f[13], 64)
			cs, _ := strconv.ParseFloat(f[14], 64)
			cpu += (cu + cs) / clockTicks
		}
	}
	return cpu
}

// sample returns, since the previous call, the cores other processes kept
// busy at nice 0 or below, and niced (the first call returns zeros).
func (h *hostMeter) sample(now time.Time) (others, niced float64) {
	busy, nc, err := hostCPU()
	if err != nil {
		return 0, 0
	}
	tree := soakTreeCPU()
	if !h.at.IsZero() {
		if dt := now.Sub(h.at).Seconds(); dt > 0 {
			others = max(0, (busy-h.busy)-(tree-h.soakTree)) / dt
			niced = (nc - h.niced) / dt
		}
	}
	h.at, h.busy, h.niced, h.soakTree = now, busy, nc, tree
	return others, niced
}

// loadAvg1 is the host's 1-minute load average.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Split(bufio.ScanWords)
	if !sc.Scan() {
		return 0
	}
	v, _ := strconv.ParseFloat(sc.Text(), 64)
	return v
}
