package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
)

// SoakProcSample is one sample of one server process.
type SoakProcSample struct {
	PID        int     `json:"pid"`
	RSSMB      float64 `json:"rss_mb"`      // VmRSS
	HWMMB      float64 `json:"hwm_mb"`      // VmHWM: peak so far
	AnonMB     float64 `json:"rss_anon_mb"` // RssAnon: private memory (heap, stacks)
	FileMB     float64 `json:"rss_file_mb"` // RssFile: the binary's pages touched so far
	Threads    int     `json:"threads"`
	Goroutines int     `json:"goroutines"` // from pprof (-1: no answer)
	FDs        int     `json:"fds"`
	Clients    int     `json:"client_sockets"` // TCP connections on its RTMP port
	CPUSeconds float64 `json:"cpu_seconds"`    // utime + stime so far
}

// SoakSample is one sample of the soak, every SoakConfig.Every.
type SoakSample struct {
	T       float64         `json:"t"` // seconds since the start
	Edge    *SoakProcSample `json:"edge,omitempty"`
	Origin1 *SoakProcSample `json:"origin1,omitempty"` // nil while it is down
	Origin2 *SoakProcSample `json:"origin2,omitempty"`
	// Players held by the harness, by kind.
	Normal, Reset, Silent, Rtmpdump int
	Live                            int    `json:"live_streams"`
	Hook                            string `json:"hook"`
	// UpstreamsO1/O2: the edge's connections to each origin.
	UpstreamsO1 int     `json:"edge_upstreams_origin1"`
	UpstreamsO2 int     `json:"edge_upstreams_origin2"`
	LongestWait float64 `json:"longest_wait_ms"` // so far
	// The machine over the interval before the sample: cores kept busy by
	// processes outside the soak at nice 0 (other benchmarks, say) and
	// niced ones, the 1-minute load average, and the longest the harness's
	// 50 ms poll ticker came late (the harness's own scheduling delay).
	OthersCores float64 `json:"others_cores"`
	NicedCores  float64 `json:"niced_cores"`
	Load1       float64 `json:"load1"`
	HarnessLag  float64 `json:"harness_lag_ms"`
}

func sampleProc(httpc *http.Client, s *soakServer) *SoakProcSample {
	p := s.current()
	if p == nil {
		return nil
	}
	pid := p.Cmd.Process.Pid
	st, ok := sampleStall(pid, s.port)
	if !ok {
		return nil
	}
	u := (&ProcWatch{PID: pid}).Usage()
	return &SoakProcSample{PID: pid, RSSMB: st.RSSMB, HWMMB: st.HWMMB, AnonMB: u.AnonMB, FileMB: u.FileMB, FDs: st.FDs, Clients: st.Held,
		Threads:    StatusKB(pid, "Threads:"), // a count, not kB: StatusKB reads any numeric field
		Goroutines: goroutines(httpc, s.pprof),
		CPUSeconds: u.CPUSeconds}
}

// sampleLoop samples the servers every Every until ctx is done or the edge
// is gone, printing a progress line each time.
func (s *soaker) sampleLoop(ctx context.Context, httpc *http.Client, ed, o1, o2 *soakServer, pop *soakPopulation, streams []*soakStream, hook *soakHook) []SoakSample {
	var out []SoakSample
	tick := time.NewTicker(s.cfg.Every)
	defer tick.Stop()
	var host hostMeter
	for now := time.Now(); ; {
		others, niced := host.sample(now)
		sm := SoakSample{T: s.since(now), Edge: sampleProc(httpc, ed), Origin1: sampleProc(httpc, o1), Origin2: sampleProc(httpc, o2),
			Normal: int(pop.active[soakNormal].Load()), Reset: int(pop.active[soakReset].Load()),
			Silent: int(pop.active[soakSilent].Load()), Rtmpdump: int(pop.active[soakRtmpdump].Load()),
			Hook: hook.phaseAt(now), LongestWait: pop.tracker.longestMs(),
			OthersCores: others, NicedCores: niced, Load1: loadAvg1(), HarnessLag: ms(pop.lag.Swap(0))}
		for _, st := range streams {
			if st.liveAt(now) {
				sm.Live++
			}
		}
		if sm.Edge == nil {
			s.event("edge gone", "the edge process ended: the soak stops")
			return out
		}
		sm.UpstreamsO1 = countConns(sm.Edge.PID, o1.port)
		sm.UpstreamsO2 = countConns(sm.Edge.PID, o2.port)
		out = append(out, sm)
		if s.cfg.Progress != nil {
			o1s := "down"
			if sm.Origin1 != nil {
				o1s = fmt.Sprintf("%.1fMB", sm.Origin1.RSSMB)
			}
			fmt.Fprintf(s.cfg.Progress, "%7.1fs edge rss=%.1fMB gor=%d fds=%d (clients %d) thr=%d cpu=%.1fs | origin2 rss=%.1fMB gor=%d fds=%d | origin1 %s | players n/r/s/d=%d/%d/%d/%d live=%d hook=%s ups o1/o2=%d/%d longest wait=%.0fms | others %.2f cores, niced %.2f, load %.1f, harness lag %.0fms\n",
				sm.T, sm.Edge.RSSMB, sm.Edge.Goroutines, sm.Edge.FDs, sm.Edge.Clients, sm.Edge.Threads, sm.Edge.CPUSeconds,
				orZero(sm.Origin2).RSSMB, orZero(sm.Origin2).Goroutines, orZero(sm.Origin2).FDs, o1s,
				sm.Normal, sm.Reset, sm.Silent, sm.Rtmpdump, sm.Live, sm.Hook, sm.UpstreamsO1, sm.UpstreamsO2, sm.LongestWait,
				sm.OthersCores, sm.NicedCores, sm.Load1, sm.HarnessLag)
		}
		select {
		case <-ctx.Done():
			return out
		case now = <-tick.C:
		}
	}
}

