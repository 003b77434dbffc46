package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
)

// LoadConfig describes a player load.
type LoadConfig struct {
	URL      string
	Players  int
	Ramp     float64       // players started per second (0: all at once)
	Duration time.Duration // how long to play after the last player started
	Interval time.Duration // progress interval (0: no progress lines)
	Raw      bool          // raw TCP byte counters (floor server)
	Progress io.Writer     // where progress lines go (nil: nowhere)
	Server   *ProcWatch    // server process to measure (nil: none)
	// URLs, when set, are the streams the players play in turn: player i
	// plays URLs[i % len(URLs)] (URL is then not used).
	URLs []string
	// OnWindow is called (when set) as the measurement window starts and
	// as it ends, for the caller to measure over the same window.
	OnWindow func(end bool)
}

// Sample is one progress interval.
type Sample struct {
	T          float64 `json:"t"` // seconds since the start
	Alive      int     `json:"alive"`
	Connecting int     `json:"connecting"`
	Failed     int     `json:"failed"`
	Refused    int     `json:"refused,omitempty"`
	Mbps       float64 `json:"mbps"`
	LagP50     float64 `json:"lag_p50_ms"`
	LagP99     float64 `json:"lag_p99_ms"`
	Stalls     int64   `json:"stalls"`
}

// Result is what a load run measured.
type Result struct {
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	Players      int      `json:"players"`
	Seconds      float64  `json:"seconds"`  // measurement window
	Received     int      `json:"received"` // players that got media
	Failed       int      `json:"failed"`
	Reasons      []string `json:"failure_reasons,omitempty"`
	Bytes        int64    `json:"bytes"` // delivered in the window
	Mbps         float64  `json:"mbps"`  // total
	PerPlayer    float64  `json:"per_player_mbps"`
	HandshakeP50 float64  `json:"handshake_p50_ms"`
	FirstKeyP50  float64  `json:"first_keyframe_p50_ms"`
	FirstKeyP99  float64  `json:"first_keyframe_p99_ms"`
	LagP50       float64  `json:"lag_p50_ms"`
	LagP99       float64  `json:"lag_p99_ms"`
	Stalls       int64    `json:"stalls"`     // gaps over StallGap in the window
	MaxGapMs     float64  `json:"max_gap_ms"` // longest gap in the window
	// RampStalls and RampMaxGapMs are the same before the window: while
	// the players joined.
	RampStalls   int64   `json:"ramp_stalls"`
	RampMaxGapMs float64 `json:"ramp_max_gap_ms"`
	Server       *Usage  `json:"server,omitempty"`
	HarnessCores float64 `json:"harness_cores"` // CPU the harness itself used, in cores, over the window
	CPUPerGB     float64 `json:"cpu_s_per_gb,omitempty"`
	// Refused players got an error status in answer to play (a capacity
	// limit, say); they are not counted in Failed. RefusedP50/P99Ms: from
	// sending play to the answer.
	Refused      int     `json:"refused"`
	RefusedP50Ms float64 `json:"refused_p50_ms,omitempty"`
	RefusedP99Ms float64 `json:"refused_p99_ms,omitempty"`
	// StillConnecting players had neither started playing nor failed at
	// the window's end.
	StillConnecting int `json:"still_connecting,omitempty"`
	// Admitted players had their play accepted. ShareMin/P1/P50: the share
	// of the stream an admitted player kept up with over the window (1: all
	// of it), lowest, 1st percentile and median: 1 - how far it fell behind
	// between the freshest messages it got in the window's first and last
	// 2 s, over the time between them, so batched writes do not blur it (no
	// media at either end: the media time it got over the window's length).
	Admitted int     `json:"admitted"`
	ShareMin float64 `json:"share_min"`
	ShareP1  float64 `json:"share_p1"`
	ShareP50 float64 `json:"share_p50"`
	// Start is when the load started; the window began WindowFrom seconds
	// later and lasted Seconds.
	Start      time.Time `json:"start"`
	WindowFrom float64   `json:"window_from"`

	Samples []Sample `json:"samples"`
}

// ConnectWait is how long after the last player started the window waits
// for the players still connecting; they then count in StillConnecting.
const ConnectWait = 15 * time.Second

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(q * float64(len(v)-1))
	return v[i]
}

