package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Synthetic streams of the publish loads: 30 frames a second, a keyframe
// every 60 (a GOP of 2 s), audio beside the video.
const (
	SyntheticFPS = 30
	SyntheticGOP = 60
)

// GOPBytes is what one GOP of a synthetic stream of bitrate bits per second
// carries: what a GOP cache holds for it.
func GOPBytes(bitrate float64) float64 {
	return bitrate / 8 * SyntheticGOP / SyntheticFPS
}

// Publishers are synthetic publishers sending in real time, each to its own
// stream: prefix-0, prefix-1, ...
type Publishers struct {
	Sent      atomic.Int64 // media bytes sent, all publishers
	Connected atomic.Int64 // publishers the server accepted
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	failures  map[string]int
	failed    int
}

// StartPublishers starts n publishers of bitrate bits per second to
// prefix-0 ... prefix-(n-1), ramp a second (0: all at once).
func StartPublishers(ctx context.Context, prefix string, n int, bitrate, ramp float64) *Publishers {
	ctx, cancel := context.WithCancel(ctx)
	p := &Publishers{cancel: cancel, failures: map[string]int{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i := range n {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, err := publish(ctx, fmt.Sprintf("%s-%d", prefix, i), NewSynthetic(bitrate, SyntheticFPS, SyntheticGOP), &p.Sent,
					func() { p.Connected.Add(1) })
				if err != nil && ctx.Err() == nil {
					p.mu.Lock()
					p.failed++
					p.failures[err.Error()]++
					p.mu.Unlock()
				}
			}()
			if ramp > 0 && !sleepCtx(ctx, time.Duration(float64(time.Second)/ramp)) {
				return
			}
		}
	}()
	return p
}

// Failed returns how many publishers failed (not counting the end of the
// load) and why, most common first.
func (p *Publishers) Failed() (int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var reasons []string
	for r, k := range p.failures {
		reasons = append(reasons, fmt.Sprintf("%d× %s", k, r))
	}
	sort.Strings(reasons)
	return p.failed, reasons
}

// WaitConnected waits until n publishers were accepted or failed, ctx is
// done or timeout passed; it reports whether all n were accepted.
func (p *Publishers) WaitConnected(ctx context.Context, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		f, _ := p.Failed()
		if c := int(p.Connected.Load()); c == n || c+f >= n {
			return c == n
		}
		time.Sleep(20 * time.Millisecond)
	}
	return int(p.Connected.Load()) == n
}

// startPublishersAndWait starts n publishers (see StartPublishers), waits
// up to timeout until all were accepted, then settle. On failure it stops
// them and says how many failed and why.
func startPublishersAndWait(ctx context.Context, name, prefix string, n int, bitrate, ramp float64, timeout, settle time.Duration) (*Publishers, int, []string, error) {
	pubs := StartPublishers(ctx, prefix, n, bitrate, ramp)
	if !pubs.WaitConnected(ctx, n, timeout) {
		failed, reasons := pubs.Failed()
		pubs.Stop()
		return nil, failed, reasons, fmt.Errorf("%s: %d of %d publishers accepted: %v", name, pubs.Connected.Load(), n, reasons)
	}
	if !sleepCtx(ctx, settle) {
		pubs.Stop()
		return nil, 0, nil, ctx.Err()
	}
	return pubs, 0, nil, nil
}

// Stop ends the publishers and waits for them.
func (p *Publishers) Stop() {
	p.cancel()
	p.wg.Wait()
}

// IngestConfig is a publish load.
type IngestConfig struct {
	Publishers int
	Bitrate    float64       // each publisher's, bits per second
	Ramp       float64       // publishers started per second (0: all at once)
	Settle     time.Duration // after the last was accepted, before the window
	Duration   time.Duration // the measurement window
	// Role: NoEdge publishes into the origin; PushEdge into an edge that
	// forwards every stream to the origin.
	Role     EdgeRole
	Progress io.Writer // a line per second of the window (nil: none)
}

