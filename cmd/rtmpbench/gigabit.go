package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// extraFlag collects -ours-extra NAME=YAML values.
type extraFlag []string

func (f *extraFlag) String() string     { return strings.Join(*f, "; ") }
func (f *extraFlag) Set(v string) error { *f = append(*f, v); return nil }

var extraName = regexp.MustCompile(`^([A-Za-z0-9._-]+)=(.*)$`)

// gigabit runs the edges behind a link shaped to 1 Gbit/s: servers in one
// network namespace, players in another, for each set-up and player count.
func gigabit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gigabit", flag.ExitOnError)
	playersFlag := fs.String("players", "800,1000", "player counts, one load each per set-up")
	d := fs.Duration("d", 20*time.Second, "measurement window of a load")
	ramp := fs.Float64("ramp", 200, "players started per second")
	rf := addRunFlags(fs, "gigabit-out", "bin/rtmpedge")
	srs := fs.String("srs", "", "SRS binary (e.g. ../shared/peers/srs): adds the set-up srs (mw_latency 350 ms)")
	kinds := fs.String("kinds", "", "set-ups, comma-separated (default: ours-350ms, nginx-rtmp, srs with -srs, then each -ours-extra)")
	var extras extraFlag
	fs.Var(&extras, "ours-extra", "NAME=YAML: a set-up of ours (merged_write 350ms) with YAML merged into the edge's config,\n"+
		"e.g. 'ours-cap900=capacity: {max_egress: 900Mbit}' or 'ours-bl5=vhost_defaults: {player_backlog: 5s}' (repeatable)")
	originPort := fs.Int("origin-port", 19460, "origin port (in the server namespace)")
	edgePort := fs.Int("edge-port", 19461, "edge port (in the server namespace, on the link's server address)")
	rate := fs.String("rate", "1gbit", "tbf rate of the link (server to players)")
	burst := fs.String("burst", "1mb", "tbf bucket (1mb: 8 ms at 1 Gbit/s, many GSO packets, so tbf never splits one)")
	sysctls := fs.String("sysctl", "", "KEY=VALUE,... sysctls of the server namespace, for every set-up (e.g. net.ipv4.tcp_slow_start_after_idle=0)")
	latency := fs.String("latency", "50ms", "tbf queue limit as time at the rate (50ms: a 7 MB queue at 1 Gbit/s; a 350 ms burst of 100 players fits)")
	_ = fs.Parse(args)

	if os.Geteuid() != 0 {
		return errors.New("gigabit: network namespaces need root")
	}
	for _, tool := range []string{"ip", "tc", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("gigabit: %w", err)
		}
	}
	var counts []int
	for _, s := range strings.Split(*playersFlag, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n <= 0 {
			return fmt.Errorf("gigabit: -players %q: bad count %q", *playersFlag, s)
		}
		counts = append(counts, n)
	}
	env, err := rf.env()
	if err != nil {
		return err
	}
	self, bitrate, out := env.Bench, env.Bitrate, *rf.out

	if removed, err := bench.CleanStaleLinks(); err != nil {
		fmt.Fprintln(os.Stderr, "gigabit: cleaning stale namespaces:", err)
	} else if len(removed) > 0 {
		fmt.Println("removed stale namespaces:", strings.Join(removed, " "))
	}
	shape := bench.Shape{Rate: *rate, Burst: *burst, Latency: *latency}
	if *sysctls != "" {
		shape.ServerSysctls = strings.Split(*sysctls, ",")
	}
	link, err := bench.NewLink(os.Getpid(), shape)
	if err != nil {
		return err
	}
	defer func() {
		if err := link.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "gigabit:", err)
		}
	}()
	fmt.Printf("link %s (%s) -> %s (%s): tbf rate %s burst %s latency %s\n", link.Server, link.ServerIP, link.Client, link.ClientIP, *rate, *burst, *latency)
	fmt.Printf("stream %s: %.2f Mbit/s; players %v; window %s; machine: %d cores\n", env.Video, bitrate/1e6, counts, *d, numCPU())

	env.OriginPort, env.EdgePort, env.Netns, env.Host = *originPort, *edgePort, link.Server, link.ServerIP
	all := map[string]bench.Kind{
		"ours-350ms": env.OursKind("ours-350ms", 350*time.Millisecond),
		"ours-0ms":   env.OursKind("ours-0ms", 0),
		"nginx-rtmp": env.NginxKind(),
	}
	names := []string{"ours-350ms", "nginx-rtmp"}
	if *srs != "" {
		all["srs"] = env.SRSKind("srs", *srs, 350*time.Millisecond)
		names = append(names, "srs")
	}
	for i, x := range extras {
		name, yaml := fmt.Sprintf("ours-extra%d", i+1), x
		if m := extraName.FindStringSubmatch(x); m != nil {
			name, yaml = m[1], m[2]
		}
		e := env
		e.OursExtra = yaml
		all[name] = e.OursKind(name, 350*time.Millisecond)
		names = append(names, name)
	}
	if *kinds != "" {
		names = nil
		for _, k := range strings.Split(*kinds, ",") {
			names = append(names, strings.TrimSpace(k))
		}
	}
	var order []bench.Kind
	for _, n := range names {
		k, ok := all[n]
		if !ok {
			return fmt.Errorf("gigabit: unknown set-up %q", n)
		}
		if n == "nginx-rtmp" {
			if _, err := exec.LookPath("nginx"); err != nil {
				return fmt.Errorf("gigabit: nginx-rtmp: %w", err)
			}
		}
		order = append(order, k)
	}

	var results []bench.GigabitResult
	var failures []string
	save := func() error {
		return bench.WriteJSON(filepath.Join(out, "results.json"), map[string]any{
			"results": results, "failures": failures, "bitrate": bitrate, "shape": shape,
		})
	}
	for _, n := range counts {
		for _, k := range order {
			fmt.Printf("== %s with %d players\n", k.Name, n)
			dir := filepath.Join(out, fmt.Sprintf("%s-%d", k.Name, n))
			r, err := bench.RunGigabit(ctx, k, dir, bench.GigabitConfig{Link: link, Bench: self, Players: n, Ramp: *ramp, Duration: *d, Progress: os.Stdout})
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "gigabit:", err)
				failures = append(failures, err.Error())
				continue
			}
			bench.WriteSummary(os.Stdout, []bench.Result{r.Result})
			results = append(results, r)
			link := bench.Result{Name: "link via tc (frames; no lag)", Samples: r.LinkTimeline}
			if err := bench.PlotTimeline([]bench.Result{r.Result, link}, fmt.Sprintf("%s, %d players, %s link", k.Name, n, *rate),
				filepath.Join(out, fmt.Sprintf("%s-%d.png", k.Name, n))); err != nil {
				return err
			}
			if err := save(); err != nil {
				return err
			}
		}
	}
	report := gigabitTable(results, bitrate, shape)
	if len(failures) > 0 {
		report += "\nFailed loads:\n\n- " + strings.Join(failures, "\n- ") + "\n"
	}
	fmt.Println(report)
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(report), 0o644); err != nil {
		return err
	}
	if len(failures) > 0 {
		return fmt.Errorf("gigabit: %d loads failed", len(failures))
	}
	return nil
}

