package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StallConfig describes a stall load: players that play a stream through a
// tiny receive buffer and never read again, while canary players watch the
// same stream, and the server process is sampled through /proc.
type StallConfig struct {
	URL         string
	Players     int           // stalled players
	Ramp        float64       // stalled players started per second (0: all at once)
	Duration    time.Duration // observation window after the last stalled player started
	ReadBuffer  int           // SO_RCVBUF of the stalled players (default 4096)
	DialTimeout time.Duration // bound of connect and of play each (default 5 s)
	Canaries    int           // ordinary players of the stream meanwhile
	// Slack is how many fds over baseline + canaries still count as "every
	// stalled player disconnected" (default 5).
	Slack    int
	Every    time.Duration // sampling interval (default 250 ms)
	Tail     time.Duration // the canaries must receive video in the window's last Tail (default 2 s)
	Interval time.Duration // progress interval (default 1 s)
	Progress io.Writer     // where progress lines go (nil: nowhere)
	// Server is the process to sample (its PID only; required). Its
	// listening port is taken from URL.
	Server *ProcWatch
}

// StallSample is one sample of the server process.
type StallSample struct {
	T     float64 `json:"t"`      // seconds since the last stalled player started (negative: before)
	FDs   int     `json:"fds"`    // open fds
	Held  int     `json:"held"`   // of those, TCP connections on the listening port (players held)
	RSSMB float64 `json:"rss_mb"` // VmRSS
	HWMMB float64 `json:"hwm_mb"` // VmHWM
	// TCPMemMB is the host's TCP buffer memory (/proc/net/sockstat "TCP:
	// mem"): what the kernel holds for the server's unsent data, which its
	// RSS does not show (other sockets of the host count too). Orphans are
	// TCP sockets closed by their process and still held by the kernel,
	// such as a stalled player the server let go with data unsent.
	TCPMemMB float64 `json:"host_tcp_mem_mb"`
	Orphans  int     `json:"host_tcp_orphans"`
}

// StallResult is what a stall run measured.
type StallResult struct {
	Name       string         `json:"name"`
	URL        string         `json:"url"`
	Players    int            `json:"players"`
	Admitted   int            `json:"admitted"` // stalled players whose play was accepted
	Errors     map[string]int `json:"errors,omitempty"`
	Examples   []string       `json:"error_examples,omitempty"`
	RampSecs   float64        `json:"ramp_seconds"`
	WindowSecs float64        `json:"window_seconds"` // observed after the last stalled player started

	// Baseline is the server's fd count before the canaries and stalled
	// players; BaselineCanaries with the canaries playing. Threshold is
	// Baseline + canaries + slack: at or under it every stalled player is
	// taken as disconnected.
	Baseline         int     `json:"baseline_fds"`
	BaselineCanaries int     `json:"baseline_fds_with_canaries"`
	Threshold        int     `json:"threshold_fds"`
	PeakFDs          int     `json:"peak_fds"`
	EndFDs           int     `json:"end_fds"`
	EndHeld          int     `json:"end_held_sockets"`
	StillConnected   int     `json:"stalled_still_connected"` // at the window's end, from the fd count
	AllGone          bool    `json:"all_disconnected"`        // the fd count came down to Threshold in the window
	AllGoneAfter     float64 `json:"all_disconnected_after_s,omitempty"`
	PeakRSSMB        float64 `json:"peak_rss_mb"` // VmHWM at the end (or when last seen)
	MaxRSSMB         float64 `json:"max_sampled_rss_mb"`
	EndRSSMB         float64 `json:"end_rss_mb"`
	PeakTCPMemMB     float64 `json:"peak_host_tcp_mem_mb"`
	EndTCPMemMB      float64 `json:"end_host_tcp_mem_mb"`
	EndOrphans       int     `json:"end_host_tcp_orphans"`
	CPUSeconds       float64 `json:"cpu_seconds"` // from the first stalled player to the window's end
	CPUCores         float64 `json:"cpu_cores"`   // CPUSeconds over that span

	Canaries       int      `json:"canaries"`
	CanaryPlaying  int      `json:"canary_playing"`   // still playing at the end
	CanaryReceived int      `json:"canary_receiving"` // got video in the window's last Tail
	CanaryMaxGapMs float64  `json:"canary_max_gap_ms"`
	CanaryStalls   int64    `json:"canary_stalls"`
	CanaryReasons  []string `json:"canary_failure_reasons,omitempty"`

	ServerAlive bool          `json:"server_alive"`
	DiedAt      float64       `json:"server_died_at_s,omitempty"`
	Samples     []StallSample `json:"samples"`
}

