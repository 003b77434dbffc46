package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// loadFlags are the flags the publish and many-streams loads share.
type loadFlags struct {
	runs       *int
	d          *time.Duration
	bitrate    *float64
	kinds      *string
	out        *string
	server     *string
	srs        *string
	originPort *int
	edgePort   *int
}

func addLoadFlags(fs *flag.FlagSet, out string) loadFlags {
	return loadFlags{
		runs:       fs.Int("runs", 3, "alternating runs of each set-up"),
		d:          fs.Duration("d", 20*time.Second, "measurement window of a run"),
		bitrate:    fs.Float64("bitrate", 1.16e6, "bit rate of each synthetic stream (30 fps, a keyframe every 2 s, audio)"),
		kinds:      fs.String("kinds", "ours,nginx-rtmp", "set-ups to compare: ours, nginx-rtmp, srs (srs is added when -srs is given)"),
		out:        fs.String("out", out, "directory for logs, JSON, tables and plots"),
		server:     fs.String("server", "bin/rtmpedge", "our server binary"),
		srs:        fs.String("srs", "", "SRS binary (e.g. ../shared/peers/srs): adds the set-up srs"),
		originPort: fs.Int("origin-port", 19450, "origin port"),
		edgePort:   fs.Int("edge-port", 19451, "edge port"),
	}
}

// sets resolves the flags to the environment and the set-ups to run.
func (f loadFlags) sets(fs *flag.FlagSet) (bench.Env, []bench.ServerSet, error) {
	srv, err := ourServer(*f.out, *f.server)
	if err != nil {
		return bench.Env{}, nil, err
	}
	env := bench.Env{Server: srv, Bitrate: *f.bitrate, OriginPort: *f.originPort, EdgePort: *f.edgePort}
	all := map[string]bench.ServerSet{"ours": env.OursSet("ours", 350*time.Millisecond), "nginx-rtmp": env.NginxSet()}
	if *f.srs != "" {
		all["srs"] = env.SRSSet("srs", *f.srs, 350*time.Millisecond, "")
		addSRS(fs, f.kinds)
	}
	sets, err := pick(all, *f.kinds)
	if err != nil {
		return env, nil, err
	}
	return env, sets, nil
}

// ingest runs the publish loads side by side: synthetic publishers into
// an origin (ingest), and into an edge that forwards every stream to an
// origin (forward: our edge, nginx-rtmp's push, SRS's edge), alternating
// the set-ups, N runs.
func ingest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	lf := addLoadFlags(fs, "bench-out/ingest")
	publishers := fs.Int("publishers", 30, "publishers")
	ramp := fs.Float64("ramp", 15, "publishers started per second (15: 30 publishers' keyframes spread over a 2 s GOP)")
	settle := fs.Duration("settle", 3*time.Second, "wait after the last publisher was accepted, before the window")
	loads := fs.String("loads", "ingest,forward", "loads: ingest (into the origin), forward (into an edge)")
	_ = fs.Parse(args)
	env, sets, err := lf.sets(fs)
	if err != nil {
		return err
	}
	fmt.Printf("%d publishers of %.2f Mbit/s; %d runs of %s; machine: %d cores, load %s\n", *publishers, *lf.bitrate/1e6, *lf.runs, *lf.d, numCPU(), loadAvg())
	results := map[string][]bench.IngestResult{} // by load/set-up
	var order []string
	for run := 1; run <= *lf.runs; run++ {
		for _, load := range strings.Split(*loads, ",") {
			role := bench.NoEdge
			switch load {
			case "ingest":
			case "forward":
				role = bench.PushEdge
			default:
				return fmt.Errorf("unknown load %q", load)
			}
			for _, set := range sets {
				key := load + "/" + set.Name
				fmt.Printf("== run %d/%d: %s (load %s)\n", run, *lf.runs, key, loadAvg())
				r, err := env.RunIngest(ctx, set, bench.IngestDir(*lf.out, set.Name, role == bench.PushEdge, run), bench.IngestConfig{
					Publishers: *publishers, Bitrate: *lf.bitrate, Ramp: *ramp, Settle: *settle, Duration: *lf.d, Role: role, Progress: os.Stdout,
				})
				if err != nil {
					return err
				}
				fmt.Printf("   %s: %.1f Mbit/s, %.2f CPU-s/GB, peak RSS %.1f MB, failed %d, harness %.2f cores\n", key, r.Mbps, r.CPUPerGB, r.Server.PeakRSSMB, r.Failed, r.HarnessCores)
				if run == 1 {
					order = append(order, key)
				}
				results[key] = append(results[key], r)
			}
		}
	}
	report := ingestReport(order, results, *publishers, *lf.bitrate, *lf.runs)
	fmt.Println(report)
	if err := os.WriteFile(filepath.Join(*lf.out, "results.md"), []byte(report), 0o644); err != nil {
		return err
	}
	if err := bench.WriteJSON(filepath.Join(*lf.out, "results.json"), results); err != nil {
		return err
	}
	return ingestPlots(*lf.out, order, results, *lf.runs)
}