// gigabitTable renders one row per load.
func gigabitTable(results []bench.GigabitResult, bitrate float64, sh bench.Shape) string {
	var rows [][]string
	for _, r := range results {
		cpu, rss, ups := "-", "-", "-"
		if r.Server != nil {
			cpu = fmt.Sprintf("%.2f", r.CPUPerGB)
			rss = fmt.Sprintf("%.1f", r.Server.PeakRSSMB)
			ups = fmt.Sprint(r.Server.Upstreams)
		}
		failed := fmt.Sprint(r.Failed)
		if r.StillConnecting > 0 {
			failed += fmt.Sprintf(" (+%d never started)", r.StillConnecting)
		}
		refused := fmt.Sprint(r.Refused)
		if r.Refused > 0 {
			refused += fmt.Sprintf(" (p99 %.0f ms)", r.RefusedP99Ms)
		}
		rows = append(rows, []string{r.Name, fmt.Sprint(r.Players),
			fmt.Sprintf("%.0f (%.0f%%)", r.Mbps, r.Mbps*1e6/(float64(r.Players)*bitrate)*100),
			fmt.Sprintf("%.0f", r.LinkMbps),
			fmt.Sprintf("%d / %d", r.LinkDrops, r.LinkOverlimits),
			fmt.Sprintf("%.0f", r.MaxGapMs),
			fmt.Sprint(r.Stalls),
			fmt.Sprintf("%.0f / %d", r.RampMaxGapMs, r.RampStalls),
			fmt.Sprintf("%.0f / %.0f", r.LagP50, r.LagP99),
			cpu, rss,
			failed, refused,
			fmt.Sprintf("%d: %.1f%% / %.1f%%", r.Admitted, r.ShareMin*100, r.ShareP1*100),
			ups,
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Players behind a %s link (tbf burst %s, latency %s), %.2f Mbit/s stream\n\n", sh.Rate, sh.Burst, sh.Latency, bitrate/1e6)
	b.WriteString(bench.Markdown([]string{"set-up", "players", "delivered Mbit/s (of demand)", "link Mbit/s (frames)",
		"link drops / overlimits", "longest gap ms", "gaps > 500 ms", "ramp: longest gap ms / gaps > 500", "lag p50 / p99 ms", "edge CPU-s/GB", "edge peak RSS MB",
		"failed", "refused", "admitted: stream share min / p1", "upstreams"}, rows))
	b.WriteString("\nDelivered: RTMP bytes the players read in the window. Link: bytes the server side's qdisc sent " +
		"(Ethernet frames, TCP/IP headers and retransmissions included). Stream share: 1 - how far an admitted player " +
		"fell behind the stream between the freshest messages it got in the window's first and last 2 s, over the time between them. " +
		"Gaps (silences between two reads that brought bytes) are counted in the window; the ramp's, while the players joined, apart.\n")
	return b.String()
}
