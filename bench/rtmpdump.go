package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RtmpdumpConfig describes a load of rtmpdump processes playing one live
// stream into /dev/null.
type RtmpdumpConfig struct {
	URL      string
	Players  int
	Ramp     float64       // processes started per second (0: all at once)
	Duration time.Duration // how long to measure after the last one started and received
	Interval time.Duration // sampling and progress interval (default 1 s)
	Settle   time.Duration // longest wait for every process to receive before the window (default 10 s)
	Progress io.Writer     // where progress lines go (nil: nowhere)
	Server   *ProcWatch    // server process to measure (nil: none)
	Bin      string        // rtmpdump binary (default "rtmpdump")
}

// ProcIO is the part of /proc/PID/io the load reads.
type ProcIO struct {
	RChar, WChar int64 // bytes passed to read(2)/write(2) and relatives
}

// ParseProcIO parses the text of /proc/PID/io.
func ParseProcIO(b []byte) (ProcIO, error) {
	var pio ProcIO
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "rchar":
			dst = &pio.RChar
		case "wchar":
			dst = &pio.WChar
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return ProcIO{}, fmt.Errorf("/proc io %s: %w", key, err)
		}
		*dst = n
		seen++
	}
	if seen < 2 {
		return ProcIO{}, fmt.Errorf("/proc io: rchar or wchar missing in %q", b)
	}
	return pio, nil
}

// ReadProcIO reads /proc/PID/io.
func ReadProcIO(pid int) (ProcIO, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ProcIO{}, err
	}
	return ParseProcIO(b)
}

// dumper is one rtmpdump process and the last output count read from it.
type dumper struct {
	proc  *Proc
	wchar int64 // last seen; kept when the process is gone
}

func (d *dumper) sample() {
	if pio, err := ReadProcIO(d.proc.Cmd.Process.Pid); err == nil && pio.WChar > d.wchar {
		d.wchar = pio.WChar
	}
}