// loadAvg is the machine's 1-minute load average, as /proc/loadavg says.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func medianIngest(rs []bench.IngestResult, f func(bench.IngestResult) float64) float64 {
	wrapped := make([]bench.Result, len(rs))
	for i := range rs {
		wrapped[i].CPUPerGB = f(rs[i])
	}
	return bench.Median(wrapped, func(r bench.Result) float64 { return r.CPUPerGB })
}

// ingestReport is the Markdown of the publish loads: a table per load and
// the ratios to the targets, per run and of the medians.
func ingestReport(order []string, results map[string][]bench.IngestResult, publishers int, bitrate float64, runs int) string {
	var b strings.Builder
	gop := float64(publishers) * bench.GOPBytes(bitrate) / 1e6
	for _, load := range []string{"ingest", "forward"} {
		var rows [][]string
		for _, key := range order {
			if !strings.HasPrefix(key, load+"/") {
				continue
			}
			rs := results[key]
			med := func(f func(bench.IngestResult) float64) float64 { return medianIngest(rs, f) }
			row := []string{strings.TrimPrefix(key, load+"/"),
				fmt.Sprintf("%.0f", med(func(r bench.IngestResult) float64 { return float64(r.Failed) })),
				fmt.Sprintf("%.1f", med(func(r bench.IngestResult) float64 { return r.Mbps })),
				fmt.Sprintf("%.2f", med(func(r bench.IngestResult) float64 { return r.CPUPerGB })),
				fmt.Sprintf("%.1f", med(func(r bench.IngestResult) float64 { return r.Server.PeakRSSMB })),
				fmt.Sprintf("%.1f / %.1f", med(func(r bench.IngestResult) float64 { return r.Server.AnonMB }), med(func(r bench.IngestResult) float64 { return r.Server.FileMB })),
			}
			if load == "forward" {
				row = append(row, fmt.Sprintf("%.2f", med(func(r bench.IngestResult) float64 { return r.OriginCPUPerGB })),
					fmt.Sprintf("%.0f", med(func(r bench.IngestResult) float64 { return float64(r.Upstreams) })))
			}
			row = append(row, fmt.Sprintf("%.2f", med(func(r bench.IngestResult) float64 { return r.HarnessCores })))
			rows = append(rows, row)
		}
		if len(rows) == 0 {
			continue
		}
		head := []string{"set-up", "failed", "ingested Mbit/s", "CPU-s per GB", "peak RSS MB", "RSS anon / file MB at end"}
		what := "the origin"
		if load == "forward" {
			head = append(head, "origin CPU-s per GB", "edge's connections to the origin")
			what = "the edge"
		}
		head = append(head, "harness cores")
		fmt.Fprintf(&b, "### %s: %d publishers, %.2f Mbit/s each, %s measured, medians of %d alternating runs\n\n", load, publishers, bitrate/1e6, what, runs)
		b.WriteString(bench.Markdown(head, rows))
		b.WriteString("\n")
		b.WriteString(ingestRatios(load, results, runs, gop))
	}
	return b.String()
}