func orZero(p *SoakProcSample) SoakProcSample {
	if p == nil {
		return SoakProcSample{}
	}
	return *p
}

// SoakSlope is the least-squares slope of one measure of one server over
// the samples after the warm-up.
type SoakSlope struct {
	Server    string  `json:"server"`
	Metric    string  `json:"metric"`
	N         int     `json:"n"`
	Mean      float64 `json:"mean"`
	Min       float64 `json:"min"`
	Max       float64 `json:"max"`
	PerHour   float64 `json:"per_hour"`
	SE        float64 `json:"per_hour_se"` // standard error of the slope
	Tolerance float64 `json:"tolerance_per_hour,omitempty"`
	Judged    bool    `json:"judged"` // part of the verdict
	Flat      bool    `json:"flat"`   // PerHour <= Tolerance
}

// SoakResult is what a soak measured.
type SoakResult struct {
	Seed            uint64        `json:"seed"`
	Duration        float64       `json:"duration_s"` // asked
	Seconds         float64       `json:"seconds"`    // run
	Interrupted     bool          `json:"interrupted"`
	WarmupS         float64       `json:"warmup_s"`
	EveryS          float64       `json:"every_s"`
	Players         int           `json:"players"`
	Streams         int           `json:"streams"`
	KillEveryS      float64       `json:"kill_every_s"`
	RestartAfterS   float64       `json:"restart_after_s"`
	HookPhases      []HookPhase   `json:"hook_phases"`
	Tolerance       SoakTolerance `json:"tolerance"`
	MaxWaitTargetMs float64       `json:"max_wait_target_ms"`

	EdgePIDStart  int   `json:"edge_pid_start"`
	EdgePIDEnd    int   `json:"edge_pid_end"`
	EdgeAlive     bool  `json:"edge_alive_at_end"`
	EdgeRestarted bool  `json:"edge_restarted"`
	Origin1PIDs   []int `json:"origin1_pids"`
	Origin2Alive  bool  `json:"origin2_alive_at_end"`
	Kills         int   `json:"origin1_kills"`

	Slopes []SoakSlope `json:"slopes"`
	Flat   bool        `json:"flat"`

	NormalPlayers   int        `json:"normal_players"`
	LongestWait     SoakWait   `json:"longest_wait"`
	WaitsOver1s     int        `json:"waits_over_1s"`
	WaitsOverTarget int        `json:"waits_over_target"`
	Waits           []SoakWait `json:"waits,omitempty"` // of 1 s and more, longest first (the 1,000 longest)
	// The monitors' (players of origin 2 itself) waits of 1 s and more.
	MonitorLongestWait SoakWait   `json:"monitor_longest_wait"`
	MonitorWaits       []SoakWait `json:"monitor_waits,omitempty"`
	WaitOK             bool       `json:"wait_ok"`
	FirstMediaP50      float64    `json:"first_media_p50_ms"`
	FirstMediaP99      float64    `json:"first_media_p99_ms"`
	FirstMediaMax      float64    `json:"first_media_max_ms"`

	Joined   map[string]int64 `json:"joined"`
	Outcomes map[string]int   `json:"outcomes"`

	PublisherStarts int            `json:"publisher_starts"`
	PublisherExits  int            `json:"publisher_exits"`
	Hook            SoakHookResult `json:"hook"`

	EdgePeakRSSMB    float64 `json:"edge_peak_rss_mb"` // VmHWM
	EdgeCPUSeconds   float64 `json:"edge_cpu_seconds"`
	Origin2PeakRSSMB float64 `json:"origin2_peak_rss_mb"`
	Origin1PeakRSSMB float64 `json:"origin1_peak_rss_mb"` // highest of its lives

	Logs    []LogSummary `json:"logs"`
	Pass    bool         `json:"pass"`
	Events  []SoakEvent  `json:"events"`
	Samples []SoakSample `json:"samples"`
}