func (cfg *StallConfig) defaults() {
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = 4096
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Slack <= 0 {
		cfg.Slack = 5
	}
	if cfg.Every <= 0 {
		cfg.Every = 250 * time.Millisecond
	}
	if cfg.Tail <= 0 {
		cfg.Tail = 2 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
}

// stallSample is a sample taken at a wall-clock time; T is filled in once
// the last stalled player started.
type stallSample struct {
	at time.Time
	StallSample
}

// StallLoad measures a server's handling of players that stop reading: it
// takes the server's baseline fd count, starts cfg.Canaries ordinary
// players, then cfg.Players stalled ones (play through a tiny receive
// buffer, never read), watches for cfg.Duration after the last one
// started, and closes them all. Everything is bounded in time; it ends
// early when the server is gone or ctx is done.
func StallLoad(ctx context.Context, cfg StallConfig) (StallResult, error) {
	cfg.defaults()
	res := StallResult{URL: cfg.URL, Players: cfg.Players, Canaries: cfg.Canaries, ServerAlive: true}
	addr, _, _, _, err := URL(cfg.URL)
	if err != nil {
		return res, fmt.Errorf("stall: %w", err)
	}
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return res, fmt.Errorf("stall: %w", err)
	}
	port, _ := strconv.Atoi(portStr)
	if cfg.Server == nil {
		return res, errors.New("stall: no server process to watch")
	}
	if cfg.Players < 0 || cfg.Canaries < 0 {
		return res, errors.New("stall: negative player count")
	}
	if !cfg.Server.Alive() {
		return res, fmt.Errorf("stall: server process %d is not running", cfg.Server.PID)
	}
	rampDur := time.Duration(0)
	if cfg.Ramp > 0 {
		rampDur = time.Duration(float64(cfg.Players) / cfg.Ramp * float64(time.Second))
	}
	// Bound of the whole run: baseline, canaries, ramp, window, slack.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second+rampDur+cfg.Duration+2*cfg.DialTimeout+15*time.Second)
	defer cancel()

	var samples []stallSample
	take := func() bool {
		s, ok := sampleStall(cfg.Server.PID, port)
		if !ok || !cfg.Server.Alive() {
			return false
		}
		samples = append(samples, stallSample{at: time.Now(), StallSample: s})
		return true
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}

	// Baseline: the lowest fd count over a second, before anything of ours.
	base := -1
	for range 5 {
		if !take() {
			res.ServerAlive = false
			return res, fmt.Errorf("stall: server process %d is gone before the load", cfg.Server.PID)
		}
		base = minBaseline(base, samples[len(samples)-1].FDs)
		if !sleep(cfg.Every) {
			return res, ctx.Err()
		}
	}
	res.Baseline = base
	res.Threshold = base + cfg.Canaries + cfg.Slack

	// Canaries play from before the stalled players to the end.
	var cwg sync.WaitGroup
	defer cwg.Wait() // after stopCanaries (deferred calls run last first)
	cctx, stopCanaries := context.WithCancel(ctx)
	defer stopCanaries()
	canaries := make([]*Player, cfg.Canaries)
	for i := range canaries {
		p := &Player{URL: cfg.URL}
		canaries[i] = p
		cwg.Add(1)
		go func() { defer cwg.Done(); p.Run(cctx) }()
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if countKeyed(canaries)+countState(canaries, StateFailed) == len(canaries) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sleep(500*time.Millisecond) || !take() {
		res.ServerAlive = cfg.Server.Alive()
		return res, fmt.Errorf("stall: before the stalled players: server alive %v: %w", res.ServerAlive, ctx.Err())
	}
	res.BaselineCanaries = samples[len(samples)-1].FDs
	stalls0 := make([]int64, len(canaries))
	for i, p := range canaries {
		p.MaxGap.Store(0) // the figures cover the stall only
		stalls0[i] = p.Stalls.Load()
	}

	// The stalled players.
	usage0 := cfg.Server.Usage()
	rampStart := time.Now()
	tally := &churnTally{errors: map[string]int{}, examples: map[string]string{}}
	var (
		mu    sync.Mutex
		conns []*Client
		dwg   sync.WaitGroup
	)
	rctx, stopRamp := context.WithCancel(ctx)
	defer stopRamp()
	lastStarted := make(chan time.Time, 1)
	go func() {
		var last time.Time
		defer func() { lastStarted <- last }()
		for i := range cfg.Players {
			if cfg.Ramp > 0 {
				if d := time.Until(rampStart.Add(time.Duration(float64(i) / cfg.Ramp * float64(time.Second)))); d > 0 {
					select {
					case <-rctx.Done():
						return
					case <-time.After(d):
					}
				}
			}
			if rctx.Err() != nil {
				return
			}
			last = time.Now()
			tally.attempted.Add(1)
			dwg.Add(1)
			go func() {
				defer dwg.Done()
				c, err := stallPlayer(cfg)
				if err != nil {
					tally.fail(err)
					return
				}
				tally.done.Add(1)
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}()
		}
	}()

	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	progress := time.NewTicker(cfg.Interval)
	defer progress.Stop()
	var tLast, end, tailAt, died time.Time
	ramping := true
	var video0 []int64
	for running := true; running; {
		var now time.Time
		select {
		case <-ctx.Done():
			running = false
			continue
		case tLast = <-lastStarted:
			ramping = false
			if tLast.IsZero() {
				tLast = time.Now()
			}
			end = tLast.Add(cfg.Duration)
			tailAt = end.Add(-min(cfg.Tail, cfg.Duration/2))
			continue
		case now = <-tick.C:
		case now = <-progress.C:
			if cfg.Progress != nil && len(samples) > 0 {
				s := samples[len(samples)-1]
				when := fmt.Sprintf("ramp %5.1fs", now.Sub(rampStart).Seconds())
				if !tLast.IsZero() {
					when = fmt.Sprintf("%10.1fs", now.Sub(tLast).Seconds())
				}
				fmt.Fprintf(cfg.Progress, "%s fds=%d (base %d) held=%d rss=%.1fMB hwm=%.1fMB host tcp mem=%.0fMB orphans=%d stalled admitted=%d/%d errors=%d canaries playing=%d/%d max gap=%.0fms\n",
					when, s.FDs, res.Baseline, s.Held, s.RSSMB, s.HWMMB, s.TCPMemMB, s.Orphans, tally.done.Load(), tally.attempted.Load(), tally.errorCount(),
					countState(canaries, StatePlaying), len(canaries), maxGapMs(canaries))
			}
			continue
		}
		if !take() {
			res.ServerAlive, died = false, now
			break
		}
		if !ramping && video0 == nil && !now.Before(tailAt) {
			video0 = videoCounts(canaries)
		}
		if !ramping && !now.Before(end) {
			running = false
		}
	}
	stopRamp()
	if ramping {
		tLast = <-lastStarted
		if tLast.IsZero() {
			tLast = time.Now()
		}
	}
	res.RampSecs = tLast.Sub(rampStart).Seconds()
	res.WindowSecs = time.Since(tLast).Seconds()
	if res.ServerAlive && !cfg.Server.Alive() {
		res.ServerAlive, died = false, time.Now()
	}
	if !res.ServerAlive {
		res.DiedAt = died.Sub(tLast).Seconds()
	}
	if res.ServerAlive {
		u := cfg.Server.Usage()
		res.CPUSeconds = u.CPUSeconds - usage0.CPUSeconds
		if span := time.Since(rampStart).Seconds(); span > 0 {
			res.CPUCores = res.CPUSeconds / span
		}
	}

	// The canaries' figures, before the stalled players go.
	res.CanaryPlaying = countState(canaries, StatePlaying)
	if video0 != nil {
		for i, v := range videoCounts(canaries) {
			if v > video0[i] && canaries[i].State.Load() == StatePlaying {
				res.CanaryReceived++
			}
		}
	}
	res.CanaryMaxGapMs = maxGapMs(canaries)
	reasons := map[string]int{}
	for i, p := range canaries {
		res.CanaryStalls += p.Stalls.Load() - stalls0[i]
		if p.State.Load() == StateFailed {
			if s := p.Reason.Load(); s != nil {
				reasons[*s]++
			}
		}
	}
	for _, r := range sortedKeys(reasons) {
		res.CanaryReasons = append(res.CanaryReasons, fmt.Sprintf("%d× %s", reasons[r], r))
	}
	stopCanaries()

	// Close the stalled players (dials still in flight end within their
	// timeouts).
	dwg.Wait()
	for _, c := range conns {
		c.Close()
	}
	cwg.Wait()

	res.Admitted = int(tally.done.Load())
	if len(tally.errors) > 0 {
		res.Errors = tally.errors
		for _, k := range sortedKeys(tally.examples) {
			res.Examples = append(res.Examples, k+": "+tally.examples[k])
		}
	}
	for _, s := range samples {
		s.T = s.at.Sub(tLast).Seconds()
		res.Samples = append(res.Samples, s.StallSample)
	}
	summarizeStall(&res)
	return res, nil
}

// summarizeStall derives the figures of res from its samples, baselines
// and threshold.
func summarizeStall(res *StallResult) {
	for _, s := range res.Samples {
		res.PeakFDs = max(res.PeakFDs, s.FDs)
		res.MaxRSSMB = max(res.MaxRSSMB, s.RSSMB)
		res.PeakRSSMB = max(res.PeakRSSMB, s.HWMMB)
		res.PeakTCPMemMB = max(res.PeakTCPMemMB, s.TCPMemMB)
	}
	if n := len(res.Samples); n > 0 {
		last := res.Samples[n-1]
		res.EndFDs, res.EndHeld, res.EndRSSMB = last.FDs, last.Held, last.RSSMB
		res.EndTCPMemMB, res.EndOrphans = last.TCPMemMB, last.Orphans
		res.StillConnected = stillConnected(last.FDs, res.BaselineCanaries, res.Admitted)
	}
	res.AllGoneAfter, res.AllGone = disconnectedAfter(res.Samples, res.Threshold)
}

// disconnectedAfter returns the time of the first sample at or after the
// last stalled player started (T >= 0) whose fd count is at or under
// threshold, and whether there is one.
func disconnectedAfter(samples []StallSample, threshold int) (float64, bool) {
	for _, s := range samples {
		if s.T >= 0 && s.FDs <= threshold {
			return s.T, true
		}
	}
	return 0, false
}

// stillConnected is how many stalled players the server still holds: the
// fds over the baseline with the canaries, at most the admitted players.
func stillConnected(fds, baseline, admitted int) int {
	return min(max(0, fds-baseline), admitted)
}

// minBaseline is the lower of the baseline so far (-1: none) and v.
func minBaseline(base, v int) int {
	if base < 0 {
		return v
	}
	return min(base, v)
}

// stallPlayer connects through a tiny receive buffer, plays and returns the
// connection, which is never read again.
func stallPlayer(cfg StallConfig) (*Client, error) {
	c, err := Dialer{Timeout: cfg.DialTimeout, ReadBuffer: cfg.ReadBuffer}.Dial(cfg.URL)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(cfg.DialTimeout))
	if err := c.Play(); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func videoCounts(ps []*Player) []int64 {
	v := make([]int64, len(ps))
	for i, p := range ps {
		v[i] = p.Video.Load()
	}
	return v
}

// sampleStall reads pid's fd count, its sockets on local port, VmRSS and
// VmHWM; false when the process is gone.
func sampleStall(pid, port int) (StallSample, bool) {
	var s StallSample
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	f, err := os.Open(dir)
	if err != nil {
		return s, false
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return s, false
	}
	s.FDs = len(names)
	inodes := map[string]bool{}
	for _, n := range names {
		if l, err := os.Readlink(dir + "/" + n); err == nil {
			if ino, ok := strings.CutPrefix(l, "socket:["); ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
	}
	for _, file := range []string{"tcp", "tcp6"} {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file)); err == nil {
			s.Held += countLocalPort(b, inodes, port)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, false
	}
	s.RSSMB = float64(statusField(b, "VmRSS:")) / 1024
	s.HWMMB = float64(statusField(b, "VmHWM:")) / 1024
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/sockstat", pid)); err == nil {
		pages, orphans := sockstatTCP(b)
		s.TCPMemMB = float64(pages) * float64(os.Getpagesize()) / (1 << 20)
		s.Orphans = orphans
	}
	return s, true
}