// ingestRatios is the table of ours against the others per run, with the
// targets of issue 12.
func ingestRatios(load string, results map[string][]bench.IngestResult, runs int, gop float64) string {
	ours := results[load+"/ours"]
	type ratio struct {
		name, other, target string
		f                   func(o, x bench.IngestResult) float64
	}
	cpu := func(o, x bench.IngestResult) float64 { return o.CPUPerGB / x.CPUPerGB }
	var rs []ratio
	for _, other := range []string{"nginx-rtmp", "srs"} {
		if len(results[load+"/"+other]) == 0 {
			continue
		}
		target := "-"
		if other == "nginx-rtmp" {
			target = map[string]string{"ingest": "<= 0.8", "forward": "<= 1.0"}[load]
		}
		rs = append(rs, ratio{"CPU/GB ours / " + other, other, target, cpu})
		if other == "nginx-rtmp" && load == "ingest" {
			rs = append(rs, ratio{fmt.Sprintf("peak RSS ours / (nginx-rtmp + GOP caches %.1f MB)", gop), other, "<= 1",
				func(o, x bench.IngestResult) float64 { return o.Server.PeakRSSMB / (x.Server.PeakRSSMB + gop) }})
		}
	}
	if len(ours) == 0 || len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	head := []string{"ratio", "target"}
	for i := range runs {
		head = append(head, fmt.Sprintf("run %d", i+1))
	}
	head = append(head, "of the medians")
	var rows [][]string
	for _, r := range rs {
		other := results[load+"/"+r.other]
		row := []string{r.name, r.target}
		for i := range runs {
			if i < len(ours) && i < len(other) {
				row = append(row, fmt.Sprintf("%.2f", r.f(ours[i], other[i])))
			} else {
				row = append(row, "-")
			}
		}
		mo := bench.IngestResult{CPUPerGB: medianIngest(ours, func(x bench.IngestResult) float64 { return x.CPUPerGB }),
			Server: bench.Usage{PeakRSSMB: medianIngest(ours, func(x bench.IngestResult) float64 { return x.Server.PeakRSSMB })}}
		mx := bench.IngestResult{CPUPerGB: medianIngest(other, func(x bench.IngestResult) float64 { return x.CPUPerGB }),
			Server: bench.Usage{PeakRSSMB: medianIngest(other, func(x bench.IngestResult) float64 { return x.Server.PeakRSSMB })}}
		rows = append(rows, append(row, fmt.Sprintf("%.2f", r.f(mo, mx))))
	}
	b.WriteString(bench.Markdown(head, rows))
	b.WriteString("\n")
	return b.String()
}

// ingestPlots draws each load's CPU per GB, one bar per set-up and run.
func ingestPlots(out string, order []string, results map[string][]bench.IngestResult, runs int) error {
	for _, load := range []string{"ingest", "forward"} {
		var names []string
		var values [][]float64
		for _, key := range order {
			if !strings.HasPrefix(key, load+"/") {
				continue
			}
			names = append(names, strings.TrimPrefix(key, load+"/"))
			var v []float64
			for _, r := range results[key] {
				v = append(v, r.CPUPerGB)
			}
			values = append(values, v)
		}
		if len(names) == 0 {
			continue
		}
		var groups []string
		for i := range runs {
			groups = append(groups, fmt.Sprintf("run %d", i+1))
		}
		what := map[string]string{"ingest": "origin CPU-s per GB ingested", "forward": "edge CPU-s per GB forwarded"}[load]
		if err := bench.PlotGroupedBars(groups, names, values, what, "CPU-s/GB", filepath.Join(out, load+"-cpu.png")); err != nil {
			return err
		}
	}
	return nil
}