// RunLoad starts the players, reports progress, and measures the window
// from when every player was started to the end of Duration.
func RunLoad(ctx context.Context, cfg LoadConfig) Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	players := make([]*Player, cfg.Players)
	var wg sync.WaitGroup
	start := time.Now()
	res := Result{URL: cfg.URL, Players: cfg.Players, Start: start}

	var mu sync.Mutex
	started := 0
	var lastStart time.Time
	go func() {
		for i := range players {
			url := cfg.URL
			if len(cfg.URLs) > 0 {
				url = cfg.URLs[i%len(cfg.URLs)]
			}
			p := &Player{URL: url, Raw: cfg.Raw}
			mu.Lock()
			players[i] = p
			started++
			lastStart = time.Now()
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); p.Run(ctx) }()
			if cfg.Ramp > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(float64(time.Second) / cfg.Ramp)):
				}
			}
		}
	}()
	snapshot := func() []*Player {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(players[:started])
	}
	interval := cfg.Interval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastBytes, lastStalls int64
	var windowStart time.Time
	var windowBytes int64
	var usage0, self0 Usage
	var media0 []int64 // each player's media time at the window's start
	// Each player's lowest (wall - media) time in the window's first and
	// last seg (see Player.MinBehind).
	var behind0, behind1 []*BehindMark
	var seg time.Duration
	endReset := false
	self := &ProcWatch{PID: os.Getpid()}
	rampDone := false
	end := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return res
		case now := <-tick.C:
			ps := snapshot()
			s := Sample{T: now.Sub(start).Seconds()}
			var total int64
			lags := make([]float64, 0, len(ps))
			for _, p := range ps {
				total += p.Bytes.Load()
				switch p.State.Load() {
				case StateConnecting:
					s.Connecting++
				case StatePlaying:
					s.Alive++
					lags = append(lags, ms(int64(p.LagAt(now))))
				case StateFailed:
					if p.RefusedAfter.Load() > 0 {
						s.Refused++
					} else {
						s.Failed++
					}
				}
				s.Stalls += p.Stalls.Load()
			}
			s.Mbps = float64(total-lastBytes) * 8 / 1e6 / interval.Seconds()
			lastBytes = total
			s.LagP50, s.LagP99 = percentile(lags, 0.5), percentile(lags, 0.99)
			res.Samples = append(res.Samples, s)
			if cfg.Progress != nil && cfg.Interval > 0 {
				refused := ""
				if s.Refused > 0 {
					refused = fmt.Sprintf(" refused=%d", s.Refused)
				}
				// Stalls since the start, and in this interval.
				fmt.Fprintf(cfg.Progress, "%6.1fs alive=%d connecting=%d failed=%d%s %.1f Mbit/s lag p50=%.0fms p99=%.0fms stalls=%d (+%d)\n",
					s.T, s.Alive, s.Connecting, s.Failed, refused, s.Mbps, s.LagP50, s.LagP99, s.Stalls, s.Stalls-lastStalls)
			}
			lastStalls = s.Stalls
			mu.Lock()
			// Players that never get an answer (an overloaded server or
			// link) must not hold the window back for ever.
			stuck := s.Connecting > 0 && now.Sub(lastStart) > ConnectWait
			mu.Unlock()
			if !rampDone && len(ps) == cfg.Players && (s.Connecting == 0 || stuck) {
				rampDone = true
				windowStart, windowBytes = now, total
				res.WindowFrom = now.Sub(start).Seconds()
				media0 = make([]int64, len(ps))
				for i, p := range ps {
					media0[i] = p.MediaNs.Load()
					// Gaps are counted in the window, as the bytes and the
					// CPU are; the ramp's are kept apart.
					res.RampMaxGapMs = max(res.RampMaxGapMs, ms(p.MaxGap.Swap(0)))
					res.RampStalls += p.Stalls.Load()
				}
				seg = min(2*time.Second, cfg.Duration/4)
				swapBehind(ps)
				end = now.Add(cfg.Duration)
				self0 = self.Usage()
				if cfg.Server != nil {
					usage0 = cfg.Server.Usage()
				}
				if cfg.OnWindow != nil {
					cfg.OnWindow(false)
				}
			}
			if rampDone && behind0 == nil && !now.Before(windowStart.Add(seg)) && now.Before(end) {
				behind0 = swapBehind(ps)
			}
			if rampDone && behind0 != nil && !endReset && !now.Before(end.Add(-seg)) && now.Before(end) {
				swapBehind(ps)
				endReset = true
			}
			if rampDone && !now.Before(end) {
				if endReset {
					behind1 = swapBehind(ps)
				}
				res.Seconds = now.Sub(windowStart).Seconds()
				res.Bytes = total - windowBytes
				res.HarnessCores = (self.Usage().CPUSeconds - self0.CPUSeconds) / res.Seconds
				if cfg.OnWindow != nil {
					cfg.OnWindow(true)
				}
				if cfg.Server != nil {
					u := cfg.Server.Usage()
					u.CPUSeconds -= usage0.CPUSeconds
					res.Server = &u
					if res.Bytes > 0 {
						res.CPUPerGB = u.CPUSeconds / (float64(res.Bytes) / 1e9)
					}
				}
				cancel()
				wg.Wait()
				res.summarize(ps, media0, behind0, behind1, now)
				res.Stalls -= res.RampStalls
				return res
			}
		}
	}
}

