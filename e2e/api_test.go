package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The HTTP API, metrics and live reload, driven with curl, jq, promtool
// and a real Prometheus server.

// apiConfig is an origin with the API on %API%.
const apiOriginConfig = `
listen: ["%ADDR%"]
api: {listen: "%API%"}
vhosts:
  __defaultVhost__: {}
`

// curlJQ fetches url with curl and applies the jq filter, returning jq's
// raw output trimmed.
func curlJQ(t *testing.T, rawURL, filter string, curlArgs ...string) string {
	t.Helper()
	requireTool(t, "curl")
	requireTool(t, "jq")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := append([]string{"-sS", "--max-time", "8"}, curlArgs...)
	body, err := exec.CommandContext(ctx, "curl", append(args, rawURL)...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", rawURL, err)
	}
	jq := exec.CommandContext(ctx, "jq", "-r", filter)
	jq.Stdin = bytes.NewReader(body)
	out, err := jq.Output()
	if err != nil {
		t.Fatalf("jq %q on %s: %v\n%s", filter, rawURL, err, body)
	}
	return strings.TrimSpace(string(out))
}

// curlStatus returns the HTTP status curl got for a request.
func curlStatus(t *testing.T, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "8"}, args...)...).Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("curl %v: %v", args, err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// waitJQ polls until the filter's output equals want.
func waitJQ(t *testing.T, rawURL, filter, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := ""
	for time.Now().Before(deadline) {
		if got = curlJQ(t, rawURL, filter); got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s %s: got %q, want %q", rawURL, filter, got, want)
}

func TestAPIReportsStreamsAndClientsAndKicks(t *testing.T) {
	origin := startServer(t, apiOriginConfig)
	edge := startServer(t, fmt.Sprintf(`
listen: ["%%ADDR%%"]
http: {listen: ["%%HTTP%%"]}
api: {listen: "%%API%%"}
vhosts:
  __defaultVhost__:
    cluster: {mode: remote, origin: ["%s"]}
`, origin.addr))
	oAPI, eAPI := "http://"+origin.apiAddr+"/api/v1/", "http://"+edge.apiAddr+"/api/v1/"
	publishFFmpeg(t, origin.url("live/api"), "640x360", 60)
	probeUntil(t, origin.url("live/api"), hasAV)

	// Players on the edge: rtmpdump to a file (the ground truth of the
	// rate), a Go player, and curl reading HTTP-FLV.
	dump := filepath.Join(t.TempDir(), "dump.flv")
	rd := startProcess(t, "rtmpdump", "-q", "-v", "-r", edge.url("live/api"), "-o", dump)
	defer rd.kill()
	w := watch(t, edge.url("live/api"))
	flv := startProcess(t, "curl", "-sS", "-o", "/dev/null", "http://"+edge.httpAddr+"/live/api.flv")
	defer flv.kill()
	w.waitFrames(t, 25, 15*time.Second)
	waitJQ(t, eAPI+"streams", ".streams[0].clients", "3", 10*time.Second)

	// The rate rtmpdump receives, over 10 s.
	size := func() int64 {
		fi, err := os.Stat(dump)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	s0, t0 := size(), time.Now()
	time.Sleep(10 * time.Second)
	truth := float64(size()-s0) * 8 / 1000 / time.Since(t0).Seconds()
	t.Logf("rtmpdump received %.0f kbit/s", truth)

	if got := curlJQ(t, eAPI+"streams", ".streams | length"); got != "1" {
		t.Errorf("edge streams: %s, want 1", got)
	}
	st := curlJQ(t, eAPI+"streams", `.streams[0] | [.name, .app, .upstream.origin, .upstream.state, .video.codec, .video.width, .video.height, .audio.codec, .audio.sample_rate, .publish.active] | map(tostring) | join(" ")`)
	if want := "api live " + origin.addr + " playing H264 640 360 AAC 44100 true"; st != want {
		t.Errorf("edge stream: %q, want %q", st, want)
	}
	// On the origin: the publisher and the edge's one upstream.
	if got := curlJQ(t, oAPI+"streams", ".streams[0].clients"); got != "2" {
		t.Errorf("origin stream clients: %s, want 2 (publisher + one edge upstream)", got)
	}
	if got := curlJQ(t, oAPI+"clients?count=100", `[.clients[] | select(.publish)] | length`); got != "1" {
		t.Errorf("origin publishers: %s", got)
	}
	// Rates against what rtmpdump got: within 20%.
	within := func(what string, kbps int) {
		if math.Abs(float64(kbps)-truth) > 0.2*truth {
			t.Errorf("%s: %d kbit/s, rtmpdump received %.0f", what, kbps, truth)
		} else {
			t.Logf("%s: %d kbit/s", what, kbps)
		}
	}
	within("origin stream recv_30s", atoi(t, curlJQ(t, oAPI+"streams", ".streams[0].kbps.recv_30s")))
	within("edge stream send_30s / 3 players", atoi(t, curlJQ(t, eAPI+"streams", ".streams[0].kbps.send_30s"))/3)
	within("edge flv player send_30s", atoi(t, curlJQ(t, eAPI+"clients", `.clients[] | select(.type == "flv-play") | .kbps.send_30s`)))

	// Paging.
	if got := curlJQ(t, eAPI+"clients?start=1&count=2", `[(.clients | length), .total] | map(tostring) | join(" ")`); got != "2 3" {
		t.Errorf("clients?start=1&count=2: %q, want 2 of 3", got)
	}
	// The vhost: an edge with its origin alive.
	if got := curlJQ(t, eAPI+"vhosts", `.vhosts[0] | [.mode, .clients, .streams, .origins[0].addr, .origins[0].alive] | map(tostring) | join(" ")`); got != "remote 3 1 "+origin.addr+" true" {
		t.Errorf("edge vhost: %q", got)
	}

	// Kick the HTTP-FLV player: curl ends, the others play on.
	id := curlJQ(t, eAPI+"clients", `.clients[] | select(.type == "flv-play") | .id`)
	if got := curlJQ(t, eAPI+"clients/"+id, ".client.type"); got != "flv-play" {
		t.Fatalf("client %s: %q", id, got)
	}
	if got := curlJQ(t, eAPI+"clients/"+id, ".code", "-X", "DELETE"); got != "0" {
		t.Fatalf("DELETE client %s: code %s", id, got)
	}
	if _, done := flv.wait(5 * time.Second); !done {
		t.Error("the kicked HTTP-FLV player's connection stayed open")
	}
	waitJQ(t, eAPI+"clients", ".total", "2", 5*time.Second)
	if got := curlStatus(t, "-X", "DELETE", eAPI+"clients/"+id); got != http.StatusNotFound {
		t.Errorf("DELETE of a gone client: HTTP %d, want 404", got)
	}
	if got := curlJQ(t, eAPI+"streams/nope", ".code"); got != "2048" {
		t.Errorf("unknown stream: code %s, want SRS's 2048", got)
	}
	before := w.frames()
	w.waitFrames(t, before+25, 10*time.Second)
	if !strings.Contains(edge.log.String(), "kicked through the API") {
		t.Error("the kick is not in the log")
	}
}

func TestAPIAuthAndHealth(t *testing.T) {
	srv := startServer(t, `
listen: ["%ADDR%"]
api: {listen: "%API%", auth: "ops:s3cret"}
`)
	base := "http://" + srv.apiAddr
	if got := curlStatus(t, base+"/api/v1/streams"); got != http.StatusUnauthorized {
		t.Errorf("no credentials: HTTP %d, want 401", got)
	}
	if got := curlStatus(t, "-u", "ops:wrong", base+"/metrics"); got != http.StatusUnauthorized {
		t.Errorf("wrong password: HTTP %d, want 401", got)
	}
	if got := curlStatus(t, "-u", "ops:s3cret", base+"/api/v1/streams"); got != http.StatusOK {
		t.Errorf("with credentials: HTTP %d, want 200", got)
	}
	for _, p := range []string{"/api/v1/health", "/healthz"} {
		if got := curlStatus(t, base+p); got != http.StatusOK {
			t.Errorf("%s without credentials: HTTP %d, want 200", p, got)
		}
	}
}

func TestMetricsPassPromtoolAndPrometheusScrapesThem(t *testing.T) {
	requireTool(t, "promtool")
	prom := requireTool(t, "prometheus")
	origin := startServer(t, originConfig)
	edge := startServer(t, fmt.Sprintf(`
listen: ["%%ADDR%%"]
api: {listen: "%%API%%"}
vhosts:
  __defaultVhost__:
    cluster: {mode: remote, origin: ["%s"]}
`, origin.addr))
	publishFFmpeg(t, origin.url("live/m"), "320x240", 60)
	probeUntil(t, origin.url("live/m"), hasAV)
	const players = 5
	for range players {
		watch(t, edge.url("live/m")).waitFrames(t, 5, 15*time.Second)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body, err := exec.CommandContext(ctx, "curl", "-sS", "http://"+edge.apiAddr+"/metrics").Output()
	if err != nil {
		t.Fatal(err)
	}
	check := exec.CommandContext(ctx, "promtool", "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	for _, want := range []string{
		`rtmpedge_players{vhost="__defaultvhost__"} 5`,
		`rtmpedge_upstream_connects_total{origin="` + origin.addr + `"} 1`,
		`rtmpedge_flush_duration_seconds_bucket`,
		`go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A real Prometheus scraping the edge every second.
	dir := t.TempDir()
	webAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n  - job_name: edge\n    static_configs: [{targets: [%q]}]\n", edge.apiAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+webAddr)
	defer p.kill()
	query := "http://" + webAddr + "/api/v1/query?query=" + url.QueryEscape("sum(rtmpedge_players)")
	deadline := time.Now().Add(40 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		resp, err := http.Get(query)
		if err == nil {
			var r struct {
				Data struct {
					Result []struct {
						Value []any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err == nil && len(r.Data.Result) == 1 && len(r.Data.Result[0].Value) == 2 {
				if got, _ = r.Data.Result[0].Value[1].(string); got == strconv.Itoa(players) {
					t.Logf("prometheus: sum(rtmpedge_players) = %s", got)
					return
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("prometheus never reported %d players (last %q)\n%s", players, got, lastLines(p.out.String(), 20))
}

// hangup sends SIGHUP to the server and waits for its reload line.
func (s *server) hangup(t *testing.T) {
	t.Helper()
	n := strings.Count(s.log.String(), "configuration reloaded")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.log.String(), "configuration reloaded") == n {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP:\n%s", lastLines(s.log.String(), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReloadUnderPlayers changes an edge's origins and listeners under 100
// players: nobody is disconnected, the listeners follow the file, and the
// next failover goes by the new origin list. A broken file changes nothing.
func TestReloadUnderPlayers(t *testing.T) {
	o1, o2, o3 := startServer(t, originConfig), startServer(t, originConfig), startServer(t, originConfig)
	publishTee(t, 240, o1.url("live/rl"), o2.url("live/rl"), o3.url("live/rl"))
	for _, o := range []*server{o1, o2, o3} {
		probeUntil(t, o.url("live/rl"), hasAV)
	}
	edgeCfg := func(listen string, origins ...string) string {
		return strings.Replace(edgeConfig("", origins...), `listen: ["%ADDR%"]`, "listen: ["+listen+"]", 1) +
			"api: {listen: \"%API%\"}\n"
	}
	edge := startServer(t, edgeCfg(`"%ADDR%"`, o1.addr, o2.addr))
	api := "http://" + edge.apiAddr + "/api/v1/"

	start := time.Now()
	const players = 100
	ws := make([]*watcher, players)
	for i := range ws {
		ws[i] = watch(t, edge.url("live/rl"))
	}
	for _, w := range ws {
		w.waitFrames(t, 10, 20*time.Second)
	}
	if got := curlJQ(t, api+"streams", ".streams[0].upstream.origin"); got != o1.addr {
		t.Fatalf("upstream on %s, want the first origin %s", got, o1.addr)
	}

	// The new file: origins o1 and o3, and another RTMP port instead of
	// the one every player came in on.
	newAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := strings.ReplaceAll(edgeCfg(`"`+newAddr+`"`, o1.addr, o3.addr), "%API%", edge.apiAddr)
	if err := os.WriteFile(edge.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	edge.hangup(t)
	t.Logf("reloaded %s after start", time.Since(start).Round(time.Millisecond))
	if c, err := net.DialTimeout("tcp", edge.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the removed listener %s still accepts", edge.addr)
	}
	p := probeUntil(t, "rtmp://"+newAddr+"/live/rl", hasAV)
	if _, w, h, _ := p.stream("video"); w != 320 || h != 240 {
		t.Errorf("new listener: video %dx%d", w, h)
	}
	waitAll(t, ws, 10, 10*time.Second)
	for i, w := range ws {
		if err := w.failed(); err != nil {
			t.Fatalf("player %d disconnected by the reload: %v", i, err)
		}
	}

	// The next failover takes the new list: o3, never o2.
	base2 := countPlays(o2.log.String(), "rl")
	killed := time.Now()
	o1.kill()
	t.Logf("o1 killed %s after start", time.Since(start).Round(time.Millisecond))
	waitAll(t, ws, 25, 20*time.Second)
	waitJQ(t, api+"streams", ".streams[0].upstream.origin", o3.addr, 5*time.Second)
	if n := countPlays(o2.log.String(), "rl") - base2; n != 0 {
		t.Errorf("o2, dropped from the list, got %d upstreams", n)
	}
	var worst time.Duration
	for i, w := range ws {
		if err := w.failed(); err != nil {
			t.Errorf("player %d disconnected: %v", i, err)
		}
		gap, _ := w.maxGap(killed.Add(-time.Second))
		worst = max(worst, gap)
	}
	t.Logf("reload under %d players: 0 disconnects; failover to the new list's origin, longest gap %s", players, worst.Round(time.Millisecond))
	if got := curlJQ(t, api+"streams", ".streams[0].upstream.failovers"); got != "1" {
		t.Errorf("failovers: %s, want 1", got)
	}

	// A broken file: refused with its error, the old configuration stays.
	if err := os.WriteFile(edge.cfgPath, []byte("listen: [\"127.0.0.1:1\"]\nvhosts: {a: {cluster: {mode: nonsense}}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := curlStatus(t, "-X", "POST", api+"reload"); got != http.StatusBadRequest {
		t.Errorf("reload of a broken file: HTTP %d, want 400", got)
	}
	if got := curlJQ(t, api+"raw?rpc=reload", ".error"); !strings.Contains(got, "mode") {
		t.Errorf("SRS's raw reload of a broken file: %q, want the validation error", got)
	}
	probeUntil(t, "rtmp://"+newAddr+"/live/rl", hasAV)
	for i, w := range ws {
		if err := w.failed(); err != nil {
			t.Errorf("player %d disconnected after the failed reload: %v", i, err)
		}
	}
}

// waitAll waits until every watcher got n more video frames than now.
func waitAll(t *testing.T, ws []*watcher, n int, timeout time.Duration) {
	t.Helper()
	targets := make([]int, len(ws))
	for i, w := range ws {
		targets[i] = w.frames() + n
	}
	for i, w := range ws {
		w.waitFrames(t, targets[i], timeout)
	}
}

// TestReloadDisablingAVhostClosesItsClients: a vhost disabled by a reload
// closes its players; the other vhost's play on.
func TestReloadDisablingAVhostClosesItsClients(t *testing.T) {
	cfg := func(enabled bool) string {
		return fmt.Sprintf(`
listen: ["%%ADDR%%"]
log: {level: debug}
vhosts:
  __defaultVhost__: {}
  other: {enabled: %t}
`, enabled)
	}
	srv := startServer(t, cfg(true))
	publishFFmpeg(t, srv.url("live/a"), "320x240", 60)
	publishFFmpeg(t, srv.url("live?vhost=other/b"), "320x240", 60)
	probeUntil(t, srv.url("live/a"), hasAV)
	probeUntil(t, srv.url("live?vhost=other/b"), hasAV)
	keep, gone := watch(t, srv.url("live/a")), watch(t, srv.url("live?vhost=other/b"))
	keep.waitFrames(t, 10, 10*time.Second)
	gone.waitFrames(t, 10, 10*time.Second)

	if err := os.WriteFile(srv.cfgPath, []byte(strings.ReplaceAll(cfg(false), "%ADDR%", srv.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.hangup(t)
	deadline := time.Now().Add(5 * time.Second)
	for gone.failed() == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if gone.failed() == nil {
		t.Error("the player of the disabled vhost is still connected")
	}
	keep.waitFrames(t, keep.frames()+25, 10*time.Second)
	if !strings.Contains(srv.log.String(), `removed or disabled by a configuration reload`) {
		t.Error("no log line says why the clients were closed")
	}
	if !strings.Contains(srv.log.String(), "level=DEBUG") {
		t.Error("log.level debug did not take effect on reload")
	}
}
