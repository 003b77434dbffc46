package bench

import (
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotSoak draws the servers' RSS, goroutines and fds over the soak, one
// panel each, with the kills of the first origin (grey) and the end of the
// warm-up (teal) marked and the edge's least-squares line after the
// warm-up (dotted), and the cores other processes took, into a PNG at path.
func PlotSoak(r *SoakResult, path string) error {
	panels := []struct {
		title, unit string
		get         func(*SoakProcSample) float64
	}{
		{"RSS", "MB", func(p *SoakProcSample) float64 { return p.RSSMB }},
		{"goroutines", "goroutines", func(p *SoakProcSample) float64 { return float64(p.Goroutines) }},
		{"open fds", "fds", func(p *SoakProcSample) float64 { return float64(p.FDs) }},
	}
	var kills []float64
	for _, e := range r.Events {
		if e.Kind == "kill origin1" {
			kills = append(kills, e.T/60)
		}
	}
	var plots [][]*plot.Plot
	for _, pn := range panels {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s over the soak (%d players, origin 1 killed every %s)", pn.title, r.Players, time.Duration(r.KillEveryS*float64(time.Second)))
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = pn.unit
		lo, hi := 0.0, 1.0
		first := true
		for i, srv := range []string{"edge", "origin2", "origin1"} {
			// origin1 restarts: one line per life, so its gaps show.
			var lines []plotter.XYs
			var cur plotter.XYs
			for _, sm := range r.Samples {
				ps := map[string]*SoakProcSample{"edge": sm.Edge, "origin1": sm.Origin1, "origin2": sm.Origin2}[srv]
				if ps == nil || (pn.title == "goroutines" && ps.Goroutines < 0) {
					if len(cur) > 0 {
						lines, cur = append(lines, cur), nil
					}
					continue
				}
				v := pn.get(ps)
				if first {
					lo, hi, first = v, v, false
				}
				lo, hi = min(lo, v), max(hi, v)
				cur = append(cur, plotter.XY{X: sm.T / 60, Y: v})
			}
			if len(cur) > 0 {
				lines = append(lines, cur)
			}
			for j, xys := range lines {
				l, err := plotter.NewLine(xys)
				if err != nil {
					return fmt.Errorf("plot: %w", err)
				}
				l.Color = plotutil.Color(i)
				l.Dashes = plotutil.Dashes(i)
				l.Width = vg.Points(1.2)
				p.Add(l)
				if j == 0 {
					p.Legend.Add(srv, l)
				}
			}
		}
		for _, sl := range r.Slopes {
			if sl.Server != "edge" || sl.Metric != map[string]string{"RSS": "rss_mb", "goroutines": "goroutines", "open fds": "fds"}[pn.title] || sl.N < 3 {
				continue
			}
			// The fitted line passes through the mean at the mean time.
			var tm float64
			n := 0
			for _, sm := range r.Samples {
				if sm.Edge != nil && sm.T >= r.WarmupS {
					tm += sm.T / 3600
					n++
				}
			}
			tm /= float64(n)
			x0, x1 := r.WarmupS/3600, r.Samples[len(r.Samples)-1].T/3600
			fit, _ := plotter.NewLine(plotter.XYs{
				{X: x0 * 60, Y: sl.Mean + sl.PerHour*(x0-tm)},
				{X: x1 * 60, Y: sl.Mean + sl.PerHour*(x1-tm)}})
			fit.Color = color.Black
			fit.Width = vg.Points(1.5)
			fit.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
			p.Add(fit)
			p.Legend.Add(fmt.Sprintf("edge fit %+.2f/h", sl.PerHour), fit)
		}
		pad := (hi - lo) * 0.05
		marks := []struct {
			xs  []float64
			col color.Color
			lab string
		}{{kills, color.RGBA{R: 90, G: 90, B: 90, A: 255}, "origin 1 killed"}, {[]float64{r.WarmupS / 60}, color.RGBA{B: 200, G: 160, A: 255}, "end of warm-up"}}
		for _, m := range marks {
			for j, x := range m.xs {
				l, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo - pad}, {X: x, Y: hi + pad}})
				if err != nil {
					return fmt.Errorf("plot: %w", err)
				}
				l.Color = m.col
				l.Width = vg.Points(0.8)
				p.Add(l)
				if j == 0 {
					p.Legend.Add(m.lab, l)
				}
			}
		}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		p.BackgroundColor = color.White
		plots = append(plots, []*plot.Plot{p})
	}
	// The machine: what other processes took (a stall with the cores taken
	// is the machine's).
	m := plot.New()
	m.Title.Text = "cores taken by processes outside the soak"
	m.X.Label.Text = "minutes"
	m.Y.Label.Text = "cores"
	for i, c := range []struct {
		name string
		get  func(SoakSample) float64
	}{{"others at nice 0", func(s SoakSample) float64 { return s.OthersCores }}, {"niced (fuzzers)", func(s SoakSample) float64 { return s.NicedCores }}} {
		xys := make(plotter.XYs, len(r.Samples))
		for j, sm := range r.Samples {
			xys[j] = plotter.XY{X: sm.T / 60, Y: c.get(sm)}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		l.Color = plotutil.Color(i + 3)
		m.Add(l)
		m.Legend.Add(c.name, l)
	}
	m.Legend.Top, m.Legend.Left = true, true
	m.Add(plotter.NewGrid())
	m.BackgroundColor = color.White
	plots = append(plots, []*plot.Plot{m})
	img := vgimg.New(11*vg.Inch, 15*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	return savePNG(img, path)
}
