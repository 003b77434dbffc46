package e2e

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// edgeConfig is an edge whose default vhost pulls from origins, with extra
// cluster settings (YAML lines, indented under cluster).
func edgeConfig(extra string, origins ...string) string {
	return fmt.Sprintf(`
listen: ["%%ADDR%%"]
log: {level: info}
vhosts:
  __defaultVhost__:
    cluster:
      mode: remote
      origin: ["%s"]
      connect_timeout: 1s
      command_timeout: 3s
      no_data_timeout: 2s
%s
`, strings.Join(origins, `", "`), extra)
}

// countPlays counts the players of stream in a server's log: on an origin,
// the edges' upstream connections.
func countPlays(log, stream string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="play start"`) && strings.Contains(l, " stream="+stream+" ") {
			n++
		}
	}
	return n
}

// kill stops the server with SIGKILL, as a crash would.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// watcher is a Go player that records when each video message arrived.
type watcher struct {
	c        *bench.Client
	mu       sync.Mutex
	ts       []uint32
	at       []time.Time
	keyframe bool
	err      error
	done     chan struct{}
}

func watch(t *testing.T, url string) *watcher {
	t.Helper()
	c, err := bench.Dial(url, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(); err != nil {
		t.Fatal(err)
	}
	w := &watcher{c: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			msg, err := c.ReadMessage()
			if err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				return
			}
			if msg.TypeID == chunk.TypeVideo && len(msg.Payload) > 1 && msg.Payload[1] == 1 {
				w.mu.Lock()
				w.ts = append(w.ts, msg.Timestamp)
				w.at = append(w.at, time.Now())
				w.keyframe = w.keyframe || msg.Payload[0] == 0x17
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-w.done })
	return w
}

func (w *watcher) frames() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ts)
}

func (w *watcher) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// waitFrames waits until the watcher has n video frames.
func (w *watcher) waitFrames(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for w.frames() < n {
		if err := w.failed(); err != nil {
			t.Fatalf("player failed after %d frames: %v", w.frames(), err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("player got %d of %d video frames in %s", w.frames(), n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// maxGap returns the longest wall-clock gap between video frames after
// from, and whether timestamps always went forward.
func (w *watcher) maxGap(from time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	mono := true
	for i := 1; i < len(w.at); i++ {
		if int32(w.ts[i]-w.ts[i-1]) < 0 {
			mono = false
		}
		if w.at[i].After(from) {
			gap = max(gap, w.at[i].Sub(w.at[i-1]))
		}
	}
	return gap, mono
}

func TestEdgeServesManyPlayersFromOneUpstream(t *testing.T) {
	origin := startServer(t, originConfig)
	edge := startServer(t, edgeConfig("", origin.addr))
	publishFFmpeg(t, origin.url("live/one"), "320x240", 60)
	probeUntil(t, origin.url("live/one"), hasAV)
	base := countPlays(origin.log.String(), "one") // ffprobe's

	const players = 100
	watchers := make([]*watcher, players)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := watch(t, edge.url("live/one"))
			mu.Lock()
			watchers[i] = w
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, w := range watchers {
		w.waitFrames(t, 50, 20*time.Second)
		w.mu.Lock()
		keyframe := w.keyframe
		w.mu.Unlock()
		if !keyframe {
			t.Fatal("a player got no keyframe")
		}
	}
	if n := countPlays(origin.log.String(), "one") - base; n != 1 {
		t.Fatalf("origin saw %d upstream players for the stream, want exactly 1", n)
	}
	// A player joining now starts from the edge's GOP cache: its first
	// frame is a keyframe, and the origin still sees one connection.
	late := watch(t, edge.url("live/one"))
	late.waitFrames(t, 1, 10*time.Second)
	if !late.keyframe {
		t.Error("late player's first frame is not a keyframe")
	}
	if n := countPlays(origin.log.String(), "one") - base; n != 1 {
		t.Fatalf("origin saw %d upstream players after a late join, want 1", n)
	}
}

func TestEdgeLingerAndRestart(t *testing.T) {
	origin := startServer(t, originConfig)
	edge := startServer(t, edgeConfig("      linger: 1s", origin.addr))
	publishFFmpeg(t, origin.url("live/linger"), "320x240", 60)
	probeUntil(t, origin.url("live/linger"), hasAV)
	base := countPlays(origin.log.String(), "linger")

	first := watch(t, edge.url("live/linger"))
	first.waitFrames(t, 10, 15*time.Second)
	first.c.Close()
	// Back within the linger: the same upstream serves.
	time.Sleep(300 * time.Millisecond)
	again := watch(t, edge.url("live/linger"))
	again.waitFrames(t, 10, 15*time.Second)
	if n := countPlays(origin.log.String(), "linger") - base; n != 1 {
		t.Fatalf("origin saw %d upstreams, want 1 (player came back within the linger)", n)
	}
	again.c.Close()
	if !edge.waitLog("upstream stopped: no players", 5*time.Second) {
		t.Fatal("the upstream did not close after the linger")
	}
	// Players arriving right around the close are all served.
	for i := range 5 {
		w := watch(t, edge.url("live/linger"))
		w.waitFrames(t, 5, 15*time.Second)
		w.c.Close()
		time.Sleep(time.Duration(800+100*i) * time.Millisecond)
	}
	if n := countPlays(origin.log.String(), "linger") - base; n < 2 {
		t.Fatalf("origin saw %d upstreams, want a new one after the linger", n)
	}
}

// publishTee publishes one encoded stream to several servers at once.
func publishTee(t *testing.T, seconds int, urls ...string) *process {
	t.Helper()
	outs := make([]string, len(urls))
	for i, u := range urls {
		outs[i] = "[f=flv:onfail=ignore]" + u
	}
	return startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", fmt.Sprint(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-map", "0:v", "-map", "1:a", "-flags", "+global_header",
		"-f", "tee", strings.Join(outs, "|"))
}

// failoverCluster starts two origins that both carry live/stream (one
// ffmpeg publishing to both for a minute) and an edge in front of them.
func failoverCluster(t *testing.T, stream string) (o1, o2, edge *server) {
	t.Helper()
	o1 = startServer(t, originConfig)
	o2 = startServer(t, originConfig)
	edge = startServer(t, edgeConfig("", o1.addr, o2.addr))
	publishTee(t, 60, o1.url("live/"+stream), o2.url("live/"+stream))
	probeUntil(t, o1.url("live/"+stream), hasAV)
	probeUntil(t, o2.url("live/"+stream), hasAV)
	return o1, o2, edge
}

func TestEdgeFailoverKeepsPlayers(t *testing.T) {
	o1, o2, edge := failoverCluster(t, "fo")
	base := countPlays(o2.log.String(), "fo")

	const players = 20
	ws := make([]*watcher, players)
	for i := range ws {
		ws[i] = watch(t, edge.url("live/fo"))
	}
	for _, w := range ws {
		w.waitFrames(t, 25, 15*time.Second)
	}
	killed := time.Now()
	o1.kill()
	start := time.Now()
	targets := make([]int, len(ws))
	for i, w := range ws {
		targets[i] = w.frames() + 50
	}
	for i, w := range ws {
		w.waitFrames(t, targets[i], 20*time.Second)
	}
	t.Logf("all players got 50 more frames %s after the kill", time.Since(start).Round(time.Millisecond))
	var worst time.Duration
	for i, w := range ws {
		gap, mono := w.maxGap(killed.Add(-time.Second))
		worst = max(worst, gap)
		if !mono {
			t.Errorf("player %d: timestamps went back across the failover", i)
		}
		if err := w.failed(); err != nil {
			t.Errorf("player %d disconnected: %v", i, err)
		}
	}
	t.Logf("failover with a clean error (SIGKILL, connection reset): longest gap in received video %s over %d players", worst.Round(time.Millisecond), players)
	if worst > 5*time.Second {
		t.Errorf("longest gap %s", worst)
	}
	if n := countPlays(o2.log.String(), "fo") - base; n != 1 {
		t.Errorf("second origin saw %d upstreams, want 1", n)
	}
}

func TestEdgeFirstOriginAlreadyDead(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	origin := startServer(t, originConfig)
	edge := startServer(t, edgeConfig("", dead, origin.addr))
	publishFFmpeg(t, origin.url("live/dead"), "320x240", 60)
	probeUntil(t, origin.url("live/dead"), hasAV)
	start := time.Now()
	w := watch(t, edge.url("live/dead"))
	w.waitFrames(t, 1, 15*time.Second)
	t.Logf("first frame through the edge after %s with the first origin refusing connections", time.Since(start).Round(time.Millisecond))
	p := probeUntil(t, edge.url("live/dead"), hasAV)
	if codec, w, h, _ := p.stream("video"); codec != "h264" || w != 320 || h != 240 {
		t.Errorf("edge video = %s %dx%d", codec, w, h)
	}
}

func TestEdgePublishIsForwarded(t *testing.T) {
	origin := startServer(t, originConfig)
	edge1 := startServer(t, edgeConfig("", origin.addr))
	edge2 := startServer(t, edgeConfig("", origin.addr))
	publishFFmpeg(t, edge1.url("live/push"), "640x360", 60)
	for _, s := range []*server{origin, edge2, edge1} {
		p := probeUntil(t, s.url("live/push"), hasAV)
		if codec, w, h, _ := p.stream("video"); codec != "h264" || w != 640 || h != 360 {
			t.Errorf("%s: video %s %dx%d", s.addr, codec, w, h)
		}
	}
	if !origin.waitLog("connection from an edge", time.Second) {
		t.Error("origin did not see the edge's debug_upnode identity")
	}
}

func TestEdgePublishRefusalReachesClient(t *testing.T) {
	origin := startServer(t, originConfig)
	edge := startServer(t, edgeConfig("", origin.addr))
	publishFFmpeg(t, origin.url("live/taken"), "320x240", 60)
	probeUntil(t, origin.url("live/taken"), hasAV)
	c, err := bench.Dial(edge.url("live/taken"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Publish()
	var se *bench.StatusError
	if !errors.As(err, &se) || se.Code != "NetStream.Publish.BadName" {
		t.Fatalf("publish through the edge: %v, want the origin's NetStream.Publish.BadName", err)
	}
	expectServerClose(t, c, "the edge kept the refused publisher connected")
}

func TestEdgePublishFailsOverToNextOrigin(t *testing.T) {
	o1 := startServer(t, originConfig)
	o2 := startServer(t, originConfig)
	edge := startServer(t, edgeConfig("", o1.addr, o2.addr))
	pub := publishFFmpeg(t, edge.url("live/moving"), "320x240", 60)
	probeUntil(t, o1.url("live/moving"), hasAV)
	// A player waits on the second origin, where the stream is not yet.
	w := watch(t, o2.url("live/moving"))
	time.Sleep(time.Second)
	if w.frames() != 0 {
		t.Fatal("the stream reached the second origin before the first one died")
	}
	killed := time.Now()
	o1.kill()
	w.waitFrames(t, 50, 20*time.Second)
	t.Logf("stream continued on the second origin: first frame there %s after the kill", w.at0().Sub(killed).Round(time.Millisecond))
	if _, exited := pub.wait(0); exited {
		t.Fatalf("the publisher was disconnected: %s", lastLines(pub.out.String(), 5))
	}
	if !edge.waitLog("forwarding resumed on another origin", time.Second) {
		t.Error("no log line for the resumed forward")
	}
}

func (w *watcher) at0() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.at) == 0 {
		return time.Time{}
	}
	return w.at[0]
}

func TestEdgesWithHashAgreeOnOrigin(t *testing.T) {
	o1 := startServer(t, originConfig)
	o2 := startServer(t, originConfig)
	e1 := startServer(t, edgeConfig("      select: hash", o1.addr, o2.addr))
	e2 := startServer(t, edgeConfig("      select: hash", o2.addr, o1.addr))
	landed := func(stream string) *server {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, o := range []*server{o1, o2} {
				if countPublishes(o.log.String(), stream) > 0 {
					return o
				}
			}
		}
		return nil
	}
	used := map[*server]bool{}
	const streams = 8
	for i := range streams {
		stream := fmt.Sprintf("h%d", i)
		var first *server
		for _, e := range []*server{e1, e2} {
			c, err := bench.Dial(e.url("live/"+stream), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(); err != nil {
				t.Fatal(err)
			}
			c.Close()
			o := landed(stream)
			if o == nil {
				t.Fatalf("stream %s landed on no origin", stream)
			}
			if first == nil {
				first = o
			} else if o != first {
				t.Fatalf("stream %s: edges sent it to different origins", stream)
			}
			if countPublishes(o1.log.String(), stream)+countPublishes(o2.log.String(), stream) > 2 {
				t.Fatalf("stream %s published to both origins", stream)
			}
		}
		used[first] = true
	}
	t.Logf("%d streams used %d origins", streams, len(used))
}

func countPublishes(log, stream string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="publish start"`) && strings.HasSuffix(strings.TrimSpace(l), "stream="+stream) {
			n++
		}
	}
	return n
}

