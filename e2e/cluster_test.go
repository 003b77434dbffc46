package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/cluster"
	"github.com/rtmpedge/rtmpedge/cluster/redisproc"
	"github.com/rtmpedge/rtmpedge/cluster/resp"
)

// Timings of the test clusters: short, so that expiries and heartbeats
// show within a test.
const (
	testClaimTTL  = 4 * time.Second
	testHeartbeat = time.Second
)

// registry is a redis-server started for one test, and a client of it.
type registry struct {
	*redisproc.Server
	rdb *resp.Client
}

// startRegistry runs redis-server on a free loopback port (no persistence)
// until the test ends; it is stopped by its PID.
func startRegistry(t *testing.T) *registry { t.Helper(); return startRegistryAt(t, "") }

// startRegistryAt is startRegistry on addr ("": a free port).
func startRegistryAt(t *testing.T, addr string) *registry {
	t.Helper()
	requireTool(t, "redis-server")
	var srv *redisproc.Server
	var err error
	if addr == "" {
		srv, err = redisproc.Start(t.TempDir())
	} else {
		srv, err = redisproc.StartAt(t.TempDir(), addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	rdb := resp.New(resp.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return &registry{Server: srv, rdb: rdb}
}

// holder returns the address of the origin that claims live/stream of the
// default vhost, or "".
func (r *registry) holder(stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := r.rdb.Do(ctx, "GET", cluster.KeyPrefix+"__defaultvhost__/live/"+stream)
	if err != nil {
		return ""
	}
	s, _ := v.(string)
	addr, _, _ := strings.Cut(s, " ")
	return addr
}

// waitHolder waits until the registry names want as stream's holder.
func (r *registry) waitHolder(t *testing.T, stream, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r.holder(stream) == want {
			return time.Since(start)
		}
	}
	t.Fatalf("registry: %s held by %q after %s, want %s", stream, r.holder(stream), timeout, want)
	return 0
}

// clusterOriginConfig is an origin claiming its streams in the registry.
func clusterOriginConfig(r *registry) string {
	return fmt.Sprintf(`
listen: ["%%ADDR%%"]
log: {level: info}
cluster: {registry: %q, claim_ttl: %s, heartbeat: %s}
vhosts:
  __defaultVhost__: {}
`, r.URL(), testClaimTTL, testHeartbeat)
}

// clusterEdgeConfig is an edge in front of origins (failover order) that
// asks the registry first.
func clusterEdgeConfig(r *registry, origins ...*server) string {
	addrs := make([]string, len(origins))
	for i, o := range origins {
		addrs[i] = o.addr
	}
	return fmt.Sprintf("cluster: {registry: %q, lookup_timeout: 200ms}\n", r.URL()) + edgeConfig("", addrs...)
}

// testCluster is three origins and two edges sharing a registry. The edges
// list the origins in the same order, origin 3 last: what they do with a
// stream published on origin 3 is the registry's doing.
type testCluster struct {
	reg     *registry
	origins []*server
	edges   []*server
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{reg: startRegistry(t)}
	for range 3 {
		c.origins = append(c.origins, startServer(t, clusterOriginConfig(c.reg)))
	}
	for range 2 {
		c.edges = append(c.edges, startServer(t, clusterEdgeConfig(c.reg, c.origins...)))
	}
	return c
}

// playOnEdges publishes live/stream with ffmpeg to via (an origin or an
// edge), waits until holder claims it, and returns a player on each edge,
// both with video.
func (c *testCluster) playOnEdges(t *testing.T, via *server, stream string, holder *server) []*watcher {
	t.Helper()
	publishFFmpeg(t, via.url("live/"+stream), "320x240", 90)
	c.reg.waitHolder(t, stream, holder.addr, 10*time.Second)
	ws := []*watcher{watch(t, c.edges[0].url("live/"+stream)), watch(t, c.edges[1].url("live/"+stream))}
	for _, w := range ws {
		w.waitFrames(t, 25, 15*time.Second)
	}
	return ws
}

// publishCode publishes url with the Go client and returns the status code
// of the error it got ("" if the publish started).
func publishCode(t *testing.T, url string) string {
	t.Helper()
	pub, err := bench.Dial(url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	return statusCode(pub.Publish())
}

// logLines returns the lines of a server log with message msg and every
// key=value of attrs.
func logLines(log, msg string, attrs ...string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `msg="`+msg+`"`) {
			continue
		}
		ok := true
		for _, a := range attrs {
			ok = ok && strings.Contains(l+" ", " "+a+" ")
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// waitLines is logLines on s's log, waiting up to 2 s for a first match:
// a log line may reach the test after the client saw the answer.
func waitLines(s *server, msg string, attrs ...string) []string {
	var lines []string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if lines = logLines(s.log.String(), msg, attrs...); len(lines) > 0 {
			break
		}
	}
	return lines
}

var originAttr = regexp.MustCompile(` origin=(\S+)`)

// upstreams returns the origins an edge's upstreams of stream played from,
// in order.
func upstreams(e *server, stream string) []string {
	var out []string
	for _, l := range waitLines(e, "upstream playing", "stream="+stream) {
		if m := originAttr.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// serving returns the origins among origins that deliver video of
// live/stream to a player of their own: the uniqueness check. An origin
// without the stream redirects the player or has nothing to send.
func serving(t *testing.T, origins []*server, stream string) []*server {
	t.Helper()
	var out []*server
	for _, o := range origins {
		c, err := bench.Dial(o.url("live/"+stream), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Play(); err != nil {
			c.Close()
			continue // redirected
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		for {
			msg, err := c.ReadMessage()
			if err != nil {
				break
			}
			if msg.TypeID == chunk.TypeVideo {
				out = append(out, o)
				break
			}
		}
		c.Close()
	}
	return out
}

// checkUnique fails the test unless want alone among origins serves
// live/stream.
func checkUnique(t *testing.T, origins []*server, stream string, want *server) {
	t.Helper()
	got := serving(t, origins, stream)
	if len(got) != 1 || got[0] != want {
		addrs := make([]string, len(got))
		for i, o := range got {
			addrs[i] = o.addr
		}
		t.Fatalf("origins serving %s: %v, want only %s", stream, addrs, want.addr)
	}
}

// A stream published straight to origin 3 is found by both edges through
// the registry: one upstream each, both on origin 3; another origin
// refuses a second publisher of it and redirects its players there.
func TestClusterPublishStraightToOrigin(t *testing.T) {
	c := startCluster(t)
	o1, o2, o3 := c.origins[0], c.origins[1], c.origins[2]
	ws := c.playOnEdges(t, o3, "c1", o3)
	for i, e := range c.edges {
		if up := upstreams(e, "c1"); len(up) != 1 || up[0] != o3.addr {
			t.Errorf("edge %d upstreams of c1: %v, want exactly one, on origin 3 (%s)", i+1, up, o3.addr)
		}
	}
	if n := countPlays(o3.log.String(), "c1"); n != 2 {
		t.Errorf("origin 3 saw %d plays of c1, want 2 (one upstream per edge)", n)
	}
	for i, o := range []*server{o1, o2} {
		if n := len(logLines(o.log.String(), "connection open")); n != 0 {
			t.Errorf("origin %d saw %d connections, want none: the edges asked the registry", i+1, n)
		}
	}

	// A second publisher of the stream on origin 1 is refused.
	second := publishFFmpeg(t, o1.url("live/c1"), "320x240", 30)
	if _, exited := second.wait(10 * time.Second); !exited {
		t.Fatal("the second publisher, on origin 1, is still publishing")
	}
	if len(waitLines(o1, "publish refused: the stream is claimed by another origin", "holder="+o3.addr)) != 1 {
		t.Error("origin 1 did not log the refusal naming origin 3")
	}
	if code := publishCode(t, o2.url("live/c1")); code != "NetStream.Publish.BadName" {
		t.Fatalf("publish on origin 2: %q, want NetStream.Publish.BadName", code)
	}
	// An origin set to redirect sends the publisher to origin 3 instead.
	o4 := startServer(t, strings.Replace(clusterOriginConfig(c.reg), "cluster: {", "cluster: {on_conflict: redirect, ", 1))
	if code := publishCode(t, o4.url("live/c1")); code != "NetConnection.Connect.Rejected" {
		t.Fatalf("publish on an origin with on_conflict: redirect: %q, want NetConnection.Connect.Rejected (RTMP 302)", code)
	}
	if len(waitLines(o4, "publish redirected: the stream is claimed by another origin", "to="+o3.addr)) != 1 {
		t.Error("the origin with on_conflict: redirect did not log the redirect to origin 3")
	}
	if c.reg.holder("c1") != o3.addr {
		t.Fatalf("the refused publishers moved the claim to %s", c.reg.holder("c1"))
	}
	// An edge that knows no registry and only origin 1 is redirected to
	// origin 3 and follows.
	plain := startServer(t, edgeConfig("", o1.addr))
	watch(t, plain.url("live/c1")).waitFrames(t, 25, 15*time.Second)
	if up := upstreams(plain, "c1"); len(up) != 1 || up[0] != o3.addr || !plain.waitLog("origin redirects", time.Second) {
		t.Errorf("an edge without a registry: upstreams %v, want one on origin 3 after origin 1's redirect", up)
	}
	// Only origin 3 serves it: the others redirect their players there.
	checkUnique(t, c.origins, "c1", o3)
	if len(waitLines(o1, "play redirected: the stream is published on another origin", "to="+o3.addr)) == 0 {
		t.Error("origin 1 did not redirect its player to origin 3")
	}
	for _, w := range ws {
		if err := w.failed(); err != nil {
			t.Errorf("an edge player was disconnected: %v", err)
		}
	}
}

// Origin 3 dies with SIGKILL while it has the stream; the publisher comes
// back through an edge. The edge's forward takes the claim over on another
// origin at once (origin 3's port refuses connections), the players on both
// edges resume without being disconnected, and both upstreams end on that
// origin.
func TestClusterOriginKilledPublisherMovesThroughEdge(t *testing.T) {
	c := startCluster(t)
	o3 := c.origins[2]
	ws := c.playOnEdges(t, o3, "c2", o3)
	killed := time.Now()
	o3.kill()
	republished := time.Now()
	publishFFmpeg(t, c.edges[0].url("live/c2"), "320x240", 60)
	waitResumed(t, ws, republished, killed)
	c.checkMoved(t, "c2", c.origins[:2])
}

// waitResumed waits until every watcher has 50 more video frames, and
// fails the test if one was disconnected or its longest gap in video since
// the kill (the origin's death; the publisher came back at since) passed
// 3 s.
func waitResumed(t *testing.T, ws []*watcher, since, killed time.Time) {
	t.Helper()
	targets := make([]int, len(ws))
	for i, w := range ws {
		targets[i] = w.frames() + 50
	}
	for i, w := range ws {
		w.waitFrames(t, targets[i], 20*time.Second)
	}
	for i, w := range ws {
		if err := w.failed(); err != nil {
			t.Fatalf("edge %d's player was disconnected: %v", i+1, err)
		}
		gap, mono := w.maxGap(killed.Add(-time.Second))
		t.Logf("edge %d: longest gap in video %s (the publisher came back %s after the kill); timestamps monotonic: %v",
			i+1, gap.Round(time.Millisecond), since.Sub(killed).Round(time.Millisecond), mono)
		if gap > 3*time.Second {
			t.Errorf("edge %d: players stalled %s, want resumed within 3s", i+1, gap)
		}
	}
}

// checkMoved checks that the claim of stream went to one of alive, which
// took it over from the dead holder, that both edges' last upstreams are
// on it, and that it alone serves the stream.
func (c *testCluster) checkMoved(t *testing.T, stream string, alive []*server) {
	t.Helper()
	now := c.reg.holder(stream)
	var moved *server
	for _, o := range alive {
		if o.addr == now {
			moved = o
		}
	}
	if moved == nil {
		t.Fatalf("registry names %q for %s, want one of the origins alive", now, stream)
	}
	if !moved.waitLog("stream claim taken over from an origin that is gone", time.Second) {
		t.Error("the new origin did not take the claim over from origin 3")
	}
	for i, e := range c.edges {
		up := upstreams(e, stream)
		if len(up) == 0 || up[len(up)-1] != moved.addr {
			t.Errorf("edge %d upstreams of %s: %v, want the last one on %s", i+1, stream, up, moved.addr)
		}
	}
	checkUnique(t, alive, stream, moved)
}

// A publish forwarded by edge 1 lands on origin 1 (the registry has nothing,
// the configured order serves); origin 1 dies with SIGKILL. The forward
// resumes on origin 2, which takes the claim over at once, and the players
// on both edges follow without being disconnected.
func TestClusterForwardedPublishFailoverMovesClaim(t *testing.T) {
	c := startCluster(t)
	o1 := c.origins[0]
	ws := c.playOnEdges(t, c.edges[0], "c6", o1)
	killed := time.Now()
	o1.kill()
	waitResumed(t, ws, killed, killed)
	if !c.edges[0].waitLog("forwarding resumed on another origin", time.Second) {
		t.Error("edge 1 did not resume the forward on another origin")
	}
	c.checkMoved(t, "c6", c.origins[1:])
}

// An origin that crashed and restarted on the same address does not
// inherit its former claims: nothing renews them and they expire by their
// TTL. A publish on it of one of those streams takes the claim over at once.
func TestClusterRestartedOriginDoesNotInheritClaims(t *testing.T) {
	reg := startRegistry(t)
	o := startServer(t, clusterOriginConfig(reg))
	pubs := []*process{publishFFmpeg(t, o.url("live/c7"), "320x240", 60), publishFFmpeg(t, o.url("live/c8"), "320x240", 60)}
	reg.waitHolder(t, "c7", o.addr, 10*time.Second)
	reg.waitHolder(t, "c8", o.addr, 10*time.Second)
	o.kill()
	for _, p := range pubs {
		p.kill()
	}
	o = startServerFile(t, o.bin, o.path, o.addr)
	publishFFmpeg(t, o.url("live/c8"), "320x240", 60)
	if !o.waitLog("stream claim taken over from an origin that is gone", 10*time.Second) {
		t.Error("the restarted origin did not take over its former claim of a stream published to it again")
	}
	expired := reg.waitHolder(t, "c7", "", testClaimTTL+2*time.Second)
	t.Logf("the crashed origin's claim of a stream nobody publishes expired %s after the restart (claim_ttl %s)",
		expired.Round(time.Millisecond), testClaimTTL)
	if reg.holder("c8") != o.addr {
		t.Errorf("the stream published again lost its claim: %q", reg.holder("c8"))
	}
}

// Redis dies mid-run: the streams keep playing, and new publishes and plays
// work through the configured order. Redis comes back empty: the claims
// come back within one heartbeat.
func TestClusterRegistryDown(t *testing.T) {
	c := startCluster(t)
	o1, o2, o3 := c.origins[0], c.origins[1], c.origins[2]
	e1, e2 := c.edges[0], c.edges[1]
	ws := c.playOnEdges(t, o3, "c3", o3)

	killed := time.Now()
	c.reg.Kill()
	// Playing streams go on.
	for _, w := range ws {
		w.waitFrames(t, w.frames()+50, 10*time.Second)
	}
	for i, w := range ws {
		gap, _ := w.maxGap(killed)
		t.Logf("edge %d: longest gap in video with the registry down: %s", i+1, gap.Round(time.Millisecond))
		if gap > 3*time.Second {
			t.Errorf("edge %d: a gap of %s after the registry died", i+1, gap)
		}
		if err := w.failed(); err != nil {
			t.Errorf("edge %d's player was disconnected: %v", i+1, err)
		}
	}
	// New publishes are accepted without a claim; new plays find them in
	// the configured order (origin 1 first; a stream on origin 2 after
	// origin 1's wait for it runs into no_data_timeout).
	publishFFmpeg(t, o1.url("live/c4"), "320x240", 90)
	publishFFmpeg(t, o2.url("live/c5"), "320x240", 90)
	probeUntil(t, o1.url("live/c4"), hasAV)
	probeUntil(t, o2.url("live/c5"), hasAV)
	for _, p := range []struct {
		e      *server
		stream string
	}{{e1, "c4"}, {e2, "c5"}, {e2, "c3"}} {
		start := time.Now()
		w := watch(t, p.e.url("live/"+p.stream))
		w.waitFrames(t, 1, 15*time.Second)
		t.Logf("new play of %s on %s with the registry down: first frame after %s", p.stream, p.e.addr, time.Since(start).Round(time.Millisecond))
	}
	for _, s := range []*server{o1, e1} {
		if !s.waitLog("stream registry unreachable", time.Second) {
			t.Errorf("%s did not warn that the registry is unreachable", s.addr)
		}
	}

	// Redis comes back empty; the heartbeats claim the streams again.
	if err := c.reg.Restart(); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for _, h := range []struct {
		stream string
		o      *server
	}{{"c3", o3}, {"c4", o1}, {"c5", o2}} {
		worst = max(worst, c.reg.waitHolder(t, h.stream, h.o.addr, testHeartbeat+2*time.Second))
	}
	t.Logf("all claims back %s after the registry restarted (heartbeat %s)", worst.Round(time.Millisecond), testHeartbeat)
	if worst > testHeartbeat+500*time.Millisecond {
		t.Errorf("claims came back after %s, want within one heartbeat (%s)", worst, testHeartbeat)
	}
	if !o3.waitLog("stream registry reachable again", time.Second) {
		t.Error("origin 3 did not log the registry's return")
	}
	checkUnique(t, c.origins, "c3", o3)
	for _, w := range ws {
		if err := w.failed(); err != nil {
			t.Errorf("a player was disconnected: %v", err)
		}
	}
}

// A registry that hangs (SIGSTOP: connections open, no answers) costs a
// publish or a new edge upstream at most the lookup timeout per request;
// the streams already playing do not notice.
func TestClusterRegistryHangs(t *testing.T) {
	c := startCluster(t)
	o1, o3 := c.origins[0], c.origins[2]
	ws := c.playOnEdges(t, o3, "c9", o3)
	if err := syscall.Kill(c.reg.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := time.Now()
	defer func() { _ = syscall.Kill(c.reg.PID(), syscall.SIGCONT) }()

	start := time.Now()
	publishFFmpeg(t, o1.url("live/c10"), "320x240", 60)
	w := watch(t, c.edges[1].url("live/c10"))
	w.waitFrames(t, 1, 15*time.Second)
	t.Logf("with the registry hung: publish to origin 1 and first frame through edge 2 after %s (lookup_timeout 200ms)",
		time.Since(start).Round(time.Millisecond))
	for i, w := range ws {
		w.waitFrames(t, w.frames()+25, 10*time.Second)
		gap, _ := w.maxGap(hung)
		t.Logf("edge %d: longest gap in video with the registry hung: %s", i+1, gap.Round(time.Millisecond))
		if gap > time.Second {
			t.Errorf("edge %d: a gap of %s while the registry hung", i+1, gap)
		}
	}
	if len(waitLines(c.edges[1], "stream registry unreachable: going on with local knowledge and the configured origin order", "op=lookup")) == 0 {
		t.Error("edge 2 did not warn that the registry is unreachable")
	}
}

// TestClusterExampleConfigs runs the example origin cluster from its files
// as they are (RTMP 19360-19362 and 19365-19366, Redis on 6379): a stream
// published to origin 3 plays through both edges, each with one upstream
// on origin 3.
func TestClusterExampleConfigs(t *testing.T) {
	ports := map[string]string{"origin1": "19360", "origin2": "19361", "origin3": "19362", "edge1": "19365", "edge2": "19366"}
	for _, p := range append(slices.Collect(maps.Values(ports)), "6379") {
		if l, err := net.Listen("tcp", "127.0.0.1:"+p); err != nil {
			t.Fatalf("the example cluster needs 127.0.0.1:%s free: %v", p, err)
		} else {
			l.Close()
		}
	}
	reg := startRegistryAt(t, "127.0.0.1:6379")
	servers := map[string]*server{}
	for _, name := range []string{"origin1", "origin2", "origin3", "edge1", "edge2"} {
		servers[name] = startServerFile(t, serverBin, "../conf/examples/cluster/"+name+".yaml", "127.0.0.1:"+ports[name])
	}
	o3 := servers["origin3"]
	publishFFmpeg(t, o3.url("live/example"), "320x240", 60)
	reg.waitHolder(t, "example", o3.addr, 10*time.Second)
	for _, name := range []string{"edge1", "edge2"} {
		e := servers[name]
		watch(t, e.url("live/example")).waitFrames(t, 25, 15*time.Second)
		if up := upstreams(e, "example"); len(up) != 1 || up[0] != o3.addr {
			t.Errorf("%s upstreams %v, want one on origin 3", name, up)
		}
	}
}
