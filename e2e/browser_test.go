package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file and vlc_test.go play streams with real players:
// headless Chromium running mpegts.js, and VLC. scripts/deps.sh --test
// (make test) installs them; without them a test skips, except under
// CI=true, where a missing tool is a failure.

// mpegtsVersion is the mpegts.js release the browser test plays with. The
// test fetches it with npm into a git-ignored cache (.cache/e2e at the
// repository's root, or $RTMPEDGE_E2E_CACHE) once and reuses it.
const mpegtsVersion = "1.8.2"

// unavailable skips the test because a tool or download it needs is
// missing, or fails it under CI=true, where scripts/deps.sh should have
// installed it.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a failure, not a skip)", msg)
	}
	t.Skip(msg)
}

// needTool returns the path of the first of names on PATH, or skips (fails
// in CI) if there is none.
func needTool(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	unavailable(t, "%s is not installed (scripts/deps.sh --test installs it)", strings.Join(names, " or "))
	return ""
}

// mpegtsLibrary returns the path of mpegts.js's dist/mpegts.js, installing
// the pinned version with npm into the cache first if it is not there.
// Concurrent test processes each install into their own temporary
// directory and rename it into place; the loser of the race uses the
// winner's.
func mpegtsLibrary(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("RTMPEDGE_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join("..", ".cache", "e2e") // go test runs in e2e/
	}
	dir := filepath.Join(cache, "mpegts.js@"+mpegtsVersion)
	lib := filepath.Join(dir, "node_modules", "mpegts.js", "dist", "mpegts.js")
	if _, err := os.Stat(lib); err == nil {
		return lib
	}
	npm := needTool(t, "npm")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(cache, ".npm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", tmp, "--no-audit", "--no-fund",
		"--loglevel=error", "mpegts.js@"+mpegtsVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable(t, "fetching the player library: npm install mpegts.js@%s: %v: %s", mpegtsVersion, err, lastLines(string(out), 10))
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(tmp, "node_modules", "mpegts.js", "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil || pkg.Version != mpegtsVersion {
		t.Fatalf("npm installed mpegts.js %q, want %s (%v)", pkg.Version, mpegtsVersion, err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatal(err)
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("mpegts.js not in the cache after npm install: %v", err)
	}
	return lib
}

// pageReport is what the test page POSTs every 500 ms.
type pageReport struct {
	Seq           int             `json:"seq"`
	Src           string          `json:"src"`
	UserAgent     string          `json:"userAgent"`
	MediaSource   bool            `json:"mediaSource"`
	AVCSupported  bool            `json:"avcSupported"`
	AACSupported  bool            `json:"aacSupported"`
	Mpegts        string          `json:"mpegts"`
	Features      json.RawMessage `json:"features"`
	CurrentTime   float64         `json:"currentTime"`
	Frames        int             `json:"frames"`
	DroppedFrames int             `json:"droppedFrames"`
	ReadyState    int             `json:"readyState"`
	Paused        bool            `json:"paused"`
	Width         int             `json:"width"`
	Height        int             `json:"height"`
	Errors        []string        `json:"errors"`
	Events        []string        `json:"events"`
}

func (r pageReport) String() string {
	return fmt.Sprintf("#%d currentTime=%.2fs frames=%d dropped=%d readyState=%d paused=%v %dx%d MSE=%v avc1.42E01E=%v mp4a.40.2=%v mpegts.js=%s events=%v errors=%v",
		r.Seq, r.CurrentTime, r.Frames, r.DroppedFrames, r.ReadyState, r.Paused, r.Width, r.Height,
		r.MediaSource, r.AVCSupported, r.AACSupported, r.Mpegts, r.Events, r.Errors)
}

// pageServer serves the test page and mpegts.js, and collects the page's
// reports.
type pageServer struct {
	url     string
	reports chan pageReport
}

func startPageServer(t testing.TB, lib string) *pageServer {
	t.Helper()
	ps := &pageServer{reports: make(chan pageReport, 1024)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /player.html", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("testdata", "browser", "player.html"))
	})
	mux.HandleFunc("GET /mpegts.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, lib)
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var rep pageReport
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case ps.reports <- rep:
		default: // the test stopped reading
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(s.Close)
	ps.url = s.URL
	return ps
}

// startChromium opens pageURL in headless Chromium, in its own process
// group, which the test's cleanup ends by its id (the browser, its
// renderer, GPU and utility processes).
func startChromium(t testing.TB, pageURL string) *syncBuffer {
	t.Helper()
	bin := needTool(t, "chromium", "chromium-browser")
	out := &syncBuffer{}
	cmd := exec.Command(bin,
		"--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
		"--autoplay-policy=no-user-gesture-required",
		"--user-data-dir="+t.TempDir(),
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-features=Translate,MediaRouter,OptimizationHints",
		"--enable-logging=stderr", "--v=0",
		pageURL)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		// Children that outlived the browser process are still in its group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("chromium output:\n%s", lastLines(out.String(), 40))
		}
	})
	return out
}