func TestMultiLayerEdgeAndVhostTransform(t *testing.T) {
	origin := startServer(t, `
listen: ["%ADDR%"]
log: {level: debug}
vhosts:
  live.example.com: {}
`)
	// The first-layer edge names the origin's vhost upstream; clients of
	// the edges know nothing of it.
	edge1 := startServer(t, edgeConfig("      vhost: live.example.com", origin.addr))
	edge2 := startServer(t, edgeConfig("", edge1.addr))
	publishFFmpeg(t, origin.url("live?vhost=live.example.com/deep"), "320x240", 60)
	p := probeUntil(t, edge2.url("live/deep"), hasAV)
	if codec, w, h, _ := p.stream("video"); codec != "h264" || w != 320 || h != 240 {
		t.Errorf("two edges down: video %s %dx%d", codec, w, h)
	}
	if !strings.Contains(origin.log.String(), "tc_url=rtmp://live.example.com:") {
		t.Error("origin did not see the transformed vhost in the tcUrl")
	}
	if !origin.waitLog("connection from an edge", time.Second) || !edge1.waitLog("connection from an edge", time.Second) {
		t.Error("debug_upnode identity not logged on the upper layers")
	}
}

func TestEdgeSilentOriginFailsOverAfterNoDataTimeout(t *testing.T) {
	o1 := startServer(t, originConfig)
	o2 := startServer(t, originConfig)
	edge := startServer(t, edgeConfig("", o1.addr, o2.addr)) // no_data_timeout: 2s
	publishTee(t, 60, o1.url("live/quiet"), o2.url("live/quiet"))
	probeUntil(t, o1.url("live/quiet"), hasAV)
	probeUntil(t, o2.url("live/quiet"), hasAV)
	ws := []*watcher{watch(t, edge.url("live/quiet")), watch(t, edge.url("live/quiet"))}
	for _, w := range ws {
		w.waitFrames(t, 25, 15*time.Second)
	}
	// Freeze the first origin: its socket stays open but nothing comes.
	stopped := time.Now()
	if err := o1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o1.cmd.Process.Signal(syscall.SIGCONT) }()
	targets := []int{ws[0].frames() + 50, ws[1].frames() + 50}
	for i, w := range ws {
		w.waitFrames(t, targets[i], 20*time.Second)
	}
	for i, w := range ws {
		gap, mono := w.maxGap(stopped.Add(-time.Second))
		t.Logf("player %d: longest gap %s with a silent origin (no_data_timeout 2s)", i, gap.Round(time.Millisecond))
		if !mono {
			t.Errorf("player %d: timestamps went back", i)
		}
		if gap > 6*time.Second {
			t.Errorf("player %d: gap %s", i, gap)
		}
	}
	if !edge.waitLog("no_data_timeout", time.Second) {
		t.Error("edge did not log the no-data failover")
	}
}