// streams runs the long tail side by side: S streams x P players on one
// edge pulling from one origin, S synthetic publishers on the origin, for
// each shape and set-up, alternating, N runs.
func streams(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("streams", flag.ExitOnError)
	lf := addLoadFlags(fs, "bench-out/streams")
	shapes := fs.String("shapes", "200x5,50x20", "streams x players per stream, comma-separated")
	ramp := fs.Float64("ramp", 250, "players started per second (going round the streams)")
	pubRamp := fs.Float64("publisher-ramp", 100, "publishers started per second")
	settle := fs.Duration("settle", 3*time.Second, "wait after the last publisher was accepted, before the players")
	_ = fs.Parse(args)
	env, sets, err := lf.sets(fs)
	if err != nil {
		return err
	}
	type shape struct{ streams, players int }
	var shs []shape
	for _, sh := range strings.Split(*shapes, ",") {
		var s shape
		if _, err := fmt.Sscanf(strings.TrimSpace(sh), "%dx%d", &s.streams, &s.players); err != nil || s.streams < 1 || s.players < 1 {
			return fmt.Errorf("shape %q: want STREAMSxPLAYERS", sh)
		}
		shs = append(shs, s)
	}
	fmt.Printf("streams of %.2f Mbit/s; %d runs of %s; machine: %d cores, load %s\n", *lf.bitrate/1e6, *lf.runs, *lf.d, numCPU(), loadAvg())
	results := map[string][]bench.StreamsResult{} // by shape/set-up
	var order []string
	for run := 1; run <= *lf.runs; run++ {
		for _, sh := range shs {
			for _, set := range sets {
				key := fmt.Sprintf("%dx%d/%s", sh.streams, sh.players, set.Name)
				fmt.Printf("== run %d/%d: %s (load %s)\n", run, *lf.runs, key, loadAvg())
				r, err := env.RunStreams(ctx, set, bench.StreamsDir(*lf.out, set.Name, sh.streams, sh.players, run), bench.StreamsConfig{
					Streams: sh.streams, PlayersPerStream: sh.players, Bitrate: *lf.bitrate, PublisherRamp: *pubRamp, Ramp: *ramp,
					Settle: *settle, Duration: *lf.d, Progress: os.Stdout,
				})
				if err != nil {
					return err
				}
				bench.WriteSummary(os.Stdout, []bench.Result{r.Load})
				fmt.Printf("   origin %.2f CPU-s/GB; edge RSS %.1f -> %.1f MB, %.0f KiB per stream (%.0f beyond a GOP); upstreams %d of %d\n",
					r.OriginCPUPerGB, r.EdgeBaseMB, r.EdgeEndMB, r.RSSPerStreamKiB, r.BeyondGOPKiB, upstreams(r), sh.streams)
				if run == 1 {
					order = append(order, key)
				}
				results[key] = append(results[key], r)
			}
		}
	}
	report := streamsReport(order, results, *lf.bitrate, *lf.runs)
	fmt.Println(report)
	if err := os.WriteFile(filepath.Join(*lf.out, "results.md"), []byte(report), 0o644); err != nil {
		return err
	}
	if err := bench.WriteJSON(filepath.Join(*lf.out, "results.json"), results); err != nil {
		return err
	}
	return streamsPlots(*lf.out, order, results)
}

func upstreams(r bench.StreamsResult) int {
	if r.Load.Server == nil {
		return 0
	}
	return r.Load.Server.Upstreams
}

func medianStreams(rs []bench.StreamsResult, f func(bench.StreamsResult) float64) float64 {
	wrapped := make([]bench.Result, len(rs))
	for i := range rs {
		wrapped[i].CPUPerGB = f(rs[i])
	}
	return bench.Median(wrapped, func(r bench.Result) float64 { return r.CPUPerGB })
}