// LeastSquares returns the slope of y over x and its standard error.
func LeastSquares(x, y []float64) (slope, se float64) {
	n := float64(len(x))
	if len(x) < 3 || len(x) != len(y) {
		return 0, math.NaN()
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	if sxx == 0 {
		return 0, math.NaN()
	}
	slope = sxy / sxx
	var ss float64
	for i := range x {
		r := y[i] - my - slope*(x[i]-mx)
		ss += r * r
	}
	return slope, math.Sqrt(ss / (n - 2) / sxx)
}

// soakMetrics are the measures whose slopes are reported; tol gives the
// tolerance of the judged ones (nil: reported only).
var soakMetrics = []struct {
	name string
	get  func(*SoakProcSample) float64
	tol  func(SoakTolerance) float64
}{
	{"rss_mb", func(p *SoakProcSample) float64 { return p.RSSMB }, func(t SoakTolerance) float64 { return t.RSSMBPerHour }},
	{"goroutines", func(p *SoakProcSample) float64 { return float64(p.Goroutines) }, func(t SoakTolerance) float64 { return t.GoroutinesPerHour }},
	{"fds", func(p *SoakProcSample) float64 { return float64(p.FDs) }, func(t SoakTolerance) float64 { return t.FDsPerHour }},
	{"rss_anon_mb", func(p *SoakProcSample) float64 { return p.AnonMB }, nil},
	{"fds_besides_clients", func(p *SoakProcSample) float64 { return float64(p.FDs - p.Clients) }, nil},
	{"threads", func(p *SoakProcSample) float64 { return float64(p.Threads) }, nil},
}

// summarize derives the verdicts from the samples, waits and logs.
func (r *SoakResult) summarize() {
	r.EdgeRestarted = r.EdgePIDEnd != r.EdgePIDStart || !r.EdgeAlive
	for _, e := range r.Events {
		if e.Kind == "kill origin1" {
			r.Kills++
		}
	}
	for _, sm := range r.Samples {
		if sm.Edge != nil {
			r.EdgePeakRSSMB = max(r.EdgePeakRSSMB, sm.Edge.HWMMB)
			r.EdgeCPUSeconds = sm.Edge.CPUSeconds
		}
		if sm.Origin2 != nil {
			r.Origin2PeakRSSMB = max(r.Origin2PeakRSSMB, sm.Origin2.HWMMB)
		}
		if sm.Origin1 != nil {
			r.Origin1PeakRSSMB = max(r.Origin1PeakRSSMB, sm.Origin1.HWMMB)
		}
	}
	// Slopes of the edge and the second origin (the first is restarted:
	// each of its lives is short and starts from nothing).
	r.Flat = true
	for _, srv := range []string{"edge", "origin2"} {
		for _, m := range soakMetrics {
			var x, y []float64
			for _, sm := range r.Samples {
				p := sm.Edge
				if srv == "origin2" {
					p = sm.Origin2
				}
				if p == nil || sm.T < r.WarmupS || (m.name == "goroutines" && p.Goroutines < 0) {
					continue
				}
				x = append(x, sm.T/3600)
				y = append(y, m.get(p))
			}
			sl := SoakSlope{Server: srv, Metric: m.name, N: len(x)}
			if len(y) > 0 {
				sl.Min, sl.Max = y[0], y[0]
				for _, v := range y {
					sl.Mean += v / float64(len(y))
					sl.Min, sl.Max = min(sl.Min, v), max(sl.Max, v)
				}
			}
			sl.PerHour, sl.SE = LeastSquares(x, y)
			if m.tol != nil {
				sl.Judged, sl.Tolerance = true, m.tol(r.Tolerance)
				sl.Flat = len(x) >= 3 && sl.PerHour <= sl.Tolerance
				r.Flat = r.Flat && sl.Flat
			}
			r.Slopes = append(r.Slopes, sl)
		}
	}
	r.WaitOK = r.LongestWait.Ms <= r.MaxWaitTargetMs && r.NormalPlayers > 0
	panics := 0
	for _, l := range r.Logs {
		panics += l.Panics
	}
	r.Pass = r.Flat && r.WaitOK && !r.EdgeRestarted && panics == 0 && !r.Interrupted
}

// SoakMarkdown is the soak's report: the verdicts, the slope table, the
// longest waits, the players' outcomes and the servers' logs.
func SoakMarkdown(r *SoakResult) string {
	var b strings.Builder
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**NO**"
	}
	fmt.Fprintf(&b, "Soak of %.0f s (asked %.0f s%s), seed %d: %d streams, %d players kept on the edge, origin 1 SIGKILLed every %.0f s (%d times) and restarted %.0f s later; samples every %.0f s, slopes after a %.0f s warm-up.\n\n",
		r.Seconds, r.Duration, map[bool]string{true: ", INTERRUPTED", false: ""}[r.Interrupted], r.Seed, r.Streams, r.Players, r.KillEveryS, r.Kills, r.RestartAfterS, r.EveryS, r.WarmupS)
	rows := [][]string{
		{"RSS, goroutines and fds flat (edge and origin 2)", yes(r.Flat), fmt.Sprintf("slope ≤ %.0f MB/h, %.0f goroutines/h, %.0f fds/h", r.Tolerance.RSSMBPerHour, r.Tolerance.GoroutinesPerHour, r.Tolerance.FDsPerHour)},
		{"longest wait for media of a normal player of a live stream", fmt.Sprintf("%.0f ms %s", r.LongestWait.Ms, yes(r.WaitOK)), fmt.Sprintf("≤ %.0f ms", r.MaxWaitTargetMs)},
		{"edge never restarted", fmt.Sprintf("%s (pid %d at start, %d at end, alive %v)", yes(!r.EdgeRestarted), r.EdgePIDStart, r.EdgePIDEnd, r.EdgeAlive), "same PID alive at the end"},
		{"edge peak RSS (VmHWM)", fmt.Sprintf("%.1f MB", r.EdgePeakRSSMB), "-"},
		{"origin 2 / origin 1 peak RSS", fmt.Sprintf("%.1f / %.1f MB", r.Origin2PeakRSSMB, r.Origin1PeakRSSMB), "-"},
		{"edge CPU over the soak", fmt.Sprintf("%.1f s (%.3f cores)", r.EdgeCPUSeconds, r.EdgeCPUSeconds/math.Max(r.Seconds, 1)), "-"},
	}
	b.WriteString(Markdown([]string{"check", "result", "target"}, rows))
	b.WriteString("\n")
	var srows [][]string
	for _, s := range r.Slopes {
		verdict := "reported"
		if s.Judged {
			verdict = fmt.Sprintf("%s (≤ %.0f/h)", map[bool]string{true: "flat", false: "**RISING**"}[s.Flat], s.Tolerance)
		}
		srows = append(srows, []string{s.Server, s.Metric, fmt.Sprint(s.N), fmt.Sprintf("%.1f", s.Mean), fmt.Sprintf("%.1f - %.1f", s.Min, s.Max),
			fmt.Sprintf("%+.2f ± %.2f", s.PerHour, s.SE), verdict})
	}
	b.WriteString(Markdown([]string{"server", "measure", "samples", "mean", "min - max", "slope per hour ± SE", "verdict"}, srows))
	fmt.Fprintf(&b, "\nNormal players measured: %d; waits of 1 s or more: %d, over %.0f ms: %d; time to first media (dial to first video, hooks included) p50 %.0f ms, p99 %.0f ms, max %.0f ms.\n",
		r.NormalPlayers, r.WaitsOver1s, r.MaxWaitTargetMs, r.WaitsOverTarget, r.FirstMediaP50, r.FirstMediaP99, r.FirstMediaMax)
	fmt.Fprintf(&b, "The monitors (a player of each stream on origin 2 itself): longest wait %.0f ms (%s, %.1f - %.1f s), waits of 1 s or more: %d.\n",
		r.MonitorLongestWait.Ms, r.MonitorLongestWait.Stream, r.MonitorLongestWait.FromS, r.MonitorLongestWait.ToS, len(r.MonitorWaits))
	if inc := soakIncidents(r.Waits); len(inc) > 0 {
		b.WriteString("\nLongest waits of 1 s or more, grouped by stream and the second they ended in (most players of a stream see the same stall):\n\n")
		var wrows [][]string
		for _, in := range inc[:min(12, len(inc))] {
			w := in.longest
			mon := "-"
			for _, m := range r.MonitorWaits {
				if m.Stream == w.Stream && m.ToS >= w.FromS && m.FromS <= w.ToS {
					mon = fmt.Sprintf("%.0f ms", m.Ms)
				}
			}
			wrows = append(wrows, []string{fmt.Sprintf("%.0f", w.Ms), fmt.Sprint(in.players), w.Stream, fmt.Sprintf("%.1f - %.1f", w.FromS, w.ToS),
				map[bool]string{true: "player's end", false: "video"}[w.End], mon, machineAt(r.Samples, w.FromS, w.ToS), nearEvents(r.Events, w.FromS-5, w.ToS)})
		}
		b.WriteString(Markdown([]string{"longest ms", "players", "stream", "s since start", "ended by", "monitor on origin 2", "others' cores / harness lag", "events from 5 s before"}, wrows))
	}
	b.WriteString("\nPlayers joined: ")
	for _, k := range soakKindNames {
		fmt.Fprintf(&b, "%s %d, ", k, r.Joined[k])
	}
	fmt.Fprintf(&b, "publisher processes started %d (of which ended on their own %d).\n\nOutcomes:\n\n", r.PublisherStarts, r.PublisherExits)
	var orows [][]string
	for _, k := range sortedKeys(r.Outcomes) {
		orows = append(orows, []string{k, fmt.Sprint(r.Outcomes[k])})
	}
	b.WriteString(Markdown([]string{"player kind, hook phase at join: outcome", "players"}, orows))
	b.WriteString("\nHook requests: ")
	for _, k := range sortedKeys(r.Hook.Requests) {
		fmt.Fprintf(&b, "%s %d; ", k, r.Hook.Requests[k])
	}
	b.WriteString("\n\nServer logs:\n\n")
	var lrows [][]string
	for _, l := range r.Logs {
		var w []string
		for _, k := range sortedKeys(l.Warnings) {
			w = append(w, fmt.Sprintf("%s (%d)", k, l.Warnings[k]))
		}
		lrows = append(lrows, []string{l.Server, fmt.Sprint(l.Lines), fmt.Sprint(l.Errors), fmt.Sprint(l.Panics), strings.Join(w, "; ")})
	}
	b.WriteString(Markdown([]string{"server", "lines", "errors", "panics", "warnings by message"}, lrows))
	for _, l := range r.Logs {
		for _, e := range l.Examples {
			fmt.Fprintf(&b, "\n    %s: %s", l.Server, e)
		}
	}
	fmt.Fprintf(&b, "\n\nVerdict: %s\n", map[bool]string{true: "PASS", false: "FAIL"}[r.Pass])
	return b.String()
}