func TestEdgePlayersWaitWhileOriginRefuses(t *testing.T) {
	// The origin serves only a vhost the edge does not name: every upstream
	// connect is refused.
	origin := startServer(t, `
listen: ["%ADDR%"]
vhosts:
  other.example.com: {}
`)
	edge := startServer(t, edgeConfig("", origin.addr))
	c := playClient(t, edge.url("live/refused"), 10*time.Second)
	for {
		msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("player dropped while the origin refuses: %v", err)
		}
		if msg.TypeID == chunk.TypeCommandAMF0 && strings.Contains(string(msg.Payload), "NetConnection.Connect.Rejected") {
			break // the edge told the player why it waits
		}
	}
	// The edge keeps trying with backoff, and the player stays.
	if !edge.waitLog("every origin failed, retrying", 5*time.Second) {
		t.Fatal("edge did not retry")
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.ReadMessage(); err != nil && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("player disconnected: %v", err)
	}
}

// TestExampleConfigs runs the cluster of the README from the example files
// as they are (fixed ports 19350-19352, HTTP 18080-18082): publish to the origin, play from
// the edge, kill the first origin while the second has the stream too.
func TestExampleConfigs(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:19350", "127.0.0.1:19351", "127.0.0.1:19352", "127.0.0.1:18080", "127.0.0.1:18081", "127.0.0.1:18082"} {
		if l, err := net.Listen("tcp", addr); err != nil {
			t.Fatalf("the example configs need %s free: %v", addr, err)
		} else {
			l.Close()
		}
	}
	o1 := startServerFile(t, serverBin, "../conf/examples/origin.yaml", "127.0.0.1:19350")
	o2 := startServerFile(t, serverBin, "../conf/examples/origin-b.yaml", "127.0.0.1:19352")
	edge := startServerFile(t, serverBin, "../conf/examples/edge.yaml", "127.0.0.1:19351")
	publishTee(t, 60, o1.url("live/example"), o2.url("live/example"))
	p := probeUntil(t, edge.url("live/example"), hasAV)
	if codec, _, _, _ := p.stream("video"); codec != "h264" {
		t.Errorf("edge video %s", codec)
	}
	for _, flvURL := range []string{"http://127.0.0.1:18080/live/example.flv", "http://127.0.0.1:18082/live/example.flv", "http://127.0.0.1:18081/live/example.flv"} {
		if p := probeUntil(t, flvURL, hasAV); len(p.Streams) != 2 {
			t.Errorf("%s: %+v", flvURL, p.Streams)
		}
	}
	w := watch(t, edge.url("live/example"))
	w.waitFrames(t, 25, 15*time.Second)
	o1.kill()
	w.waitFrames(t, w.frames()+50, 20*time.Second)
}

func TestEdgePublishGivesUpAfterPublishTimeout(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	edge := startServer(t, edgeConfig("      publish_timeout: 1s\n      retry_max: 300ms", dead))
	c, err := bench.Dial(edge.url("live/nowhere"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	err = c.Publish()
	if statusCode(err) != "NetStream.Publish.Failed" {
		t.Fatalf("publish with no origin reachable: %v, want NetStream.Publish.Failed", err)
	}
	t.Logf("publisher told after %s", time.Since(start).Round(time.Millisecond))
	if !edge.waitLog("publish_timeout", time.Second) {
		t.Error("no log line naming publish_timeout")
	}
}