// streamsReport is the Markdown of the many-streams loads: one table for
// all shapes, and the ratios to the targets per run.
func streamsReport(order []string, results map[string][]bench.StreamsResult, bitrate float64, runs int) string {
	var rows [][]string
	for _, key := range order {
		rs := results[key]
		med := func(f func(bench.StreamsResult) float64) float64 { return medianStreams(rs, f) }
		shape, name, _ := strings.Cut(key, "/")
		rows = append(rows, []string{shape, name,
			fmt.Sprintf("%.2f", med(func(r bench.StreamsResult) float64 { return r.Load.CPUPerGB })),
			fmt.Sprintf("%.2f", med(func(r bench.StreamsResult) float64 { return r.OriginCPUPerGB })),
			fmt.Sprintf("%.1f", med(func(r bench.StreamsResult) float64 { return peakRSS(r) })),
			fmt.Sprintf("%.0f", med(func(r bench.StreamsResult) float64 { return r.RSSPerStreamKiB })),
			fmt.Sprintf("%.0f", med(func(r bench.StreamsResult) float64 { return r.BeyondGOPKiB })),
			fmt.Sprintf("%.0f of %d", med(func(r bench.StreamsResult) float64 { return float64(upstreams(r)) }), rs[0].Streams),
			fmt.Sprintf("%.1f / %.0f", med(func(r bench.StreamsResult) float64 { return r.Load.FirstKeyP50 }), med(func(r bench.StreamsResult) float64 { return r.Load.FirstKeyP99 })),
			fmt.Sprintf("%.0f%%", med(func(r bench.StreamsResult) float64 { return r.Load.PerPlayer * 1e6 / bitrate * 100 })),
			fmt.Sprintf("%.0f", med(func(r bench.StreamsResult) float64 { return float64(r.Load.Failed) })),
			fmt.Sprintf("%.0f", med(func(r bench.StreamsResult) float64 { return float64(r.Load.Stalls) })),
			fmt.Sprintf("%.2f", med(func(r bench.StreamsResult) float64 { return r.Load.HarnessCores })),
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Many streams: %.2f Mbit/s each, one edge pulling from one origin, medians of %d alternating runs\n\n", bitrate/1e6, runs)
	b.WriteString(bench.Markdown([]string{"streams x players", "set-up", "edge CPU-s per GB delivered", "origin CPU-s per GB", "edge peak RSS MB",
		"edge RSS per stream KiB", "beyond a GOP KiB", "upstreams", "first keyframe p50 / p99 ms", "stream received per player", "failed", "stalls", "harness cores"}, rows))
	b.WriteString(fmt.Sprintf("\nA GOP of a stream is %.0f KiB. RSS per stream: the edge's RSS at the window's end less its RSS before any stream, over the streams.\n\n", bench.GOPBytes(bitrate)/1024))

	head := []string{"ratio", "target"}
	for i := range runs {
		head = append(head, fmt.Sprintf("run %d", i+1))
	}
	var ratios [][]string
	for _, key := range order {
		shape, name, _ := strings.Cut(key, "/")
		if name != "ours" {
			continue
		}
		ours := results[key]
		for _, other := range []string{"srs", "nginx-rtmp"} {
			x := results[shape+"/"+other]
			if len(x) == 0 {
				continue
			}
			target := "-"
			if shape == "200x5" {
				target = map[string]string{"srs": "<= 0.7", "nginx-rtmp": "<= 0.25"}[other]
			}
			row := []string{shape + " edge CPU/GB ours / " + other, target}
			for i := range runs {
				if i < len(ours) && i < len(x) && x[i].Load.CPUPerGB > 0 {
					row = append(row, fmt.Sprintf("%.2f", ours[i].Load.CPUPerGB/x[i].Load.CPUPerGB))
				} else {
					row = append(row, "-")
				}
			}
			ratios = append(ratios, row)
		}
		row := []string{shape + " ours: edge RSS per stream beyond a GOP, KiB", "<= 64"}
		for i := range runs {
			if i < len(ours) {
				row = append(row, fmt.Sprintf("%.0f", ours[i].BeyondGOPKiB))
			} else {
				row = append(row, "-")
			}
		}
		ratios = append(ratios, row)
	}
	if len(ratios) > 0 {
		b.WriteString(bench.Markdown(head, ratios))
	}
	return b.String()
}

func peakRSS(r bench.StreamsResult) float64 {
	if r.Load.Server == nil {
		return 0
	}
	return r.Load.Server.PeakRSSMB
}

// streamsPlots draws the edge's and the origin's CPU per GB and the edge's
// RSS per stream, a group of bars per shape (medians).
func streamsPlots(out string, order []string, results map[string][]bench.StreamsResult) error {
	var shapes, names []string
	for _, key := range order {
		shape, name, _ := strings.Cut(key, "/")
		if !contains(shapes, shape) {
			shapes = append(shapes, shape)
		}
		if !contains(names, name) {
			names = append(names, name)
		}
	}
	for _, p := range []struct {
		file, title, unit string
		f                 func(bench.StreamsResult) float64
	}{
		{"streams-edge-cpu.png", "edge CPU-s per GB delivered (median)", "CPU-s/GB", func(r bench.StreamsResult) float64 { return r.Load.CPUPerGB }},
		{"streams-origin-cpu.png", "origin CPU-s per GB (median)", "CPU-s/GB", func(r bench.StreamsResult) float64 { return r.OriginCPUPerGB }},
		{"streams-rss.png", "edge RSS per stream (median)", "KiB", func(r bench.StreamsResult) float64 { return r.RSSPerStreamKiB }},
	} {
		values := make([][]float64, len(names))
		for i, name := range names {
			for _, shape := range shapes {
				values[i] = append(values[i], medianStreams(results[shape+"/"+name], p.f))
			}
		}
		if err := bench.PlotGroupedBars(shapes, names, values, p.title, p.unit, filepath.Join(out, p.file)); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