// RtmpdumpLoad starts cfg.Players `rtmpdump --live -o /dev/null`
// processes, measures what they receive and what the server spends over
// cfg.Duration, and stops them all by PID.
//
// What a process received is its wchar in /proc/PID/io: rtmpdump writes
// every media message it receives to /dev/null as FLV (within 1% of the
// RTMP bytes: an FLV tag header instead of a chunk header). rchar does not
// do: librtmp reads with recv(2), which /proc/PID/io does not count. The
// progress output compares the sum with the server's wchar, which counts
// its writes to the sockets if it writes with write(2) or writev(2), as
// ours does (within 0.2% at 500 players); not send(2), as nginx-rtmp does.
// HarnessCores counts the rtmpdump processes (children of this one).
func RtmpdumpLoad(ctx context.Context, cfg RtmpdumpConfig) Result {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 10 * time.Second
	}
	if cfg.Bin == "" {
		cfg.Bin = "rtmpdump"
	}
	res := Result{URL: cfg.URL, Players: cfg.Players}
	if _, err := exec.LookPath(cfg.Bin); err != nil {
		res.Failed = cfg.Players
		res.Reasons = []string{fmt.Sprintf("%d× %v", cfg.Players, err)}
		return res
	}
	start := time.Now()
	var ds []*dumper
	defer func() { stopDumpers(ds) }()
	reasons := map[string]int{}
	fail := func(reason string) {
		res.Failed++
		reasons[reason]++
	}

	self := &ProcWatch{PID: os.Getpid()} // the harness and its rtmpdump children
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var gap time.Duration
	if cfg.Ramp > 0 {
		gap = time.Duration(float64(time.Second) / cfg.Ramp)
	}
	nextStart := start
	var lastTotal, total0 int64
	var usage0, self0 Usage
	var serverIO0 ProcIO
	var rampDone time.Time // when the last process started
	var windowStart, end time.Time
	var w0 []int64
	for {
		// Start the processes due by now (all at once without a ramp).
		for len(ds) < cfg.Players && !time.Now().Before(nextStart) && ctx.Err() == nil {
			p, err := StartProc(cfg.Bin, os.DevNull, "-r", cfg.URL, "--live", "-o", os.DevNull, "-q")
			if err != nil {
				fail(err.Error())
				ds = append(ds, nil)
			} else {
				ds = append(ds, &dumper{proc: p})
			}
			nextStart = nextStart.Add(gap)
			if len(ds) == cfg.Players {
				rampDone = time.Now()
			}
		}
		var startC <-chan time.Time // the next start is due
		if len(ds) < cfg.Players {
			startC = time.After(max(0, time.Until(nextStart)))
		}
		var now time.Time
		select {
		case <-ctx.Done():
			return res
		case <-startC:
			continue
		case now = <-tick.C:
		}

		s := Sample{T: now.Sub(start).Seconds()}
		var total int64
		for _, d := range ds {
			if d == nil {
				s.Failed++
				continue
			}
			d.sample()
			total += d.wchar
			switch {
			case d.proc.Exited():
				s.Failed++
			case d.wchar == 0:
				s.Connecting++
			default:
				s.Alive++
			}
		}
		s.Mbps = float64(total-lastTotal) * 8 / 1e6 / cfg.Interval.Seconds()
		lastTotal = total
		res.Samples = append(res.Samples, s)
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "%6.1fs rtmpdump alive=%d connecting=%d exited=%d %.1f Mbit/s\n",
				s.T, s.Alive, s.Connecting, s.Failed, s.Mbps)
		}
		if windowStart.IsZero() && !rampDone.IsZero() && (s.Connecting == 0 || now.Sub(rampDone) >= cfg.Settle) {
			windowStart, end, total0 = now, now.Add(cfg.Duration), total
			w0 = make([]int64, len(ds))
			for i, d := range ds {
				if d != nil {
					w0[i] = d.wchar
				}
			}
			self0 = self.Usage()
			if cfg.Server != nil {
				usage0 = cfg.Server.Usage()
				serverIO0, _ = ReadProcIO(cfg.Server.PID)
			}
		}
		if windowStart.IsZero() || now.Before(end) {
			continue
		}

		// The window is over.
		res.Seconds = now.Sub(windowStart).Seconds()
		res.Bytes = total - total0
		res.HarnessCores = (self.Usage().CPUSeconds - self0.CPUSeconds) / res.Seconds
		for i, d := range ds {
			if d == nil {
				continue
			}
			if d.wchar > w0[i] {
				res.Received++
			}
			if d.proc.Exited() {
				fail(d.proc.Cmd.ProcessState.String())
			}
		}
		if cfg.Server != nil {
			u := cfg.Server.Usage()
			u.CPUSeconds -= usage0.CPUSeconds
			res.Server = &u
			if res.Bytes > 0 {
				res.CPUPerGB = u.CPUSeconds / (float64(res.Bytes) / 1e9)
			}
			if sio, err := ReadProcIO(cfg.Server.PID); err == nil && cfg.Progress != nil {
				switch wrote := sio.WChar - serverIO0.WChar; {
				case wrote < res.Bytes/100:
					// nginx-rtmp sends with send(2), which wchar does not count.
					fmt.Fprintf(cfg.Progress, "check: rtmpdump processes wrote %.1f MB of FLV; the server's wchar grew by %.1f MB only: it writes with send(2)?\n",
						float64(res.Bytes)/1e6, float64(wrote)/1e6)
				default:
					fmt.Fprintf(cfg.Progress, "check: rtmpdump processes wrote %.1f MB of FLV, the server wrote %.1f MB (ratio %.3f)\n",
						float64(res.Bytes)/1e6, float64(wrote)/1e6, float64(res.Bytes)/float64(wrote))
				}
			}
		}
		for _, r := range sortedKeys(reasons) {
			res.Reasons = append(res.Reasons, fmt.Sprintf("%d× rtmpdump %s", reasons[r], r))
		}
		if res.Seconds > 0 {
			res.Mbps = float64(res.Bytes) * 8 / 1e6 / res.Seconds
			if res.Players > 0 {
				res.PerPlayer = res.Mbps / float64(res.Players)
			}
		}
		return res
	}
}

// stopDumpers sends SIGTERM to every process still running, then SIGKILL
// to those left after 3 s, and waits at most 2 s more.
func stopDumpers(ds []*dumper) {
	var live []*Proc
	for _, d := range ds {
		if d != nil && !d.proc.Exited() {
			_ = d.proc.Cmd.Process.Signal(syscall.SIGTERM)
			live = append(live, d.proc)
		}
	}
	for _, grace := range []time.Duration{3 * time.Second, 2 * time.Second} {
		deadline := time.Now().Add(grace)
		for _, p := range live {
			select {
			case <-p.done:
			case <-time.After(time.Until(deadline)):
			}
		}
		var left []*Proc
		for _, p := range live {
			if !p.Exited() {
				_ = p.Cmd.Process.Kill()
				left = append(left, p)
			}
		}
		live = left
	}
}
