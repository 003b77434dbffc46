package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteSummary prints one row per result.
func WriteSummary(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tplayers\treceived\tfailed\tMbit/s\tper player\thandshake p50\tfirst key p50\tp99\tlag p50\tp99\tstalls\tCPU-s/GB\tpeak RSS MB\tupstreams\tharness cores\t")
	for _, r := range results {
		cpu, rss, up := "-", "-", "-"
		if r.Server != nil {
			cpu = fmt.Sprintf("%.2f", r.CPUPerGB)
			rss = fmt.Sprintf("%.1f", r.Server.PeakRSSMB)
			up = fmt.Sprint(r.Server.Upstreams)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%.3f\t%.1fms\t%.1fms\t%.1fms\t%.0fms\t%.0fms\t%d\t%s\t%s\t%s\t%.2f\t\n",
			r.Name, r.Players, r.Received, r.Failed, r.Mbps, r.PerPlayer, r.HandshakeP50, r.FirstKeyP50, r.FirstKeyP99,
			r.LagP50, r.LagP99, r.Stalls, cpu, rss, up, r.HarnessCores)
	}
	tw.Flush()
	for _, r := range results {
		for _, reason := range r.Reasons {
			fmt.Fprintf(w, "%s: %s\n", r.Name, reason)
		}
	}
}

// WriteJSON writes v as indented JSON to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Median returns the median of f over results.
func Median(results []Result, f func(Result) float64) float64 {
	v := make([]float64, len(results))
	for i, r := range results {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Markdown renders rows as a Markdown table.
func Markdown(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}