// swapBehind returns the players' MinBehind and starts a new span.
func swapBehind(ps []*Player) []*BehindMark {
	out := make([]*BehindMark, len(ps))
	for i, p := range ps {
		out[i] = p.MinBehind.Swap(nil)
	}
	return out
}

// summarize fills in the figures from the players at the window's end.
// media0 is their media time at the window's start; behind0 and behind1
// their MinBehind over its first and last span (nil: not measured).
func (r *Result) summarize(ps []*Player, media0 []int64, behind0, behind1 []*BehindMark, now time.Time) {
	var hs, fk, lag, refused, share []float64
	reasons := map[string]int{}
	for i, p := range ps {
		if p.FirstKey.Load() > 0 {
			r.Received++
			fk = append(fk, ms(p.FirstKey.Load()))
		}
		if p.State.Load() == StateFailed {
			if v := p.RefusedAfter.Load(); v > 0 {
				r.Refused++
				refused = append(refused, ms(v))
			} else {
				r.Failed++
			}
			if s := p.Reason.Load(); s != nil {
				reasons[*s]++
			}
		}
		if p.Handshake.Load() > 0 {
			hs = append(hs, ms(p.Handshake.Load()))
		}
		if p.State.Load() != StateFailed {
			lag = append(lag, ms(int64(p.LagAt(now))))
		}
		r.Stalls += p.Stalls.Load()
		r.MaxGapMs = max(r.MaxGapMs, ms(p.MaxGap.Load()))
		if !p.Started.Load() && p.State.Load() != StateFailed { // the end of the load made it Done
			r.StillConnecting++
		}
		if p.Started.Load() {
			r.Admitted++
			switch {
			case p.Raw || i >= len(media0) || r.Seconds <= 0:
			case i < len(behind0) && i < len(behind1) && behind0[i] != nil && behind1[i] != nil && behind1[i].At.After(behind0[i].At):
				// Media in both spans: how much it fell behind between
				// the freshest messages of each.
				b0, b1 := behind0[i], behind1[i]
				share = append(share, 1-float64(b1.Behind-b0.Behind)/float64(b1.At.Sub(b0.At)))
			default:
				// No media at the start or the end: the media time it got.
				share = append(share, float64(p.MediaNs.Load()-media0[i])/1e9/r.Seconds)
			}
		}
	}
	for reason, n := range reasons {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%d× %s", n, reason))
	}
	sort.Strings(r.Reasons)
	r.HandshakeP50 = percentile(hs, 0.5)
	r.FirstKeyP50, r.FirstKeyP99 = percentile(fk, 0.5), percentile(fk, 0.99)
	r.LagP50, r.LagP99 = percentile(lag, 0.5), percentile(lag, 0.99)
	r.RefusedP50Ms, r.RefusedP99Ms = percentile(refused, 0.5), percentile(refused, 0.99)
	r.ShareMin, r.ShareP1, r.ShareP50 = percentile(share, 0), percentile(share, 0.01), percentile(share, 0.5)
	if r.Seconds > 0 {
		r.Mbps = float64(r.Bytes) * 8 / 1e6 / r.Seconds
		if r.Players > 0 {
			r.PerPlayer = r.Mbps / float64(r.Players)
		}
	}
}
