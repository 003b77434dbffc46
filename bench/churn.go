package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rtmpedge/rtmpedge/chunk"
)

// ChurnConfig describes a churn load: connections that play a stream for a
// moment and leave with a TCP reset, over and over, while canary players
// watch the same stream.
type ChurnConfig struct {
	URL          string
	Cycles       int           // connect/play/reset cycles to run in all
	Concurrency  int           // cycles in flight at once (default 50)
	ReadMessages int           // cycle n reads 1 + n%ReadMessages messages after play, then resets (default 8)
	ReadBytes    int           // or payload bytes, whichever comes first (default 64 KiB)
	ReadTimeout  time.Duration // bound of the read phase (default 1 s)
	DialTimeout  time.Duration // bound of connect and of play each (default 5 s)
	Canaries     int           // ordinary players of the stream during the churn
	After        time.Duration // how long the canaries are watched after the churn (default 2 s)
	Timeout      time.Duration // bound of the whole run (default 3 min)
	Interval     time.Duration // progress interval (default 1 s)
	Progress     io.Writer     // where progress lines go (nil: nowhere)
	Server       *ProcWatch    // server process: liveness and usage (nil: none)
}

// ChurnResult is what a churn run measured.
type ChurnResult struct {
	URL       string         `json:"url"`
	Attempted int            `json:"attempted"` // cycles begun
	Cycles    int            `json:"cycles"`    // cycles that played and reset
	NoMedia   int            `json:"no_media"`  // of those, cycles that got no media before the reset
	Errors    map[string]int `json:"errors,omitempty"`
	Examples  []string       `json:"error_examples,omitempty"` // one message per error kind
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"cycles_per_second"`
	TimedOut  bool           `json:"timed_out"`

	Canaries         int      `json:"canaries"`
	CanaryPlaying    int      `json:"canary_playing"` // still playing at the end
	CanaryFailed     int      `json:"canary_failed"`
	CanaryReasons    []string `json:"canary_failure_reasons,omitempty"`
	CanaryMaxGapMs   float64  `json:"canary_max_gap_ms"`
	CanaryStalls     int64    `json:"canary_stalls"`
	CanaryBytes      int64    `json:"canary_bytes"`
	CanaryBytesAfter int64    `json:"canary_bytes_after"` // received in the After window
	CanaryVideoAfter int64    `json:"canary_video_after"` // video messages received in the After window

	ServerWatched bool   `json:"server_watched"`
	ServerAlive   bool   `json:"server_alive"`
	DiedAfter     int    `json:"server_died_after_cycles,omitempty"` // cycles done when it was first seen gone
	Server        *Usage `json:"server,omitempty"`                   // CPU over the run, peak RSS (last seen)
}

// Abort closes the connection with a TCP reset (SO_LINGER 0) rather than
// a FIN: the server's next write to it fails.
func (c *Client) Abort() error {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			c.conn.Close()
			return fmt.Errorf("abort: set linger: %w", err)
		}
	}
	return c.conn.Close()
}

// Alive reports whether the watched process still runs (a zombie does not).
func (w *ProcWatch) Alive() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.PID))
	return err == nil && statAlive(b)
}

// statAlive reads the state field of /proc/PID/stat.
func statAlive(b []byte) bool {
	f := statFields(b)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X" && f[0] != "x"
}

func (cfg *ChurnConfig) defaults() {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 50
	}
	if cfg.ReadMessages <= 0 {
		cfg.ReadMessages = 8
	}
	if cfg.ReadBytes <= 0 {
		cfg.ReadBytes = 64 << 10
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.After <= 0 {
		cfg.After = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
}

// churnTally counts the outcomes of the cycles.
type churnTally struct {
	attempted, done, noMedia atomic.Int64
	mu                       sync.Mutex
	errors                   map[string]int
	examples                 map[string]string
}

func (t *churnTally) fail(err error) {
	kind := churnErrorKind(err)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errors[kind]++
	if _, ok := t.examples[kind]; !ok {
		t.examples[kind] = err.Error()
	}
}

func (t *churnTally) errorCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, v := range t.errors {
		n += v
	}
	return n
}

// Churn runs cfg.Cycles connect/play/read/reset cycles, cfg.Concurrency at
// a time, with cfg.Canaries ordinary players watching, and stops early
// when the watched server is gone, ctx is done or cfg.Timeout passes.
func Churn(ctx context.Context, cfg ChurnConfig) (ChurnResult, error) {
	cfg.defaults()
	res := ChurnResult{URL: cfg.URL, Canaries: cfg.Canaries, ServerWatched: cfg.Server != nil}
	if _, _, _, _, err := URL(cfg.URL); err != nil {
		return res, fmt.Errorf("churn: %w", err)
	}
	if cfg.Cycles <= 0 {
		return res, errors.New("churn: no cycles asked for")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	// The canaries play before the churn starts and until the end.
	cctx, stopCanaries := context.WithCancel(ctx)
	defer stopCanaries()
	canaries := make([]*Player, cfg.Canaries)
	var cwg sync.WaitGroup
	for i := range canaries {
		p := &Player{URL: cfg.URL}
		canaries[i] = p
		cwg.Add(1)
		go func() { defer cwg.Done(); p.Run(cctx) }()
	}
	defer cwg.Wait()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if countKeyed(canaries)+countState(canaries, StateFailed) == len(canaries) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	var usage0, last Usage
	if cfg.Server != nil {
		usage0 = cfg.Server.Usage()
		last = usage0
	}
	tally := &churnTally{errors: map[string]int{}, examples: map[string]string{}}
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := next.Add(1); wctx.Err() == nil && n <= int64(cfg.Cycles); n = next.Add(1) {
				tally.attempted.Add(1)
				media, err := churnCycle(wctx, cfg, 1+int(n%int64(cfg.ReadMessages)))
				switch {
				case err != nil && wctx.Err() != nil:
					// Cut short by the end of the run: not the server's doing.
				case err != nil:
					tally.fail(err)
					if cfg.Server != nil && errors.Is(err, syscall.ECONNREFUSED) && !cfg.Server.Alive() {
						stopWorkers() // gone: every further cycle would only count refusals
					}
				default:
					tally.done.Add(1)
					if !media {
						tally.noMedia.Add(1)
					}
				}
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	alive := time.NewTicker(100 * time.Millisecond)
	defer alive.Stop()
	progress := time.NewTicker(cfg.Interval)
	defer progress.Stop()
	usage := time.NewTicker(250 * time.Millisecond) // the server's peak RSS, while it lives
	defer usage.Stop()
	res.ServerAlive = true
	// check notes the server's end, or samples its usage while it lives.
	check := func() {
		switch {
		case cfg.Server == nil || !res.ServerAlive:
		case !cfg.Server.Alive():
			res.ServerAlive = false
			res.DiedAfter = int(tally.done.Load())
			stopWorkers() // every further cycle would only count refusals
		default:
			last = sample(cfg.Server, last)
		}
	}
	running := true
	for running {
		select {
		case <-workersDone:
			running = false
		case <-alive.C:
			if cfg.Server != nil && res.ServerAlive && !cfg.Server.Alive() {
				check()
			}
		case <-usage.C:
			check()
		case now := <-progress.C:
			if cfg.Progress != nil {
				el := now.Sub(start).Seconds()
				fmt.Fprintf(cfg.Progress, "%6.1fs cycles=%d (%.0f/s) errors=%d canaries playing=%d/%d max gap=%.0fms server alive=%v rss=%.1fMB\n",
					el, tally.done.Load(), float64(tally.done.Load())/el, tally.errorCount(),
					countState(canaries, StatePlaying), len(canaries), maxGapMs(canaries), res.ServerAlive, last.PeakRSSMB)
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.TimedOut = ctx.Err() != nil
	check()

	// Do the canaries still receive media now the churn is over?
	if len(canaries) > 0 && res.ServerAlive && ctx.Err() == nil {
		bytes0, video0 := sumBytes(canaries), sumVideo(canaries)
		select {
		case <-ctx.Done():
		case <-time.After(cfg.After):
		}
		res.CanaryBytesAfter = sumBytes(canaries) - bytes0
		res.CanaryVideoAfter = sumVideo(canaries) - video0
	}
	res.CanaryPlaying = countState(canaries, StatePlaying)
	stopCanaries()
	cwg.Wait()
	check()

	res.Attempted = int(tally.attempted.Load())
	res.Cycles = int(tally.done.Load())
	res.NoMedia = int(tally.noMedia.Load())
	if len(tally.errors) > 0 {
		res.Errors = tally.errors
		for _, k := range sortedKeys(tally.examples) {
			res.Examples = append(res.Examples, k+": "+tally.examples[k])
		}
	}
	if res.Seconds > 0 {
		res.PerSecond = float64(res.Cycles) / res.Seconds
	}
	reasons := map[string]int{}
	for _, p := range canaries {
		if p.State.Load() == StateFailed {
			res.CanaryFailed++
			if s := p.Reason.Load(); s != nil {
				reasons[*s]++
			}
		}
		res.CanaryStalls += p.Stalls.Load()
		res.CanaryBytes += p.Bytes.Load()
	}
	res.CanaryMaxGapMs = maxGapMs(canaries)
	for _, r := range sortedKeys(reasons) {
		res.CanaryReasons = append(res.CanaryReasons, fmt.Sprintf("%d× %s", reasons[r], r))
	}
	if cfg.Server != nil {
		u := last
		u.CPUSeconds -= usage0.CPUSeconds
		res.Server = &u
	}
	return res, nil
}

// churnCycle connects, plays, reads up to msgs messages and resets the
// connection. It reports whether media arrived before the reset.
func churnCycle(ctx context.Context, cfg ChurnConfig, msgs int) (bool, error) {
	c, err := Dialer{Timeout: cfg.DialTimeout}.Dial(cfg.URL)
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(cfg.DialTimeout))
	if err := c.Play(); err != nil {
		c.Close()
		return false, err
	}
	_ = c.SetDeadline(time.Now().Add(cfg.ReadTimeout))
	media, read, bytes := false, 0, 0
	for read < msgs && bytes < cfg.ReadBytes {
		msg, err := c.ReadMessage()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // read long enough
			}
			c.Close()
			return media, fmt.Errorf("read: %w", err)
		}
		read++
		bytes += len(msg.Payload)
		media = media || msg.TypeID == chunk.TypeAudio || msg.TypeID == chunk.TypeVideo
	}
	if err := c.Abort(); err != nil {
		return media, err
	}
	return media, nil
}

// churnErrorKind names the stage a cycle failed in and the cause, such as
// "dial: refused" or "play: NetStream.Play.StreamNotFound".
func churnErrorKind(err error) string {
	msg := err.Error()
	stage := "other"
	for _, s := range []string{"dial", "handshake", "connect", "createStream", "play", "read", "abort"} {
		if strings.HasPrefix(msg, s) {
			stage = s
			break
		}
	}
	var se *StatusError
	var ne net.Error
	cause := "other"
	switch {
	case errors.As(err, &se):
		cause = se.Code
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "refused"
	case errors.Is(err, syscall.ECONNRESET):
		cause = "reset"
	case errors.Is(err, syscall.EPIPE):
		cause = "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		cause = "closed by server"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		cause = "timeout"
	case errors.Is(err, net.ErrClosed):
		cause = "closed"
	}
	return stage + ": " + cause
}

// sample reads w's usage, keeping last when the process went away meanwhile.
func sample(w *ProcWatch, last Usage) Usage {
	if u := w.Usage(); u.PeakRSSMB > 0 {
		return u
	}
	return last
}

func countKeyed(ps []*Player) int {
	n := 0
	for _, p := range ps {
		if p.FirstKey.Load() > 0 {
			n++
		}
	}
	return n
}

func countState(ps []*Player, state int32) int {
	n := 0
	for _, p := range ps {
		if p.State.Load() == state {
			n++
		}
	}
	return n
}

func sumBytes(ps []*Player) int64 {
	var n int64
	for _, p := range ps {
		n += p.Bytes.Load()
	}
	return n
}

func sumVideo(ps []*Player) int64 {
	var n int64
	for _, p := range ps {
		n += p.Video.Load()
	}
	return n
}

func maxGapMs(ps []*Player) float64 {
	var g int64
	for _, p := range ps {
		g = max(g, p.MaxGap.Load())
	}
	return ms(g)
}

// WriteChurn prints a churn result for people.
func WriteChurn(w io.Writer, r ChurnResult) {
	fmt.Fprintf(w, "churn %s: %d cycles done of %d begun in %.1fs (%.0f/s), %d without media before the reset",
		r.URL, r.Cycles, r.Attempted, r.Seconds, r.PerSecond, r.NoMedia)
	if r.TimedOut {
		fmt.Fprint(w, ", TIMED OUT")
	}
	fmt.Fprintln(w)
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  errors %-40s %d\n", k, r.Errors[k])
	}
	for _, e := range r.Examples {
		fmt.Fprintf(w, "  e.g. %s\n", e)
	}
	if r.Canaries > 0 {
		fmt.Fprintf(w, "canaries: %d, playing at the end %d, failed %d, longest gap %.0f ms, stalls %d, %.1f MB received; after the churn %.1f KB, %d video messages\n",
			r.Canaries, r.CanaryPlaying, r.CanaryFailed, r.CanaryMaxGapMs, r.CanaryStalls, float64(r.CanaryBytes)/1e6, float64(r.CanaryBytesAfter)/1e3, r.CanaryVideoAfter)
		for _, s := range r.CanaryReasons {
			fmt.Fprintf(w, "  canary: %s\n", s)
		}
	}
	if r.ServerWatched {
		state := "alive"
		if !r.ServerAlive {
			state = fmt.Sprintf("GONE (first seen gone after %d cycles)", r.DiedAfter)
		}
		fmt.Fprintf(w, "server: %s", state)
		if r.Server != nil {
			fmt.Fprintf(w, ", CPU %.2f s, peak RSS %.1f MB", r.Server.CPUSeconds, r.Server.PeakRSSMB)
		}
		fmt.Fprintln(w)
	}
}