// IngestResult is what a publish load measured over its window.
type IngestResult struct {
	Name       string   `json:"name"`
	Forward    bool     `json:"forward"` // publishers published into an edge
	Publishers int      `json:"publishers"`
	Failed     int      `json:"failed"`
	Reasons    []string `json:"failure_reasons,omitempty"`
	Seconds    float64  `json:"seconds"`
	Bytes      int64    `json:"bytes"` // media the publishers sent in the window
	Mbps       float64  `json:"mbps"`
	// Server is the process the publishers connect to (the edge when
	// forwarding), its CPU over the window; CPUPerGB its CPU seconds per
	// GB of media sent.
	Server   Usage   `json:"server"`
	CPUPerGB float64 `json:"cpu_s_per_gb"`
	// Origin behind a forwarding edge, and its CPU per GB.
	Origin         *Usage  `json:"origin,omitempty"`
	OriginCPUPerGB float64 `json:"origin_cpu_s_per_gb,omitempty"`
	// Upstreams: the edge's connections to the origin at the window's end
	// (forwarding: one per publisher).
	Upstreams    int     `json:"upstreams,omitempty"`
	GOPCacheMB   float64 `json:"gop_cache_mb"` // what the streams' GOP caches hold (a GOP each)
	HarnessCores float64 `json:"harness_cores"`
}

// RunIngest starts set, runs the publish load cfg against it and stops it.
func (e Env) RunIngest(ctx context.Context, set ServerSet, dir string, cfg IngestConfig) (IngestResult, error) {
	res := IngestResult{Name: set.Name, Forward: cfg.Role == PushEdge, Publishers: cfg.Publishers,
		GOPCacheMB: float64(cfg.Publishers) * GOPBytes(cfg.Bitrate) / 1e6}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	if err := PortsFree(e.Ports(cfg.Role)...); err != nil {
		return res, fmt.Errorf("%s: %w", set.Name, err)
	}
	s, err := set.Start(dir, cfg.Role)
	if err != nil {
		return res, fmt.Errorf("%s: %w", set.Name, err)
	}
	defer s.Stop()
	target, watch := s.OriginAddr, s.Origin
	if cfg.Role == PushEdge {
		target, watch = s.EdgeAddr, s.Edge
	}
	pubs, failed, reasons, err := startPublishersAndWait(ctx, set.Name, "rtmp://"+target+"/live/pub", cfg.Publishers, cfg.Bitrate, cfg.Ramp, 30*time.Second, cfg.Settle)
	if err != nil {
		res.Failed, res.Reasons = failed, reasons
		return res, err
	}
	defer pubs.Stop()
	self := &ProcWatch{PID: os.Getpid()}
	u0, o0, h0, b0, t0 := watch.Usage(), s.Origin.Usage(), self.Usage(), pubs.Sent.Load(), time.Now()
	for i := 1; time.Since(t0) < cfg.Duration; i++ {
		if !sleepCtx(ctx, min(time.Second, cfg.Duration-time.Since(t0))) {
			return res, ctx.Err()
		}
		if cfg.Progress != nil {
			u := watch.Usage()
			fmt.Fprintf(cfg.Progress, "%6.1fs publishers=%d %.1f Mbit/s cpu=%.2fs rss=%.1fMB\n", time.Since(t0).Seconds(),
				pubs.Connected.Load(), float64(pubs.Sent.Load()-b0)*8/1e6/time.Since(t0).Seconds(), u.CPUSeconds-u0.CPUSeconds, u.RSSMB)
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	res.Bytes = pubs.Sent.Load() - b0
	res.Server = watch.Usage()
	res.Server.CPUSeconds -= u0.CPUSeconds
	res.HarnessCores = (self.Usage().CPUSeconds - h0.CPUSeconds) / res.Seconds
	gb := float64(res.Bytes) / 1e9
	res.Mbps = float64(res.Bytes) * 8 / 1e6 / res.Seconds
	res.CPUPerGB = res.Server.CPUSeconds / gb
	if cfg.Role == PushEdge {
		o := s.Origin.Usage()
		o.CPUSeconds -= o0.CPUSeconds
		res.Origin, res.OriginCPUPerGB = &o, o.CPUSeconds/gb
		res.Upstreams = res.Server.Upstreams
	}
	res.Failed, res.Reasons = pubs.Failed()
	return res, nil
}

// IngestDir is where a run of a set-up's publish load keeps its files.
func IngestDir(out, name string, forward bool, run int) string {
	what := "ingest"
	if forward {
		what = "forward"
	}
	return filepath.Join(out, fmt.Sprintf("%s-%s-run%d", what, name, run))
}