// sockstatTCP returns the "mem" (pages) and "orphan" counts of the TCP
// line of a /proc/net/sockstat text.
func sockstatTCP(b []byte) (pages, orphans int) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			n, _ := strconv.Atoi(f[i+1])
			switch f[i] {
			case "mem":
				pages = n
			case "orphan":
				orphans = n
			}
		}
	}
	return pages, orphans
}

// countLocalPort counts the connections (not listeners) of a
// /proc/net/tcp table on local port whose inode is in inodes.
func countLocalPort(table []byte, inodes map[string]bool, port int) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] == "0A" || !inodes[f[9]] { // 0A: LISTEN
			continue
		}
		loc := f[1]
		j := strings.LastIndexByte(loc, ':')
		if p, err := strconv.ParseInt(loc[j+1:], 16, 32); err == nil && int(p) == port {
			n++
		}
	}
	return n
}

// StallRow is a result's row of the stall table (see StallHeader).
func StallRow(r StallResult) []string {
	gone := "not within the window"
	if r.AllGone {
		gone = fmt.Sprintf("%.1f s", r.AllGoneAfter)
	}
	alive := "yes"
	if !r.ServerAlive {
		alive = fmt.Sprintf("NO (gone at %.1f s)", r.DiedAt)
	}
	return []string{r.Name,
		fmt.Sprintf("%d/%d", r.Admitted, r.Players),
		fmt.Sprintf("%.1f", r.PeakRSSMB),
		fmt.Sprintf("%.1f", r.EndRSSMB),
		fmt.Sprintf("%.0f / %.0f", r.PeakTCPMemMB, r.EndTCPMemMB),
		fmt.Sprintf("%d → %d → %d", r.BaselineCanaries, r.PeakFDs, r.EndFDs),
		fmt.Sprint(r.StillConnected),
		gone,
		fmt.Sprintf("%.0f", r.CanaryMaxGapMs),
		fmt.Sprint(r.CanaryStalls),
		fmt.Sprintf("%d/%d", r.CanaryReceived, r.Canaries),
		fmt.Sprintf("%.2f", r.CPUSeconds),
		alive,
	}
}

