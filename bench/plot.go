package bench

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotTimeline draws throughput and lag p99 over time, one line per run,
// into a PNG at path.
func PlotTimeline(results []Result, title, path string) error {
	thr := plot.New()
	thr.Title.Text = title + ": throughput"
	thr.X.Label.Text = "seconds"
	thr.Y.Label.Text = "Mbit/s delivered"
	lag := plot.New()
	lag.Title.Text = title + ": lag p99"
	lag.X.Label.Text = "seconds"
	lag.Y.Label.Text = "ms behind"
	for i, r := range results {
		tp := make(plotter.XYs, len(r.Samples))
		lp := make(plotter.XYs, len(r.Samples))
		for j, s := range r.Samples {
			tp[j] = plotter.XY{X: s.T, Y: s.Mbps}
			lp[j] = plotter.XY{X: s.T, Y: s.LagP99}
		}
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("run %d", i+1)
		}
		for _, pl := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{thr, tp}, {lag, lp}} {
			line, err := plotter.NewLine(pl.xys)
			if err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			line.Color = plotutil.Color(i)
			line.Dashes = plotutil.Dashes(i / 7)
			line.Width = vg.Points(1.5)
			pl.p.Add(line)
			pl.p.Legend.Add(name, line)
		}
	}
	for _, p := range []*plot.Plot{thr, lag} {
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		p.BackgroundColor = color.White
	}
	img := vgimg.New(10*vg.Inch, 8*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{thr}, {lag}}, tiles, dc)
	thr.Draw(canvases[0][0])
	lag.Draw(canvases[1][0])
	return savePNG(img, path)
}

// PlotBars draws one value per labelled bar into a PNG at path.
func PlotBars(labels []string, values []float64, title, ylabel, path string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	bars, err := plotter.NewBarChart(plotter.Values(values), vg.Points(40))
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(labels...)
	p.BackgroundColor = color.White
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

// PlotScaling draws CPU seconds per GB against the number of players, one
// line per server.
func PlotScaling(series map[string]plotter.XYs, title, path string) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "players"
	p.Y.Label.Text = "CPU-s per GB delivered"
	i := 0
	for _, name := range sortedKeys(series) {
		line, points, err := plotter.NewLinePoints(series[name])
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(name, line, points)
		i++
	}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// PlotGroupedBars draws, for each group (a label on the x axis), one bar per
// series, side by side, into a PNG at path. values[s][g] is series s's
// value in group g.
func PlotGroupedBars(groups, series []string, values [][]float64, title, ylabel, path string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	w := vg.Points(min(40, 240/float64(max(len(series), 1))))
	for i, name := range series {
		bars, err := plotter.NewBarChart(plotter.Values(values[i]), w)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(float64(i)-float64(len(series)-1)/2)
		p.Add(bars)
		p.Legend.Add(name, bars)
	}
	top := 0.0
	for _, v := range values {
		for _, x := range v {
			top = max(top, x)
		}
	}
	p.Y.Min, p.Y.Max = 0, top*1.3 // room for the legend above the bars
	p.Legend.Top = true
	p.NominalX(groups...)
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}
