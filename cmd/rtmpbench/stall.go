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

// stall runs, set-up after set-up, players that play through a tiny
// receive buffer and never read, while canary players watch the stream,
// and reports how each edge copes: memory, the stalled players it still
// holds, when it let them all go, and whether the canaries were harmed.
func stall(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stall", flag.ExitOnError)
	players := fs.Int("players", 500, "stalled players on the edge")
	d := fs.Duration("d", 30*time.Second, "observation window after the last stalled player started")
	ramp := fs.Float64("ramp", 250, "stalled players started per second")
	kinds := fs.String("kinds", "ours-350ms,nginx-rtmp", "set-ups to run (ours-350ms, ours-0ms, nginx-rtmp; srs with -srs)")
	srs := fs.String("srs", "", "SRS binary (e.g. ../shared/peers/srs): adds the set-up srs (mw_latency 350 ms) to the kinds")
	rf := addRunFlags(fs, "stall-out", "bin/rtmpedge")
	originPort := fs.Int("origin-port", 19470, "origin port")
	edgePort := fs.Int("edge-port", 19471, "edge port")
	canaries := fs.Int("canaries", 3, "ordinary players watching the stream meanwhile")
	readBuf := fs.Int("read-buffer", 4096, "SO_RCVBUF of the stalled players")
	_ = fs.Parse(args)

	if *players < 0 || *canaries < 0 || *ramp < 0 || *d <= 0 {
		return fmt.Errorf("stall: -players, -canaries and -ramp must be >= 0 and -d > 0")
	}
	env, err := rf.env()
	if err != nil {
		return fmt.Errorf("stall: %w", err)
	}
	env.OriginPort, env.EdgePort = *originPort, *edgePort
	bitrate, out := env.Bitrate, *rf.out
	all := map[string]bench.Kind{
		"ours-350ms": env.OursKind("ours-350ms", 350*time.Millisecond),
		"ours-0ms":   env.OursKind("ours-0ms", 0),
		"nginx-rtmp": env.NginxKind(),
	}
	if *srs != "" {
		all["srs"] = env.SRSKind("srs", *srs, 350*time.Millisecond)
		addSRS(fs, kinds)
	}
	order, err := pick(all, *kinds)
	if err != nil {
		return fmt.Errorf("stall: %w", err)
	}
	fmt.Printf("stream %s: %.2f Mbit/s; %d stalled players (SO_RCVBUF %d) at %.0f/s, %d canaries, window %s; machine: %d cores\n",
		env.Video, bitrate/1e6, *players, *readBuf, *ramp, *canaries, *d, numCPU())

	var results []bench.StallResult
	for _, k := range order {
		fmt.Printf("== %s\n", k.Name)
		var r bench.StallResult
		var lerr error
		_, err := bench.RunKindWith(ctx, k, filepath.Join(out, k.Name), func(url string, _ bool, watch *bench.ProcWatch) bench.Result {
			r, lerr = bench.StallLoad(ctx, bench.StallConfig{URL: url, Players: *players, Ramp: *ramp, Duration: *d,
				ReadBuffer: *readBuf, Canaries: *canaries, Progress: os.Stdout, Server: watch})
			return bench.Result{}
		})
		if err == nil {
			err = lerr
		}
		if err != nil {
			return fmt.Errorf("stall: %s: %w", k.Name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Name = k.Name
		bench.WriteStall(os.Stdout, r)
		results = append(results, r)
	}

	rows := make([][]string, len(results))
	for i, r := range results {
		rows[i] = bench.StallRow(r)
	}
	report := fmt.Sprintf("## %d stalled players (SO_RCVBUF %d, never read) + %d canaries, %.2f Mbit/s stream, %s window after the last stalled player started\n\n",
		*players, *readBuf, *canaries, bitrate/1e6, *d) + bench.Markdown(bench.StallHeader, rows)
	fmt.Println()
	fmt.Println(report)
	if err := os.WriteFile(filepath.Join(out, "stall.md"), []byte(report), 0o644); err != nil {
		return fmt.Errorf("stall: %w", err)
	}
	if err := bench.WriteJSON(filepath.Join(out, "stall.json"), map[string]any{"results": results, "bitrate": bitrate, "players": *players,
		"canaries": *canaries, "ramp": *ramp, "window_s": d.Seconds(), "read_buffer": *readBuf}); err != nil {
		return fmt.Errorf("stall: %w", err)
	}
	return nil
}