// StallHeader is the header of the stall table.
var StallHeader = []string{"set-up", "stalled admitted", "peak RSS MB", "RSS at end MB", "host TCP mem peak / end MB", "fds base → peak → end",
	"stalled still connected at end", "all stalled disconnected after", "canary longest gap ms", "canary stalls",
	"canaries still receiving", "edge CPU-s", "edge alive"}

// WriteStall prints a stall result for people.
func WriteStall(w io.Writer, r StallResult) {
	fmt.Fprintf(w, "stall %s: %d of %d stalled players admitted (ramp %.1fs, window %.1fs)\n", r.Name, r.Admitted, r.Players, r.RampSecs, r.WindowSecs)
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(w, "  errors %-40s %d\n", k, r.Errors[k])
	}
	for _, e := range r.Examples {
		fmt.Fprintf(w, "  e.g. %s\n", e)
	}
	gone := "not within the window"
	if r.AllGone {
		gone = fmt.Sprintf("after %.1f s", r.AllGoneAfter)
	}
	fmt.Fprintf(w, "  fds: baseline %d (with canaries %d), peak %d, end %d (held sockets %d); all stalled players disconnected %s; still connected at the end %d\n",
		r.Baseline, r.BaselineCanaries, r.PeakFDs, r.EndFDs, r.EndHeld, gone, r.StillConnected)
	fmt.Fprintf(w, "  memory: peak RSS %.1f MB (max sampled %.1f), at the end %.1f MB; host TCP buffers peak %.0f MB, at the end %.0f MB (%d orphan sockets); CPU %.2f s (%.2f cores); alive %v\n",
		r.PeakRSSMB, r.MaxRSSMB, r.EndRSSMB, r.PeakTCPMemMB, r.EndTCPMemMB, r.EndOrphans, r.CPUSeconds, r.CPUCores, r.ServerAlive)
	if r.Canaries > 0 {
		fmt.Fprintf(w, "  canaries: %d, playing at the end %d, receiving in the last seconds %d, longest gap %.0f ms, stalls %d\n",
			r.Canaries, r.CanaryPlaying, r.CanaryReceived, r.CanaryMaxGapMs, r.CanaryStalls)
		for _, s := range r.CanaryReasons {
			fmt.Fprintf(w, "  canary: %s\n", s)
		}
	}
}
