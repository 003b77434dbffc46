package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/rtmpedge/rtmpedge/bench"
)

// compare runs the side-by-side scenarios: our edge (merged writes and low
// latency), nginx-rtmp's pull edge and the floor, alternating, N runs each.
func compare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	players := fs.Int("players", 500, "players on the edge")
	runs := fs.Int("runs", 3, "alternating runs of each set-up")
	d := fs.Duration("d", 30*time.Second, "measurement window of a run")
	ramp := fs.Float64("ramp", 250, "players started per second")
	rf := addRunFlags(fs, "bench-out", "bin/rtmpedge")
	kinds := fs.String("kinds", "ours-350ms,ours-0ms,nginx-rtmp,floor-350ms,floor-33ms", "set-ups to compare")
	scaling := fs.String("scaling", "50,100,250,500", "player counts for the scaling sweep (empty: none)")
	scalingD := fs.Duration("scaling-d", 15*time.Second, "measurement window of a scaling run")
	cold := fs.Int("cold", 5, "cold-edge first-player measurements per server (0: none)")
	publishers := fs.Int("publishers", 50, "publishers for the publish and forward loads (0: none)")
	originPort := fs.Int("origin-port", 19450, "origin port")
	edgePort := fs.Int("edge-port", 19451, "edge port (the floor serves here too)")
	httpPort := fs.Int("http-port", 19452, "the edge's HTTP-FLV port (ours-httpflv, ours-wsflv, srs-httpflv)")
	srs := fs.String("srs", "", "SRS binary (e.g. ../shared/peers/srs): adds the set-up srs (mw_latency 350 ms) to the kinds; srs-httpflv may then be asked for")
	client := fs.String("client", clientGo, "players: rtmpbench, rtmpdump (processes) or both (two rows per set-up)")
	_ = fs.Parse(args)

	env, err := rf.env()
	if err != nil {
		return err
	}
	env.OriginPort, env.EdgePort, env.HTTPPort = *originPort, *edgePort, *httpPort
	bitrate, out := env.Bitrate, *rf.out
	fmt.Printf("stream %s: %.2f Mbit/s; %d players; %d runs of %s; machine: %d cores\n", env.Video, bitrate/1e6, *players, *runs, *d, numCPU())
	all := map[string]bench.Kind{
		"ours-350ms":   env.OursKind("ours-350ms", 350*time.Millisecond),
		"ours-0ms":     env.OursKind("ours-0ms", 0),
		"ours-httpflv": env.OursFLVKind("ours-httpflv", 350*time.Millisecond, "http"),
		"ours-wsflv":   env.OursFLVKind("ours-wsflv", 350*time.Millisecond, "ws"),
		"nginx-rtmp":   env.NginxKind(),
		"floor-350ms":  env.FloorKind("floor-350ms", 350*time.Millisecond),
		"floor-33ms":   env.FloorKind("floor-33ms", 33*time.Millisecond),
	}
	if *srs != "" {
		all["srs"] = env.SRSKind("srs", *srs, 350*time.Millisecond)
		all["srs-httpflv"] = env.SRSFLVKind("srs-httpflv", *srs, 350*time.Millisecond)
		addSRS(fs, kinds)
	}
	order, err := pick(all, *kinds)
	if err != nil {
		return err
	}
	byClient, err := clientRuns(order, *client)
	if err != nil {
		return err
	}

	results := map[string][]bench.Result{}
	var firstRuns []bench.Result
	for run := 1; run <= *runs; run++ {
		for _, cr := range byClient {
			fmt.Printf("== run %d/%d: %s\n", run, *runs, cr.name)
			r, err := runKindClient(ctx, cr.kind, cr.client, filepath.Join(out, fmt.Sprintf("%s-run%d", cr.name, run)), *players, *ramp, *d, os.Stdout)
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Name = cr.name
			bench.WriteSummary(os.Stdout, []bench.Result{r})
			results[cr.name] = append(results[cr.name], r)
			if run == 1 {
				firstRuns = append(firstRuns, r)
			}
		}
	}

	order = reportKinds(byClient)

	coldMs := map[string][]float64{}
	if *cold > 0 {
		for _, name := range []string{"ours-350ms", "nginx-rtmp"} {
			if k, ok := all[name]; ok && strings.Contains(*kinds, name) {
				fmt.Printf("== cold edge, first player: %s\n", name)
				v, err := bench.ColdStart(ctx, k, filepath.Join(out, name+"-cold"), *cold)
				if err != nil {
					return err
				}
				coldMs[name] = v
				fmt.Printf("   first keyframe ms: %v\n", v)
			}
		}
	}

	scale := map[string]plotter.XYs{}
	if *scaling != "" {
		for _, ns := range strings.Split(*scaling, ",") {
			var n int
			if _, err := fmt.Sscan(ns, &n); err != nil {
				return fmt.Errorf("scaling %q: %w", ns, err)
			}
			for _, name := range []string{"ours-350ms", "ours-0ms", "nginx-rtmp", "floor-350ms"} {
				k, ok := all[name]
				if !ok || !strings.Contains(*kinds, name) {
					continue
				}
				fmt.Printf("== scaling: %s with %d players\n", name, n)
				r, err := runKindClient(ctx, k, *client, filepath.Join(out, fmt.Sprintf("%s-scale%d", name, n)), n, *ramp, *scalingD, nil)
				if err != nil {
					return err
				}
				bench.WriteSummary(os.Stdout, []bench.Result{r})
				scale[name] = append(scale[name], plotter.XY{X: float64(n), Y: r.CPUPerGB})
				results["scale-"+name] = append(results["scale-"+name], r)
			}
		}
	}

	var pubRows [][]string
	if *publishers > 0 {
		pubRows, err = publishLoads(ctx, env, out, *publishers, *scalingD)
		if err != nil {
			return err
		}
	}

	report := clientNote(*client) + sideBySide(order, results, coldMs, bitrate, *players, *runs, pubRows)
	fmt.Println(report)
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(report), 0o644); err != nil {
		return err
	}
	if err := bench.WriteJSON(filepath.Join(out, "results.json"), map[string]any{"results": results, "cold_first_keyframe_ms": coldMs, "bitrate": bitrate}); err != nil {
		return err
	}
	if err := bench.PlotTimeline(firstRuns, fmt.Sprintf("%d players", *players), filepath.Join(out, "timeline.png")); err != nil {
		return err
	}
	if len(scale) > 0 {
		if err := bench.PlotScaling(scale, "CPU per GB delivered vs players", filepath.Join(out, "scaling.png")); err != nil {
			return err
		}
	}
	var labels []string
	var values []float64
	for _, k := range order {
		labels = append(labels, k.Name)
		values = append(values, bench.Median(results[k.Name], func(r bench.Result) float64 { return r.CPUPerGB }))
	}
	return bench.PlotBars(labels, values, fmt.Sprintf("edge CPU-s per GB, %d players, median of %d", *players, *runs), "CPU-s/GB", filepath.Join(out, "cpu-per-gb.png"))
}

