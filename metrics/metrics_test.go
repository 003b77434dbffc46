package metrics

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/loop"
)

// An origin address with the three characters label values escape.
const oddOrigin = "a\"b\\c\nd"

// scrapeServer returns the /metrics body of a server that is not running
// but has counted an origin, a hook call and a flush.
func scrapeServer(t *testing.T) []byte {
	t.Helper()
	cfg, err := conf.Parse([]byte(`
listen: ["127.0.0.1:19350"]
vhosts:
  edge.example:
    cluster: {mode: remote, origin: ["127.0.0.1:19350", "127.0.0.1:19351"]}
`), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := loop.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tele := srv.Telemetry()
	tele.Origin(oddOrigin).Connects.Add(1)
	tele.Origin("127.0.0.1:19350").Failures.Add(2)
	h := tele.Hook("on_play")
	h.Calls.Add(3)
	for _, d := range []time.Duration{time.Millisecond, 30 * time.Millisecond, time.Minute} {
		h.Latency.Observe(d)
	}
	tele.Flush.Observe(300 * time.Microsecond)

	rec := httptest.NewRecorder()
	Handler(srv, "v1.2.3").ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q, want %q", ct, ContentType)
	}
	return rec.Body.Bytes()
}

var (
	metricName = `[a-zA-Z_:][a-zA-Z0-9_:]*`
	labelPair  = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`
	sampleRE   = regexp.MustCompile(`^(` + metricName + `)(\{` + labelPair + `(?:,` + labelPair + `)*\})? (\S+)$`)
	helpRE     = regexp.MustCompile(`^# HELP (` + metricName + `) (?:[^\\]|\\[\\n])*$`)
	typeRE     = regexp.MustCompile(`^# TYPE (` + metricName + `) (counter|gauge|histogram|summary)$`)
	leRE       = regexp.MustCompile(`,?le="([^"]*)"`)
)

// family is a metric family as parsed back from the text.
type family struct {
	typ    string
	series map[string][]string // histograms: the lines of each label set but le
}

// parse checks the text line by line and returns its families: HELP then
// TYPE once each, every sample well formed and in the family last
// started.
func parse(t *testing.T, body []byte) map[string]*family {
	t.Helper()
	fams := map[string]*family{}
	var cur string
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := helpRE.FindStringSubmatch(line); m != nil {
			if fams[m[1]] != nil {
				t.Errorf("family %s started twice", m[1])
			}
			i++
			tm := typeRE.FindStringSubmatch(lines[min(i, len(lines)-1)])
			if tm == nil || tm[1] != m[1] {
				t.Fatalf("HELP of %s not followed by its TYPE: %q", m[1], lines[min(i, len(lines)-1)])
			}
			cur = m[1]
			fams[cur] = &family{typ: tm[2], series: map[string][]string{}}
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("malformed line %q", line)
			continue
		}
		if _, err := strconv.ParseFloat(m[3], 64); err != nil {
			t.Errorf("%q: value: %v", line, err)
		}
		f := fams[cur]
		name := m[1]
		if f != nil && (f.typ == histogram || f.typ == summary) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && base == cur {
					name = base
				}
			}
		}
		if f == nil || name != cur {
			t.Errorf("%q is not in its family's run (current %s)", line, cur)
			continue
		}
		key := strings.TrimSuffix(leRE.ReplaceAllString(m[2], ""), "{}") // the label set but le
		f.series[key] = append(f.series[key], line)
	}
	return fams
}

