// Package deploy holds the files an operator installs (the systemd unit, the
// starter config, the sysctl settings, the Grafana dashboard) and, here, the
// tests of the ones a typo would silently break: the dashboard's queries,
// checked by promtool and run against a real Prometheus scraping the real
// server, and the sysctl keys. `make install` itself is tested end to end in
// e2e/deploy_test.go.
package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/internal/freeport"
)

const dashboardFile = "grafana-rtmpedge.json"

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	Inputs        []input `json:"__inputs"`
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			Datasource *datasource `json:"datasource"`
			Definition string      `json:"definition"`
			AllValue   string      `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string      `json:"name"`
			BuiltIn    int         `json:"builtIn"`
			Datasource *datasource `json:"datasource"`
			Expr       string      `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type input struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasource              `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// The datasource every query names: an import input, so that the file
// imports into any Grafana with any Prometheus.
var promDS = datasource{Type: "prometheus", UID: "${DS_PROMETHEUS}"}

// query is one PromQL expression of the dashboard and where it is.
type query struct{ where, expr string }

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// panels returns every panel but rows, collapsed rows' panels included.
func (d dashboard) panels() []panel {
	var out []panel
	for _, p := range d.Panels {
		if p.Type == "row" {
			out = append(out, p.Panels...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// queries returns every PromQL expression: panel targets and annotations.
func (d dashboard) queries() []query {
	var qs []query
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, query{fmt.Sprintf("annotation %q", a.Name), a.Expr})
		}
	}
	return qs
}

// panelQuery returns the expression of the titled panel's only target.
func (d dashboard) panelQuery(t *testing.T, title string) string {
	t.Helper()
	for _, p := range d.panels() {
		if p.Title == title && len(p.Targets) == 1 {
			return p.Targets[0].Expr
		}
	}
	t.Fatalf("the dashboard has no panel %q with one query", title)
	return ""
}

// substitute replaces Grafana's variables as Grafana would with "All"
// selected and the given rate window.
func substitute(expr, window string) string {
	return strings.NewReplacer(
		"${instance}", ".*", "$instance", ".*",
		"${vhost}", ".*", "$vhost", ".*",
		"$__rate_interval", window, "$__interval", window, "$__range", "1h",
	).Replace(expr)
}

// selectorRE finds the series the expressions select: a metric name of the
// server, the Go runtime or the process, and its label matchers if any.
var selectorRE = regexp.MustCompile(`\b((?:rtmpedge|go|process)_[a-z0-9_]+)(\{[^}]*\})?`)

// Metrics that carry a vhost label; their selectors must follow $vhost.
var vhostMetrics = []string{"rtmpedge_players", "rtmpedge_sent_bytes_total", "rtmpedge_received_bytes_total", "rtmpedge_origin_up"}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a stable import", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d, want 36..41 (Grafana 9-11)", d.SchemaVersion)
	}
	if !slices.Contains(d.Inputs, input{Name: "DS_PROMETHEUS", Type: "datasource", PluginID: "prometheus"}) {
		t.Errorf("__inputs lacks the DS_PROMETHEUS datasource input: %+v", d.Inputs)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "query" && (v.Datasource == nil || *v.Datasource != promDS) {
			t.Errorf("variable %s: datasource %+v, want %+v", v.Name, v.Datasource, promDS)
		}
		if v.AllValue != ".*" {
			t.Errorf("variable %s: allValue %q, want .* (the queries match it with =~)", v.Name, v.AllValue)
		}
	}
	for _, name := range []string{"instance", "vhost"} {
		if !vars[name] {
			t.Errorf("no template variable %s", name)
		}
	}

	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		for _, q := range append([]panel{p}, p.Panels...) {
			if ids[q.ID] {
				t.Errorf("panel id %d used twice", q.ID)
			}
			ids[q.ID] = true
			g := q.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %d %q: gridPos %+v outside the 24-column grid", q.ID, q.Title, g)
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := taken[cell{x, y}]; ok {
						t.Fatalf("panel %q overlaps panel %q at (%d,%d)", q.Title, other, x, y)
					}
					taken[cell{x, y}] = q.Title
				}
			}
		}
	}

	used := map[string]bool{}
	for _, p := range d.panels() {
		if p.Datasource == nil || *p.Datasource != promDS {
			t.Errorf("panel %d %q: datasource %+v, want %+v", p.ID, p.Title, p.Datasource, promDS)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no targets", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %d %q: target %q with expr %q (each needs an expr and its own refId)", p.ID, p.Title, tg.RefID, tg.Expr)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && *tg.Datasource != promDS {
				t.Errorf("panel %d %q target %s: datasource %+v", p.ID, p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
	for _, q := range d.queries() {
		for _, m := range selectorRE.FindAllStringSubmatch(q.expr, -1) {
			name, matchers := m[1], m[2]
			used[name] = true
			if name == "rtmpedge_build_info" && matchers == "" {
				continue // the join that keeps go_* and process_* to rtmpedge targets
			}
			if !strings.Contains(matchers, `instance=~"$instance"`) {
				t.Errorf("%s: %s%s does not follow $instance", q.where, name, matchers)
			}
			if slices.Contains(vhostMetrics, name) && !strings.Contains(matchers, `vhost=~"$vhost"`) {
				t.Errorf("%s: %s%s does not follow $vhost", q.where, name, matchers)
			}
		}
	}
	// What the dashboard is for: each of these must be on it.
	for _, name := range []string{
		"rtmpedge_players", "rtmpedge_connections", "rtmpedge_sent_bytes_total", "rtmpedge_received_bytes_total",
		"rtmpedge_streams", "rtmpedge_upstreams", "rtmpedge_origin_up", "rtmpedge_upstream_failures_total",
		"rtmpedge_hook_duration_seconds_bucket", "rtmpedge_hook_refusals_total", "rtmpedge_player_skips_total",
		"rtmpedge_player_lag_disconnects_total", "rtmpedge_plays_refused_total", "rtmpedge_flush_duration_seconds_bucket",
		"rtmpedge_config_reloads_total", "process_resident_memory_bytes", "process_cpu_seconds_total",
		"process_open_fds", "go_goroutines",
	} {
		if !used[name] {
			t.Errorf("no query of the dashboard uses %s", name)
		}
	}
}

// Every expression, with the variables replaced, must parse: promtool checks
// a rules file holding one recording rule per expression.
func TestDashboardQueriesPassPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool")
	qs := loadDashboard(t).queries()
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		expr, _ := json.Marshal(substitute(q.expr, "1m")) // a JSON string is a YAML string
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, rules.String())
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(qs)); !strings.Contains(string(out), want) {
		t.Fatalf("promtool: %s (want %q)", out, want)
	}
	t.Logf("promtool: %d expressions parse", len(qs))
}

// Settings the kernel shows only in the host's network namespace (a
// container's /proc/sys/net lacks them).
var initNetnsOnly = []string{"net.core.netdev_max_backlog"}

// The sysctl file names keys this kernel has (a typo would be skipped with
// an error at boot, easy to miss).
func TestSysctlKeysExist(t *testing.T) {
	f, err := os.Open("sysctl.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" || value == "" {
			t.Errorf("not key = value: %q", line)
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))); err != nil {
			if slices.Contains(initNetnsOnly, key) {
				t.Logf("%s: not visible here (a network namespace other than the host's?): %v", key, err)
				continue
			}
			t.Errorf("%s: no such kernel setting here: %v", key, err)
		}
	}
	if n == 0 {
		t.Fatal("no settings in sysctl.conf")
	}
}

// A real origin with a publisher and an edge with a player (its upstream is
// a player of the origin; its on_play hook is called), a real Prometheus
// scraping both every second: the dashboard's main queries must show them,
// every other query must return a result, and every metric the dashboard
// names must be one the servers expose.
func TestDashboardQueriesAgainstPrometheus(t *testing.T) {
	prom := requireTool(t, "prometheus")
	d := loadDashboard(t)
	dir := t.TempDir()

	// Prometheus first: it applies new scrape targets only every 5 s.
	a := freeAddrs(t, 5)
	origin, edge, webAddr := server{a[0], a[1]}, server{a[2], a[3]}, a[4]
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(
		"global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"+
			"scrape_configs:\n  - job_name: rtmpedge\n    static_configs: [{targets: [%q, %q]}]\n", origin.api, edge.api))
	_, promLog := start(t, dir, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+webAddr)

	bin := filepath.Join(dir, "rtmpedge")
	build := exec.Command("go", "build", "-o", bin, "github.com/rtmpedge/rtmpedge/cmd/rtmpedge")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the server: %v\n%s", err, out)
	}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "0") }))
	defer hooks.Close()
	origin.run(t, bin, "")
	edgeProc := edge.run(t, bin, fmt.Sprintf(
		"vhost_defaults:\n  cluster: {mode: remote, origin: [%q]}\n  hooks: {on_play: %q}\n", origin.rtmp, hooks.URL))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = bench.Publish(ctx, "rtmp://"+origin.rtmp+"/live/dash", bench.NewSynthetic(1.2e6, 30, 30))
	}()
	player := &bench.Player{URL: "rtmp://" + edge.rtmp + "/live/dash"}
	go func() { defer wg.Done(); player.Run(ctx) }()

	// Grafana's $__rate_interval is at least 4 scrape intervals.
	const window = "4s"
	promQuery := func(expr string) (result, error) { return instantQuery(webAddr, substitute(expr, window)) }
	players := d.panelQuery(t, "Players")
	egress := d.panelQuery(t, "Egress")
	conns := d.panelQuery(t, "Connections by protocol and role")
	// As Grafana writes one selected value: a regex, in a PromQL string.
	edgeOnly := strings.ReplaceAll(players, "$instance", strings.ReplaceAll(regexp.QuoteMeta(edge.api), `\`, `\\`))
	waitFor(t, 40*time.Second, "Prometheus to show the players, their egress and the connections", func() (bool, string) {
		var r [4]result
		var err [4]error
		for i, q := range []string{players, egress, conns, edgeOnly} {
			r[i], err[i] = promQuery(q)
		}
		roles := map[string]float64{}
		for _, s := range r[2] {
			if s.Metric["protocol"] == "rtmp" {
				roles[s.Metric["role"]] = s.value
			}
		}
		state := fmt.Sprintf("players %v (%v), on the edge %v (%v), egress %v (%v), rtmp connections by role %v (%v); player got %d bytes\n%s",
			r[0], err[0], r[3], err[3], r[1], err[1], roles, err[2], player.Bytes.Load(), readLog(promLog))
		// The edge's player, and the edge's upstream on the origin.
		ok := len(r[0]) == 1 && r[0][0].value == 2 &&
			len(r[3]) == 1 && r[3][0].value == 1 &&
			len(r[1]) == 1 && r[1][0].value > 0 &&
			roles["player"] == 2 && roles["publisher"] == 1
		if ok {
			t.Logf("players %v (edge %v), egress %.0f bit/s, rtmp connections %v", r[0][0].value, r[3][0].value, r[1][0].value, roles)
		}
		return ok, state
	})

	// A reload on the edge, then every panel must show something (zeros
	// for what has not happened) and the reload annotation must mark it;
	// only the restart annotation stays empty.
	if err := edgeProc.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every query of the dashboard to return a result", func() (bool, string) {
		var empty []string
		for _, q := range d.queries() {
			r, err := promQuery(q.expr)
			if err != nil {
				t.Fatalf("%s: %v\n%s", q.where, err, q.expr)
			}
			if len(r) == 0 && q.where != `annotation "Restarts"` {
				empty = append(empty, q.where)
			}
		}
		return len(empty) == 0, fmt.Sprintf("no result from %s", strings.Join(empty, ", "))
	})
	// Every metric named is exposed (histograms by their _bucket series).
	exposed := map[string]bool{}
	for _, s := range []server{origin, edge} {
		code, body := get("http://" + s.api + "/metrics")
		if code != http.StatusOK {
			t.Fatalf("%s/metrics: HTTP %d", s.api, code)
		}
		for _, line := range strings.Split(body, "\n") {
			if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
				name, _, _ = strings.Cut(name, "{")
				exposed[name] = true
			}
		}
	}
	for _, q := range d.queries() {
		for _, m := range selectorRE.FindAllStringSubmatch(q.expr, -1) {
			if !exposed[m[1]] {
				t.Errorf("%s: the server exposes no %s", q.where, m[1])
			}
		}
	}
}

// server is a running rtmpedge: its RTMP and API addresses.
type server struct{ rtmp, api string }

// run runs bin on s's addresses, with config added to its file, until the
// test ends.
func (s server) run(t *testing.T, bin, config string) *bench.Proc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rtmpedge.yaml")
	writeFile(t, cfg, fmt.Sprintf("listen: [%q]\napi: {listen: %q}\nlog: {level: warn}\n%s", s.rtmp, s.api, config))
	p, log := start(t, dir, bin, "-c", cfg)
	waitFor(t, 15*time.Second, "the server's /healthz", func() (bool, string) {
		code, body := get("http://" + s.api + "/healthz")
		return code == http.StatusOK, fmt.Sprintf("HTTP %d %s\n%s", code, body, readLog(log))
	})
	return p
}

// sample is one series of an instant query's vector result.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	value  float64
}

type result []sample

func (r result) String() string {
	var parts []string
	for _, s := range r {
		parts = append(parts, fmt.Sprintf("%v=%g", s.Metric, s.value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// instantQuery runs expr on the Prometheus at addr.
func instantQuery(addr, expr string) (result, error) {
	code, body := get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(expr))
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     result `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("HTTP %d %q: %v", code, body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", r.Data.ResultType)
	}
	for i := range r.Data.Result {
		s, _ := r.Data.Result[i].Value[1].(string)
		r.Data.Result[i].value, _ = strconv.ParseFloat(s, 64)
	}
	return r.Data.Result, nil
}

// get returns the status and body of a GET (0 and the error on failure).
func get(rawURL string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(rawURL)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond every 250 ms until it holds, or fails the test after
// timeout with cond's last description of the state.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %s", timeout, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (make test installs it: scripts/deps.sh --test): %v", name, err)
	}
	return p
}

// freeAddrs returns n distinct loopback addresses that were free a moment
// ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		a, err := freeport.Addr()
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = a
	}
	return addrs
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs name with args until the test ends, its output to a file in
// dir whose path it returns with the process (stopped by its PID: SIGTERM,
// SIGKILL after 5 s).
func start(t *testing.T, dir, name string, args ...string) (*bench.Proc, string) {
	t.Helper()
	log := filepath.Join(dir, filepath.Base(name)+".log")
	p, err := bench.StartProc(name, log, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, log
}

// readLog returns a process's output so far, for failure messages.
func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