// browserPlay plays src in a new Chromium on a new page, and asserts that
// the video's currentTime advances by more than 2 s while the decoded frame
// count grows.
func browserPlay(t *testing.T, src string) {
	lib := mpegtsLibrary(t)
	ps := startPageServer(t, lib)
	page := ps.url + "/player.html?" + url.Values{"src": {src}, "report": {"/report"}}.Encode()
	start := time.Now()
	startChromium(t, page)

	var first, last *pageReport
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-ps.reports:
			if last == nil {
				t.Logf("browser: %s", r.UserAgent)
				t.Logf("browser: MediaSource %v, isTypeSupported avc1.42E01E %v, mp4a.40.2 %v, mpegts.js %s features %s",
					r.MediaSource, r.AVCSupported, r.AACSupported, r.Mpegts, r.Features)
			}
			last = &r
			if !r.MediaSource || !r.AVCSupported {
				t.Fatalf("this Chromium cannot play H.264 through Media Source Extensions: %s", r)
			}
			if len(r.Errors) > 0 {
				t.Fatalf("the page reported errors: %s", r)
			}
			if first == nil && r.Frames > 0 {
				first = &r
				t.Logf("first decoded frames after %v: %s", time.Since(start).Round(time.Millisecond), r)
			}
			if first != nil && r.CurrentTime-first.CurrentTime > 2 && r.Frames > first.Frames+25 {
				t.Logf("playing after %v: %s", time.Since(start).Round(time.Millisecond), r)
				if r.Width != 320 || r.Height != 240 {
					t.Fatalf("video is %dx%d, want 320x240", r.Width, r.Height)
				}
				return
			}
		case <-deadline:
			if last == nil {
				t.Fatal("the page sent no report within 30 s")
			}
			if first == nil {
				t.Fatalf("no frame decoded within 30 s: %s", last)
			}
			t.Fatalf("currentTime did not advance 2 s with frames decoded within 30 s: first %s, last %s", first, last)
		}
	}
}

// httpEdgeConfig is an edge of origin that also serves HTTP-FLV.
func httpEdgeConfig(origin string) string {
	return strings.Replace(edgeConfig("", origin), "log: {level: info}", "log: {level: info}\nhttp: {listen: [\"%HTTP%\"]}", 1)
}

// Headless Chromium plays a stream with mpegts.js through an edge, over
// HTTP-FLV and over WebSocket-FLV.
func TestBrowser(t *testing.T) {
	needTool(t, "chromium", "chromium-browser")
	mpegtsLibrary(t) // fetched before the servers start, so its time is not the stream's
	origin := startServer(t, originConfig)
	edge := startServer(t, httpEdgeConfig(origin.addr))
	publishFFmpeg(t, origin.url("live/x"), "320x240", 120)
	probeUntil(t, origin.url("live/x"), hasAV)

	for _, c := range []struct{ name, src, protocol string }{
		{"HTTP-FLV", "http://" + edge.httpAddr + "/live/x.flv", "http-flv"},
		{"WebSocket-FLV", "ws://" + edge.httpAddr + "/live/x.flv", "ws-flv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			browserPlay(t, c.src)
		})
		// The edge logs the player's protocol when the browser is gone.
		if !edge.waitLog("role=player protocol="+c.protocol, 10*time.Second) {
			t.Errorf("%s: the edge logged no %s player", c.name, c.protocol)
		}
	}
	if strings.Contains(edge.log.String(), "level=ERROR") || strings.Contains(edge.log.String(), "panic") {
		t.Fatalf("the edge logged an error:\n%s", edge.log.String())
	}
}
