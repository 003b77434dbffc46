package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// Capacity limits (capacity.max_players, capacity.max_egress and
// capacity.redirect) with real clients: the players already served keep
// their stream, the ones over the limit are answered at once.

const capacityConfig = `
listen: ["%ADDR%"]
http: {listen: ["%HTTP%"]}
api: {listen: "%API%"}
log: {level: info}
capacity: {max_players: 2}
vhosts:
  __defaultVhost__: {}
`

func TestCapacityRefusesPlaysOverMaxPlayers(t *testing.T) {
	s := startServer(t, capacityConfig)
	url := s.url("live/cap")
	// Two players take the two places, waiting for the publisher.
	w1, w2 := watch(t, url), watch(t, url)
	publishFFmpeg(t, url, "320x240", 60)
	w1.waitFrames(t, 5, 15*time.Second)
	w2.waitFrames(t, 5, 15*time.Second)

	// A third is refused with the limit named, and the connection closed.
	c, err := bench.Dial(url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Play()
	if statusCode(err) != "NetStream.Play.Failed" || !strings.Contains(err.Error(), "Server at capacity: max_players 2 reached") {
		t.Fatalf("a third player: %v, want NetStream.Play.Failed naming max_players 2", err)
	}
	expectServerClose(t, c, "the server kept a refused player connected")

	// Real clients are told so and give up.
	dump := startProcess(t, "rtmpdump", "-r", url, "-o", "/dev/null", "-m", "10")
	if err, ok := dump.wait(15 * time.Second); !ok || err == nil || !strings.Contains(dump.out.String(), "NetStream.Play.Failed") {
		t.Fatalf("rtmpdump over the limit: exit %v (done %v), want a failure naming NetStream.Play.Failed:\n%s", err, ok, lastLines(dump.out.String(), 10))
	}
	ff := startProcess(t, "ffmpeg", "-hide_banner", "-nostdin", "-rw_timeout", "10000000", "-i", url, "-t", "5", "-f", "null", "-")
	if err, ok := ff.wait(15 * time.Second); !ok || err == nil || !strings.Contains(ff.out.String(), "Server at capacity: max_players 2 reached") {
		t.Fatalf("ffmpeg over the limit: exit %v (done %v), want the server's description:\n%s", err, ok, lastLines(ff.out.String(), 10))
	}
	// HTTP-FLV players count too: 503 at once.
	if code := curlStatus(t, "http://"+s.httpAddr+"/live/cap.flv"); code != http.StatusServiceUnavailable {
		t.Fatalf("an HTTP-FLV player over the limit: HTTP %d, want 503", code)
	}
	if got := len(waitLines(s, "play refused: server at capacity", "stream=cap", `limit="max_players`)); got != 4 {
		t.Errorf("%d refusals logged, want 4", got)
	}
	if got := metricLine(t, s.apiAddr, "rtmpedge_plays_refused_total"); got != "rtmpedge_plays_refused_total 4" {
		t.Errorf("metrics: %q, want rtmpedge_plays_refused_total 4", got)
	}

	// The admitted players did not notice; once one leaves, its place is
	// free for the next.
	before := w2.frames()
	w2.waitFrames(t, before+10, 10*time.Second)
	w1.c.Close()
	var c3 *bench.Client
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c3, err = bench.Dial(url, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err = c3.Play(); err == nil {
			break
		}
		c3.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a player 5 s after one of two left: %v", err)
		}
	}
	defer c3.Close()
	_ = c3.SetDeadline(time.Now().Add(10 * time.Second))
	for video := 0; video < 5; {
		msg, err := c3.ReadMessage()
		if err != nil {
			t.Fatalf("the player admitted in the freed place, after %d video frames: %v", video, err)
		}
		if msg.TypeID == chunk.TypeVideo {
			video++
		}
	}
}

// metricLine returns the sample line of an unlabelled metric from the
// server's /metrics ("" when absent).
func metricLine(t *testing.T, apiAddr, name string) string {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// A full edge redirects to its sibling (capacity.redirect), and an edge
// downstream of it follows the redirect with its upstream connection: the
// multi-layer case SRS's ex.redirect serves.
func TestCapacityRedirectsToASiblingEdge(t *testing.T) {
	origin := startServer(t, originConfig)
	sibling := startServer(t, edgeConfig("", origin.addr))
	full := startServer(t, edgeConfig("capacity: {max_players: 1, redirect: [\""+sibling.addr+"\"]}", origin.addr))
	lower := startServer(t, edgeConfig("", full.addr))
	publishFFmpeg(t, origin.url("live/sib"), "320x240", 60)
	first := watch(t, full.url("live/sib"))
	first.waitFrames(t, 5, 15*time.Second)

	// The lower edge's upstream play is the full edge's second player.
	w := watch(t, lower.url("live/sib"))
	w.waitFrames(t, 5, 15*time.Second)
	if len(waitLines(full, "play redirected: server at capacity", "stream=sib", "to="+sibling.addr)) == 0 {
		t.Error("the full edge logged no redirect to its sibling")
	}
	if len(waitLines(lower, "origin redirects", "origin="+full.addr, "to="+sibling.addr)) == 0 {
		t.Error("the lower edge did not follow the redirect")
	}
	if got := upstreams(lower, "sib"); len(got) == 0 || got[len(got)-1] != sibling.addr {
		t.Errorf("the lower edge plays from %v, want %s last", got, sibling.addr)
	}
	// The full edge's own player kept its stream.
	before := first.frames()
	first.waitFrames(t, before+10, 10*time.Second)
	if err := first.failed(); err != nil {
		t.Errorf("the full edge's player: %v", err)
	}
}
