package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// hookServer is an operator's HTTP hook server: it allows a request whose
// tcUrl or stream parameters carry token=good, and records what it saw.
type hookServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []map[string]any
}

func startHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		h.mu.Lock()
		h.seen = append(h.seen, req)
		h.mu.Unlock()
		tc, _ := req["tcUrl"].(string)
		param, _ := req["param"].(string)
		if strings.Contains(tc, "token=good") || strings.Contains(param, "token=good") {
			_, _ = w.Write([]byte(`{"code": 0}`))
			return
		}
		_, _ = w.Write([]byte(`{"code": 403}`))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) actions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.seen {
		a, _ := r["action"].(string)
		out = append(out, a)
	}
	return out
}

func statusCode(err error) string {
	var se *bench.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// hookedConfig is an origin whose default vhost calls h for each of the
// hooks named (at h's URL + "/" + the name without "on_").
func hookedConfig(h *hookServer, hooks ...string) string {
	cfg := "listen: [\"%ADDR%\"]\nvhosts:\n  __defaultVhost__:\n    hooks:\n"
	for _, name := range hooks {
		cfg += fmt.Sprintf("      %s: %q\n", name, h.URL+"/"+strings.TrimPrefix(name, "on_"))
	}
	return cfg
}

func TestHooksDecidePublishAndPlay(t *testing.T) {
	h := startHookServer(t)
	s := startServer(t, hookedConfig(h, "on_publish", "on_play"))
	pub, err := bench.Dial(s.url("live/hooked?token=bad"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(); statusCode(err) != "NetStream.Publish.Rejected" {
		t.Fatalf("publish with a bad token: %v", err)
	}
	publishFFmpeg(t, s.url("live/hooked?token=good"), "320x240", 60)
	probeUntil(t, s.url("live/hooked?token=good"), hasAV)
	player, err := bench.Dial(s.url("live/hooked?token=bad"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer player.Close()
	if err := player.Play(); statusCode(err) != "NetStream.Play.Failed" {
		t.Fatalf("play with a bad token: %v", err)
	}
	acts := strings.Join(h.actions(), ",")
	if !strings.Contains(acts, "on_publish") || !strings.Contains(acts, "on_play") {
		t.Fatalf("hook server saw %s", acts)
	}
}

func TestTokenTraverseLetsTheOriginDecide(t *testing.T) {
	h := startHookServer(t)
	origin := startServer(t, `
listen: ["%ADDR%"]
vhosts:
  __defaultVhost__:
    hooks:
      on_connect: "`+h.URL+`/connect"
`)
	edge := startServer(t, edgeConfig("      token_traverse: true", origin.addr))

	c, err := bench.Dial(edge.url("live?token=good/s"), 5*time.Second)
	if err != nil {
		t.Fatalf("connect with a good token through the edge: %v", err)
	}
	c.Close()
	if n := len(h.actions()); n != 1 {
		t.Fatalf("origin's hook was asked %d times, want once (by the edge's traverse)", n)
	}
	_, err = bench.Dial(edge.url("live?token=bad/s"), 5*time.Second)
	if statusCode(err) != "NetConnection.Connect.Rejected" {
		t.Fatalf("connect with a bad token through the edge: %v, want the origin's rejection", err)
	}
	h.mu.Lock()
	last := h.seen[len(h.seen)-1]
	h.mu.Unlock()
	if tc, _ := last["tcUrl"].(string); !strings.Contains(tc, "token=bad") {
		t.Errorf("origin's hook saw tcUrl %q, want the client's token", tc)
	}
}

// Notification hooks report the end of publishes, plays and connections,
// with SRS's bodies plus bytes and duration, after the fact; a hook server
// that is down delays nothing.
func TestNotificationHooks(t *testing.T) {
	h := startHookServer(t)
	s := startServer(t, hookedConfig(h, "on_unpublish", "on_stop", "on_close"))
	pub := publishFFmpeg(t, s.url("live/note"), "320x240", 4)
	probeUntil(t, s.url("live/note"), hasAV)
	w := watch(t, s.url("live/note"))
	w.waitFrames(t, 10, 10*time.Second)
	w.c.Close()
	if err, ok := pub.wait(20 * time.Second); !ok || err != nil {
		t.Fatalf("ffmpeg publisher: %v (exited %v)", err, ok)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		acts := strings.Join(h.actions(), ",")
		if strings.Contains(acts, "on_unpublish") && strings.Count(acts, "on_stop") >= 2 && strings.Count(acts, "on_close") >= 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var unpublish map[string]any
	stops, closes := 0, 0
	for _, r := range h.seen {
		switch r["action"] {
		case "on_unpublish":
			unpublish = r
		case "on_stop":
			stops++
		case "on_close":
			closes++
			if _, ok := r["duration"].(float64); !ok {
				t.Errorf("on_close without a duration: %v", r)
			}
		}
	}
	// ffprobe and the watcher played; ffmpeg published; all three closed.
	if unpublish == nil || stops < 2 || closes < 3 {
		t.Fatalf("hook server saw %v", h.actions())
	}
	if unpublish["stream"] != "note" || unpublish["app"] != "live" || unpublish["recv_bytes"].(float64) < 10000 || unpublish["client_id"] == "" {
		t.Fatalf("on_unpublish body: %v", unpublish)
	}
}