// soakIncident is the waits of one stream that ended in the same second.
type soakIncident struct {
	longest SoakWait
	players int
}

// soakIncidents groups waits (longest first) by stream and the second
// they ended in, longest first.
func soakIncidents(waits []SoakWait) []soakIncident {
	var out []soakIncident
	at := map[string]int{}
	for _, w := range waits {
		k := fmt.Sprintf("%s/%d", w.Stream, int(w.ToS))
		if i, ok := at[k]; ok {
			out[i].players++
			continue
		}
		at[k] = len(out)
		out = append(out, soakIncident{longest: w, players: 1})
	}
	return out
}

// machineAt is the most cores other processes (nice 0) took and the
// harness's longest lag in the samples covering [from, to].
func machineAt(samples []SoakSample, from, to float64) string {
	var others, lag float64
	for i, sm := range samples {
		start := sm.T
		if i > 0 {
			start = samples[i-1].T
		}
		if sm.T >= from && start <= to {
			others, lag = max(others, sm.OthersCores), max(lag, sm.HarnessLag)
		}
	}
	return fmt.Sprintf("%.2f / %.0f ms", others, lag)
}

// nearEvents lists the events between from and to, seconds since the start.
func nearEvents(events []SoakEvent, from, to float64) string {
	var out []string
	for _, e := range events {
		if e.T >= from && e.T <= to {
			out = append(out, fmt.Sprintf("%.1f %s %s", e.T, e.Kind, e.Detail))
		}
	}
	return strings.Join(out, "; ")
}

// WriteSoak prints the report for people.
func WriteSoak(w io.Writer, r *SoakResult) {
	fmt.Fprintln(w, SoakMarkdown(r))
}
