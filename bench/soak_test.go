package bench

import (
	"math"
	"testing"
	"time"
)

func TestLeastSquares(t *testing.T) {
	x := []float64{0, 1, 2, 3, 4}
	y := []float64{10, 12, 14, 16, 18}
	slope, se := LeastSquares(x, y)
	if slope != 2 || se != 0 {
		t.Fatalf("slope %v ± %v, want 2 ± 0", slope, se)
	}
	y = []float64{10, 11, 10, 11, 10}
	if slope, se = LeastSquares(x, y); math.Abs(slope) > 1e-9 || se <= 0 {
		t.Fatalf("flat noisy line: slope %v ± %v", slope, se)
	}
	if _, se = LeastSquares(x[:2], y[:2]); !math.IsNaN(se) {
		t.Fatalf("two points: se %v, want NaN", se)
	}
}

func TestLiveWithin(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	spans := []liveSpan{{at(0), at(10)}, {at(15), at(40)}, {at(50), time.Time{}}}
	for _, c := range []struct {
		a, b float64
		want time.Duration
	}{
		{1, 2, time.Second},                 // inside a span
		{8, 17, 2 * time.Second},            // across a pause: the longest piece, not the sum
		{10, 15, 0},                         // the pause only
		{14, 45, 25 * time.Second},          // a whole span
		{49, 53.5, 3500 * time.Millisecond}, // the open span
		{-5, 0, 0},
	} {
		if got := liveWithin(spans, at(c.a), at(c.b)); got != c.want {
			t.Errorf("liveWithin(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestParseHookPhases(t *testing.T) {
	ph, err := ParseHookPhases("ok:60s, slow:30s,down:20s")
	if err != nil || len(ph) != 3 || ph[1] != (HookPhase{"slow", 30 * time.Second}) {
		t.Fatalf("got %v, %v", ph, err)
	}
	for _, bad := range []string{"", "ok", "fast:1s", "ok:0s", "ok:x"} {
		if _, err := ParseHookPhases(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestLogMsg(t *testing.T) {
	for line, want := range map[string]string{
		`time=2026-11-29T03:00:00Z level=WARN msg="upstream failed, trying the next origin" origin=127.0.0.1:1`: "upstream failed, trying the next origin",
		`time=2026-11-29T03:00:00Z level=WARN msg=closed reason=x`:                                              "closed",
		`garbage`: "?",
	} {
		if got := logMsg(line); got != want {
			t.Errorf("logMsg(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestSoakVerdict(t *testing.T) {
	r := &SoakResult{WarmupS: 10, MaxWaitTargetMs: 3000, Tolerance: SoakTolerance{RSSMBPerHour: 5, GoroutinesPerHour: 10, FDsPerHour: 30},
		EdgePIDStart: 7, EdgePIDEnd: 7, EdgeAlive: true, NormalPlayers: 1, LongestWait: SoakWait{Ms: 900}}
	for i := range 100 {
		tt := float64(i) * 5
		r.Samples = append(r.Samples, SoakSample{T: tt,
			Edge:    &SoakProcSample{RSSMB: 20 + tt/3600*50, Goroutines: 13, FDs: 320},
			Origin2: &SoakProcSample{RSSMB: 15, Goroutines: 13, FDs: 25}})
	}
	r.summarize()
	if r.Flat || r.Pass {
		t.Fatalf("an RSS rising 50 MB/h passed: %+v", r.Slopes)
	}
	for _, s := range r.Slopes {
		if s.Server == "edge" && s.Metric == "rss_mb" && math.Abs(s.PerHour-50) > 1e-6 {
			t.Fatalf("edge RSS slope %v, want 50", s.PerHour)
		}
	}
	for i := range r.Samples {
		r.Samples[i].Edge.RSSMB = 20
	}
	r.Slopes = nil
	r.summarize()
	if !r.Flat || !r.Pass {
		t.Fatalf("flat soak failed: %+v", r.Slopes)
	}
	r.EdgePIDEnd = 8
	r.summarize()
	if r.Pass {
		t.Fatal("a restarted edge passed")
	}
}

func TestKeepLongest(t *testing.T) {
	var w []SoakWait
	for _, ms := range []float64{5, 1, 9, 3, 7, 2} {
		w = keepLongest(w, SoakWait{Ms: ms}, 3)
	}
	got := map[float64]bool{}
	for _, x := range w {
		got[x.Ms] = true
	}
	if len(w) != 3 || !got[9] || !got[7] || !got[5] {
		t.Fatalf("kept %v, want 9, 7 and 5", w)
	}
}
