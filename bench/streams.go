package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// StreamsConfig is the long tail of an edge: Streams streams, each
// published by a synthetic publisher on the origin and played by
// PlayersPerStream players on one edge that pulls them from the origin.
type StreamsConfig struct {
	Streams, PlayersPerStream int
	Bitrate                   float64       // each stream's, bits per second
	PublisherRamp             float64       // publishers started per second
	Ramp                      float64       // players started per second, going round the streams
	Settle                    time.Duration // after the publishers were accepted, before the players
	Duration                  time.Duration // the measurement window once every player is connected
	Progress                  io.Writer     // a line per second (nil: none)
}

// StreamsResult is what a many-streams load measured.
type StreamsResult struct {
	Name             string `json:"name"`
	Streams          int    `json:"streams"`
	PlayersPerStream int    `json:"players_per_stream"`
	// Load is the players' view and the edge's usage over the window:
	// Load.CPUPerGB is the edge's CPU seconds per GB delivered, first
	// keyframes are from dial (the first player of each stream meets a
	// cold edge), Load.Server.Upstreams the edge's connections to the
	// origin at the end (one per stream).
	Load Result `json:"load"`
	// The origin over the same window, per GB the publishers sent (which
	// it sends on to the edge once).
	Origin         Usage   `json:"origin"`
	OriginBytes    int64   `json:"origin_bytes"`
	OriginCPUPerGB float64 `json:"origin_cpu_s_per_gb"`
	// The edge's RSS (MiB) before any stream and at the window's end, and
	// per stream (KiB): (end - base) / streams, and that less a GOP of the
	// stream.
	EdgeBaseMB       float64  `json:"edge_base_rss_mib"`
	EdgeEndMB        float64  `json:"edge_end_rss_mib"`
	RSSPerStreamKiB  float64  `json:"rss_per_stream_kib"`
	GOPKiB           float64  `json:"gop_kib"`
	BeyondGOPKiB     float64  `json:"rss_per_stream_beyond_gop_kib"`
	PublishersFailed int      `json:"publishers_failed"`
	PublisherReasons []string `json:"publisher_failures,omitempty"`
}

// RunStreams starts set as origin and pull edge, the publishers, then the
// players, measures a window and stops everything.
func (e Env) RunStreams(ctx context.Context, set ServerSet, dir string, cfg StreamsConfig) (StreamsResult, error) {
	res := StreamsResult{Name: set.Name, Streams: cfg.Streams, PlayersPerStream: cfg.PlayersPerStream, GOPKiB: GOPBytes(cfg.Bitrate) / 1024}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	if err := PortsFree(e.Ports(PullEdge)...); err != nil {
		return res, fmt.Errorf("%s: %w", set.Name, err)
	}
	s, err := set.Start(dir, PullEdge)
	if err != nil {
		return res, fmt.Errorf("%s: %w", set.Name, err)
	}
	defer s.Stop()
	sleepCtx(ctx, time.Second) // started up
	res.EdgeBaseMB = s.Edge.Usage().RSSMB

	pubs, failed, reasons, err := startPublishersAndWait(ctx, set.Name, "rtmp://"+s.OriginAddr+"/live/s", cfg.Streams, cfg.Bitrate, cfg.PublisherRamp, 60*time.Second, cfg.Settle)
	if err != nil {
		res.PublishersFailed, res.PublisherReasons = failed, reasons
		return res, err
	}
	defer pubs.Stop()
	urls := make([]string, cfg.Streams)
	for i := range urls {
		urls[i] = fmt.Sprintf("rtmp://%s/live/s-%d", s.EdgeAddr, i)
	}
	var o0 Usage
	var b0 int64
	res.Load = RunLoad(ctx, LoadConfig{
		URLs: urls, Players: cfg.Streams * cfg.PlayersPerStream, Ramp: cfg.Ramp, Duration: cfg.Duration,
		Interval: time.Second, Progress: cfg.Progress, Server: s.Edge,
		OnWindow: func(end bool) {
			if !end {
				o0, b0 = s.Origin.Usage(), pubs.Sent.Load()
				return
			}
			res.Origin, res.OriginBytes = s.Origin.Usage(), pubs.Sent.Load()-b0
			res.Origin.CPUSeconds -= o0.CPUSeconds
			res.EdgeEndMB = s.Edge.Usage().RSSMB
		},
	})
	res.Load.Name = set.Name
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if res.OriginBytes > 0 {
		res.OriginCPUPerGB = res.Origin.CPUSeconds / (float64(res.OriginBytes) / 1e9)
	}
	if res.EdgeEndMB > 0 {
		res.RSSPerStreamKiB = (res.EdgeEndMB - res.EdgeBaseMB) * 1024 / float64(cfg.Streams)
		res.BeyondGOPKiB = res.RSSPerStreamKiB - res.GOPKiB
	}
	res.PublishersFailed, res.PublisherReasons = pubs.Failed()
	return res, nil
}

// StreamsDir is where a run of a set-up's many-streams load keeps its files.
func StreamsDir(out, name string, streams, players, run int) string {
	return filepath.Join(out, fmt.Sprintf("streams%dx%d-%s-run%d", streams, players, name, run))
}
