package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// clusterCold measures what the origin cluster's stream registry adds to a
// cold edge's first keyframe: N cold starts (bench.ColdStart: fresh origin
// and edge, the origin fed for 3 s, then the edge's first player) of our
// origin + edge without and with the registry, alternating, side by side.
func clusterCold(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	n := fs.Int("n", 30, "cold starts of each set-up")
	rf := addRunFlags(fs, "bench-out/cluster", "bin/rtmpedge")
	originPort := fs.Int("origin-port", 19450, "origin port")
	edgePort := fs.Int("edge-port", 19451, "edge port")
	_ = fs.Parse(args)

	env, err := rf.env()
	if err != nil {
		return err
	}
	env.OriginPort, env.EdgePort = *originPort, *edgePort
	out := *rf.out
	kinds := []bench.Kind{env.OursClusterKind("without registry", false), env.OursClusterKind("with registry", true)}
	fmt.Printf("cold edge, first player's first keyframe: %d cold starts of each set-up, alternating; machine: %d cores\n", *n, numCPU())
	ms := map[string][]float64{}
	for i := range *n {
		for _, k := range kinds {
			dir := filepath.Join(out, fmt.Sprintf("%s-%02d", strings.ReplaceAll(k.Name, " ", "-"), i))
			v, err := bench.ColdStart(ctx, k, dir, 1)
			if err != nil {
				return fmt.Errorf("%s: %w", k.Name, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ms[k.Name] = append(ms[k.Name], v...)
			fmt.Printf("   %d/%d %s: %v ms\n", i+1, *n, k.Name, v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Cold edge, first player's first keyframe (%s, %d cold starts each, alternating, %d cores)\n\n",
		time.Now().Format("2006-01-02"), *n, numCPU())
	b.WriteString("| set-up | samples | p50 ms | p90 ms | min ms | max ms |\n| --- | --- | --- | --- | --- | --- |\n")
	p50 := map[string]float64{}
	for _, k := range kinds {
		v := slices.Sorted(slices.Values(ms[k.Name]))
		if len(v) == 0 {
			return fmt.Errorf("%s: no player got a keyframe", k.Name)
		}
		p50[k.Name] = quantile(v, 0.5)
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", k.Name, len(v), p50[k.Name], quantile(v, 0.9), v[0], v[len(v)-1])
	}
	fmt.Fprintf(&b, "\nThe registry lookup adds %.1f ms at p50 (target: at most 5 ms).\n", p50[kinds[1].Name]-p50[kinds[0].Name])
	fmt.Print("\n" + b.String())
	if err := os.WriteFile(filepath.Join(out, "cluster-cold.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return bench.WriteJSON(filepath.Join(out, "cluster-cold.json"), map[string]any{"first_keyframe_ms": ms, "p50_ms": p50})
}

// quantile returns the q quantile of sorted v (nearest rank below).
func quantile(v []float64, q float64) float64 {
	return v[int(q*float64(len(v)-1))]
}