func sideBySide(order []bench.Kind, results map[string][]bench.Result, cold map[string][]float64, bitrate float64, players, runs int, pubRows [][]string) string {
	med := func(name string, f func(bench.Result) float64) float64 { return bench.Median(results[name], f) }
	cpu := func(r bench.Result) float64 { return r.CPUPerGB }
	rss := func(r bench.Result) float64 {
		if r.Server == nil {
			return 0
		}
		return r.Server.PeakRSSMB
	}
	var rows [][]string
	for _, k := range order {
		n := k.Name
		recv := med(n, func(r bench.Result) float64 { return r.PerPlayer * 1e6 / bitrate * 100 })
		ups := med(n, func(r bench.Result) float64 {
			if r.Server == nil {
				return 0
			}
			return float64(r.Server.Upstreams)
		})
		fails := med(n, func(r bench.Result) float64 { return float64(r.Failed) })
		rows = append(rows, []string{n,
			fmt.Sprintf("%.2f", med(n, cpu)),
			fmt.Sprintf("%.1f", med(n, rss)),
			fmt.Sprintf("%.1f / %.1f", med(n, func(r bench.Result) float64 {
				if r.Server == nil {
					return 0
				}
				return r.Server.AnonMB
			}), med(n, func(r bench.Result) float64 {
				if r.Server == nil {
					return 0
				}
				return r.Server.FileMB
			})),
			fmt.Sprintf("%.0f%%", recv),
			fmt.Sprintf("%.0f", fails),
			fmt.Sprintf("%.0f", ups),
			fmt.Sprintf("%.1f", med(n, func(r bench.Result) float64 { return r.FirstKeyP50 })),
			fmt.Sprintf("%.0f", med(n, func(r bench.Result) float64 { return r.LagP99 })),
			fmt.Sprintf("%.0f", med(n, func(r bench.Result) float64 { return float64(r.Stalls) })),
			fmt.Sprintf("%.0f", med(n, func(r bench.Result) float64 { return r.MaxGapMs })),
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %d players, %.2f Mbit/s stream, medians of %d alternating runs\n\n", players, bitrate/1e6, runs)
	b.WriteString(bench.Markdown([]string{"set-up", "CPU-s/GB", "peak RSS MB", "RSS anon / file MB at end", "stream received per player", "failed", "upstreams", "first keyframe p50 ms", "lag p99 ms", "stalls", "max gap ms"}, rows))
	// Ratios of two set-ups, for those in the run.
	var ratios strings.Builder
	ratio := func(a, bb, what string, f func(bench.Result) float64, target string) {
		x, y := med(a, f), med(bb, f)
		if len(results[a]) == 0 || len(results[bb]) == 0 || y == 0 {
			return
		}
		fmt.Fprintf(&ratios, "| %s %s / %s | %.2f | %s |\n", a, what, bb, x/y, target)
	}
	ratio("ours-350ms", "floor-350ms", "CPU/GB", cpu, "<= 1.25")
	ratio("ours-0ms", "floor-33ms", "CPU/GB", cpu, "<= 1.3")
	ratio("ours-0ms", "nginx-rtmp", "CPU/GB", cpu, "<= 0.7")
	ratio("ours-350ms", "nginx-rtmp", "CPU/GB", cpu, "-")
	ratio("ours-350ms", "nginx-rtmp", "peak RSS", rss, "<= 1")
	ratio("ours-0ms", "nginx-rtmp", "peak RSS", rss, "<= 1")
	for _, n := range []string{"ours-httpflv", "ours-wsflv"} {
		ratio(n, "ours-350ms", "CPU/GB", cpu, "<= 1.1")
		ratio(n, "srs-httpflv", "CPU/GB", cpu, "<= 0.7")
		ratio(n, "nginx-rtmp", "peak RSS", rss, "<= 1")
		if len(results[n]) > 0 {
			fmt.Fprintf(&ratios, "| %s first keyframe p50 ms (live edge) | %.1f | <= 50 |\n", n, med(n, func(r bench.Result) float64 { return r.FirstKeyP50 }))
		}
	}
	if ratios.Len() > 0 {
		b.WriteString("\n| ratio | value | target |\n| --- | --- | --- |\n" + ratios.String())
	}
	if len(cold) > 0 {
		b.WriteString("\n| cold edge: first player's first keyframe | p50 ms | all ms |\n| --- | --- | --- |\n")
		for _, name := range []string{"ours-350ms", "nginx-rtmp"} {
			v := cold[name]
			if len(v) == 0 {
				continue
			}
			rs := make([]bench.Result, len(v))
			for i, x := range v {
				rs[i].FirstKeyP50 = x
			}
			fmt.Fprintf(&b, "| %s | %.0f | %v |\n", name, bench.Median(rs, func(r bench.Result) float64 { return r.FirstKeyP50 }), v)
		}
	}
	if len(pubRows) > 0 {
		b.WriteString("\n### Publish and forward load\n\n")
		b.WriteString(bench.Markdown([]string{"load", "publishers", "failed", "ingested Mbit/s", "server CPU-s per GB ingested", "peak RSS MB"}, pubRows))
	}
	return b.String()
}

// publishLoads measures M synthetic publishers into our origin, into
// nginx-rtmp, and into our edge forwarding to our origin (rtmpbench ingest
// compares more).
func publishLoads(ctx context.Context, env bench.Env, out string, m int, d time.Duration) ([][]string, error) {
	var rows [][]string
	for _, s := range []struct {
		name string
		set  bench.ServerSet
		role bench.EdgeRole
	}{
		{"publish into our origin", env.OursSet("ours", 350*time.Millisecond), bench.NoEdge},
		{"publish into nginx-rtmp", env.NginxSet(), bench.NoEdge},
		{"forward through our edge (edge measured)", env.OursSet("ours", 350*time.Millisecond), bench.PushEdge},
	} {
		fmt.Printf("== %s: %d publishers\n", s.name, m)
		r, err := env.RunIngest(ctx, s.set, bench.IngestDir(out, s.set.Name, s.role == bench.PushEdge, 1), bench.IngestConfig{
			Publishers: m, Bitrate: env.Bitrate, Ramp: 50, Settle: 3 * time.Second, Duration: d, Role: s.role,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, []string{s.name, fmt.Sprint(m), fmt.Sprint(r.Failed), fmt.Sprintf("%.1f", r.Mbps),
			fmt.Sprintf("%.2f", r.CPUPerGB), fmt.Sprintf("%.1f", r.Server.PeakRSSMB)})
		fmt.Println("   ", strings.Join(rows[len(rows)-1], " | "))
	}
	return rows, nil
}

func generateVideo(path string) error {
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1000k", "-maxrate", "1000k", "-bufsize", "1000k",
		"-x264-params", "nal-hrd=cbr", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", "-f", "flv", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("generating %s: %v: %s", path, err, out)
	}
	return nil
}

// fileBitrate is the media bytes of an FLV over its duration, in bit/s.
func fileBitrate(path string) (float64, error) {
	frames, err := bench.ReadFLV(path)
	if err != nil {
		return 0, err
	}
	var bytes int64
	var last uint32
	for _, f := range frames {
		bytes += int64(len(f.Payload))
		last = max(last, f.Timestamp)
	}
	if last == 0 {
		return 0, errors.New("the video has no duration")
	}
	return float64(bytes) * 8 / (float64(last) / 1000), nil
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
