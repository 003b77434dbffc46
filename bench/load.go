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
}

// Sample is one progress interval.
type Sample struct {
	T          float64 `json:"t"` // seconds since the start
	Alive      int     `json:"alive"`
	Connecting int     `json:"connecting"`
	Failed     int     `json:"failed"`
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
	Stalls       int64    `json:"stalls"`
	MaxGapMs     float64  `json:"max_gap_ms"`
	Server       *Usage   `json:"server,omitempty"`
	HarnessCores float64  `json:"harness_cores"` // CPU the harness itself used, in cores, over the window
	CPUPerGB     float64  `json:"cpu_s_per_gb,omitempty"`
	Samples      []Sample `json:"samples"`
}

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
	res := Result{URL: cfg.URL, Players: cfg.Players}

	var mu sync.Mutex
	started := 0
	go func() {
		for i := range players {
			p := &Player{URL: cfg.URL, Raw: cfg.Raw}
			mu.Lock()
			players[i] = p
			started++
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
	var lastBytes int64
	var windowStart time.Time
	var windowBytes int64
	var usage0, self0 Usage
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
					s.Failed++
				}
				s.Stalls += p.Stalls.Load()
			}
			s.Mbps = float64(total-lastBytes) * 8 / 1e6 / interval.Seconds()
			lastBytes = total
			s.LagP50, s.LagP99 = percentile(lags, 0.5), percentile(lags, 0.99)
			res.Samples = append(res.Samples, s)
			if cfg.Progress != nil && cfg.Interval > 0 {
				fmt.Fprintf(cfg.Progress, "%6.1fs alive=%d connecting=%d failed=%d %.1f Mbit/s lag p50=%.0fms p99=%.0fms stalls=%d\n",
					s.T, s.Alive, s.Connecting, s.Failed, s.Mbps, s.LagP50, s.LagP99, s.Stalls)
			}
			if !rampDone && len(ps) == cfg.Players && s.Connecting == 0 {
				rampDone = true
				windowStart, windowBytes = now, total
				end = now.Add(cfg.Duration)
				self0 = self.Usage()
				if cfg.Server != nil {
					usage0 = cfg.Server.Usage()
				}
			}
			if rampDone && !now.Before(end) {
				res.Seconds = now.Sub(windowStart).Seconds()
				res.Bytes = total - windowBytes
				res.HarnessCores = (self.Usage().CPUSeconds - self0.CPUSeconds) / res.Seconds
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
				res.summarize(ps, now)
				return res
			}
		}
	}
}

func (r *Result) summarize(ps []*Player, now time.Time) {
	var hs, fk, lag []float64
	reasons := map[string]int{}
	for _, p := range ps {
		if p.FirstKey.Load() > 0 {
			r.Received++
			fk = append(fk, ms(p.FirstKey.Load()))
		}
		if p.State.Load() == StateFailed {
			r.Failed++
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
	}
	for reason, n := range reasons {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%d× %s", n, reason))
	}
	sort.Strings(r.Reasons)
	r.HandshakeP50 = percentile(hs, 0.5)
	r.FirstKeyP50, r.FirstKeyP99 = percentile(fk, 0.5), percentile(fk, 0.99)
	r.LagP50, r.LagP99 = percentile(lag, 0.5), percentile(lag, 0.99)
	if r.Seconds > 0 {
		r.Mbps = float64(r.Bytes) * 8 / 1e6 / r.Seconds
		if r.Players > 0 {
			r.PerPlayer = r.Mbps / float64(r.Players)
		}
	}
}