func TestExposition(t *testing.T) {
	body := scrapeServer(t)
	fams := parse(t, body)

	for _, name := range []string{
		"rtmpedge_build_info", "rtmpedge_connections", "rtmpedge_players", "rtmpedge_origin_up",
		"rtmpedge_hook_duration_seconds", "rtmpedge_flush_duration_seconds", "rtmpedge_registry_events_total",
		"rtmpedge_media_blocks_made_total", "rtmpedge_media_blocks_reused_total", "rtmpedge_media_blocks_free_bytes",
		"go_goroutines", "go_threads", "go_info", "go_memstats_heap_inuse_bytes", "go_memstats_alloc_bytes",
		"go_memstats_sys_bytes", "go_gc_duration_seconds", "go_memstats_last_gc_time_seconds",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
		"process_open_fds", "process_max_fds", "process_start_time_seconds",
	} {
		if fams[name] == nil {
			t.Errorf("no family %s", name)
		}
	}

	for _, want := range []string{
		"rtmpedge_build_info{version=\"v1.2.3\"} 1\n",
		`rtmpedge_upstream_connects_total{origin="a\"b\\c\nd"} 1` + "\n",
		`rtmpedge_upstream_failures_total{origin="127.0.0.1:19350"} 2` + "\n",
		`rtmpedge_origin_up{vhost="edge.example",origin="127.0.0.1:19351"} 1` + "\n",
		`rtmpedge_hook_calls_total{action="on_play"} 3` + "\n",
		`rtmpedge_hook_duration_seconds_count{action="on_play"} 3` + "\n",
		`rtmpedge_flush_duration_seconds_bucket{le="0.0004"} 1` + "\n",
		`go_gc_duration_seconds{quantile="0.5"} `,
		"go_info{version=\"" + runtime.Version() + "\"} 1\n",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}

	// Histograms: cumulative buckets by growing bounds, the last +Inf and
	// equal to _count.
	for name, f := range fams {
		if f.typ != histogram {
			continue
		}
		if len(f.series) == 0 {
			t.Errorf("%s: no series", name)
		}
		for labels, lines := range f.series {
			prevLe, prev := math.Inf(-1), -1.0
			var inf, count float64 = -1, -2
			for _, line := range lines {
				m := sampleRE.FindStringSubmatch(line)
				v, _ := strconv.ParseFloat(m[3], 64)
				switch m[1] {
				case name + "_bucket":
					le := leRE.FindStringSubmatch(m[2])
					if le == nil {
						t.Fatalf("%q: no le", line)
					}
					ub, err := strconv.ParseFloat(le[1], 64)
					if err != nil || ub <= prevLe || v < prev || count != -2 {
						t.Errorf("%s%s: bucket %q out of order", name, labels, line)
					}
					prevLe, prev = ub, v
					if math.IsInf(ub, 1) {
						inf = v
					}
				case name + "_count":
					count = v
				}
			}
			if !math.IsInf(prevLe, 1) || inf != count {
				t.Errorf("%s%s: last bucket le=%v (%v), _count %v", name, labels, prevLe, inf, count)
			}
		}
	}
}

func TestWriterEscapesAndFormats(t *testing.T) {
	var e expo
	e.family("x_total", counter, "Back\\slash, \"quoted\",\nnew line.")
	e.sample(0, "l", "q\"b\\n\n")
	e.sample(math.Copysign(0, -1), "a", "1", "b", "2")
	e.family("y", gauge, "Values.")
	for _, v := range []float64{1, -1, 0.25, 1e-7, 1234567, 1.5e300, math.Inf(1), math.Inf(-1), math.NaN()} {
		e.sample(v)
	}
	e.family("empty", gauge, "No samples, no lines.")
	e.family("h", histogram, "A histogram.").histogram(5, 2.5, map[float64]uint64{0.5: 1, 0.1: 0, 1: 6}, "k", "v")
	want := `# HELP x_total Back\\slash, "quoted",\nnew line.
# TYPE x_total counter
x_total{l="q\"b\\n\n"} 0
x_total{a="1",b="2"} 0
# HELP y Values.
# TYPE y gauge
y 1
y -1
y 0.25
y 1e-07
y 1.234567e+06
y 1.5e+300
y +Inf
y -Inf
y NaN
# HELP h A histogram.
# TYPE h histogram
h_bucket{k="v",le="0.1"} 0
h_bucket{k="v",le="0.5"} 1
h_bucket{k="v",le="1"} 6
h_bucket{k="v",le="+Inf"} 6
h_sum{k="v"} 2.5
h_count{k="v"} 6
`
	if got := string(e.b); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// promtool's own linter, on a real scrape.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("promtool is not installed (make test installs it: scripts/deps.sh --test)")
		}
		t.Fatalf("promtool is not installed (scripts/deps.sh --test): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	check := exec.CommandContext(ctx, promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(scrapeServer(t))
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
