package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// soak runs our origins and edge for a long time under churn (players,
// publishers, origin kills, a flaky hook server) and reports whether
// memory, goroutines and fds stay flat, how long players of live streams
// waited for media, and whether the edge survived.
func soak(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	d := fs.Duration("d", 30*time.Minute, "how long the soak runs")
	warmup := fs.Duration("warmup", 2*time.Minute, "samples before this are left out of the slopes")
	every := fs.Duration("every", 5*time.Second, "sampling interval")
	killEvery := fs.Duration("kill-every", 4*time.Minute, "SIGKILL the first origin this often")
	restartAfter := fs.Duration("restart-after", 5*time.Second, "restart it this long after")
	players := fs.Int("players", 300, "players kept on the edge")
	joinRate := fs.Float64("join-rate", 20, "most players joining per second")
	lifeMin := fs.Duration("life-min", 10*time.Second, "shortest stay of a player")
	lifeMax := fs.Duration("life-max", 4*time.Minute, "longest stay of a player")
	reset := fs.Float64("reset", 0.10, "share of players leaving with a TCP reset")
	silent := fs.Float64("silent", 0.05, "share of players never reading")
	rtmpdump := fs.Float64("rtmpdump", 0.05, "share of players that are rtmpdump processes")
	streams := fs.Int("streams", 3, "streams (each published to both origins by ffmpeg)")
	pubMin := fs.Duration("publish-min", time.Minute, "shortest publishing session")
	pubMax := fs.Duration("publish-max", 2*time.Minute, "longest publishing session")
	pauseMin := fs.Duration("pause-min", 3*time.Second, "shortest pause between sessions")
	pauseMax := fs.Duration("pause-max", 15*time.Second, "longest pause between sessions")
	hookPhases := fs.String("hook-phases", "ok:60s,slow:30s,ok:60s,down:20s", "the hook server's cycle: ok, slow (answers after -hook-delay) or down (listener closed)")
	hookDelay := fs.Duration("hook-delay", 2*time.Second, "a slow hook answers after this")
	maxWait := fs.Duration("max-wait", 3*time.Second, "target: longest wait for media of a player of a live stream")
	tolRSS := fs.Float64("tol-rss", 5, "flat: RSS slope at most this many MB per hour")
	tolGor := fs.Float64("tol-goroutines", 10, "flat: goroutine slope at most this many per hour")
	tolFDs := fs.Float64("tol-fds", 30, "flat: fd slope at most this many per hour")
	basePort := fs.Int("base-port", 19480, "origin 1, origin 2, edge, hook server, then the three pprof ports")
	seed := fs.Uint64("seed", 0, "random schedule (0: from the clock)")
	rf := addRunFlags(fs, "bench-out/soak", "bin/rtmpedge-pprof")
	fs.Lookup("server").Usage += ", built with -tags pprof"
	_ = fs.Parse(args)

	phases, err := bench.ParseHookPhases(*hookPhases)
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	env, err := rf.env()
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	out := *rf.out
	fmt.Printf("soak for %s: %d streams of %s (%.2f Mbit/s) to 2 origins, %d players on the edge, origin 1 killed every %s; machine: %d cores; output in %s\n",
		*d, *streams, env.Video, env.Bitrate/1e6, *players, *killEvery, numCPU(), out)
	r, err := bench.Soak(ctx, bench.SoakConfig{
		Server: env.Server, Video: env.Video, Dir: out,
		Duration: *d, Warmup: *warmup, Every: *every, KillEvery: *killEvery, RestartAfter: *restartAfter,
		Streams: *streams, PublishMin: *pubMin, PublishMax: *pubMax, PauseMin: *pauseMin, PauseMax: *pauseMax,
		Players: *players, JoinRate: *joinRate, LifeMin: *lifeMin, LifeMax: *lifeMax,
		Mix:        bench.SoakMix{Reset: *reset, Silent: *silent, Rtmpdump: *rtmpdump},
		HookPhases: phases, HookDelay: *hookDelay, MaxWait: *maxWait,
		Tolerance: bench.SoakTolerance{RSSMBPerHour: *tolRSS, GoroutinesPerHour: *tolGor, FDsPerHour: *tolFDs},
		BasePort:  *basePort, Seed: *seed, Progress: os.Stdout,
	})
	if err != nil {
		return err
	}
	report := bench.SoakMarkdown(r)
	fmt.Println()
	fmt.Println(report)
	if err := os.WriteFile(filepath.Join(out, "soak.md"), []byte(report), 0o644); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if err := bench.WriteJSON(filepath.Join(out, "soak.json"), r); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if err := bench.PlotSoak(r, filepath.Join(out, "soak.png")); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if !r.Pass {
		return fmt.Errorf("soak: FAILED (see %s)", filepath.Join(out, "soak.md"))
	}
	return nil
}
