package e2e

// Interop with nginx-rtmp (Debian's nginx + libnginx-mod-rtmp, installed by
// make test): nginx as an edge pulling from our origin, and nginx as the
// origin of our edge, both ways.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nginxRTMPModule is where libnginx-mod-rtmp puts the module.
const nginxRTMPModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// nginxBinary finds nginx: on PATH, or in /usr/sbin, which a non-root PATH
// often lacks. Missing nginx or module is a failure: make test installs them.
func nginxBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Fatalf("nginx is not installed (make test installs it): %v", err)
		}
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginxRTMPModule); err != nil {
		t.Fatalf("the nginx RTMP module is not installed (make test installs libnginx-mod-rtmp): %v", err)
	}
	return bin
}

// startNginx runs an nginx of its own (own config, prefix, pid and error log
// in a temporary directory; never the system's service) with one RTMP server
// on a free loopback port holding rtmpServerBlock, until the test ends.
// nginx runs in the foreground as a single process (daemon off, master
// process off), so the process started here is the one serving, and it is
// stopped by its PID. Its error log is dumped when the test fails.
func startNginx(t testing.TB, rtmpServerBlock string) (addr string) {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	errorLog := filepath.Join(dir, "error.log")
	conf := filepath.Join(dir, "nginx.conf")
	cfg := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
pid %s;
error_log %s info;

events {}

rtmp {
    server {
        listen %s;
        chunk_size 4096;
%s
    }
}
`, nginxRTMPModule, filepath.Join(dir, "nginx.pid"), errorLog, addr, rtmpServerBlock)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// Registered before startProcess so that it runs after nginx is stopped
	// (cleanups run last in, first out) and the log is complete.
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(errorLog)
			t.Logf("nginx %s error log:\n%s", addr, lastLines(string(b), 60))
		}
	})
	// -e: the error log before the config is read (the compiled-in
	// /var/log/nginx/error.log may not be writable).
	p := startProcess(t, bin, "-p", dir+"/", "-e", errorLog, "-c", conf)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(errorLog)
			t.Fatalf("nginx exited at start (%v): %s\n%s", p.err, p.out.String(), b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s in 10 s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// playStarts counts our server's "play start" lines for stream name.
func playStarts(s *server, name string) int {
	re := regexp.MustCompile(`msg="play start".* stream=` + regexp.QuoteMeta(name) + `( |$)`)
	n := 0
	for _, line := range strings.Split(s.log.String(), "\n") {
		if re.MatchString(line) {
			n++
		}
	}
	return n
}

// checkAV fails the test unless p has h264 video of w x h (any size when w
// is 0) and aac audio.
func checkAV(t *testing.T, what string, p probe, w, h int) {
	t.Helper()
	codec, gw, gh, _ := p.stream("video")
	if codec != "h264" || (w != 0 && (gw != w || gh != h)) {
		t.Errorf("%s: video = %s %dx%d, want h264 %dx%d", what, codec, gw, gh, w, h)
	}
	if codec, _, _, _ := p.stream("audio"); codec != "aac" {
		t.Errorf("%s: audio = %s, want aac", what, codec)
	}
}

// TestNginxEdgePullsFromOurOrigin: nginx-rtmp as an edge (pull) in front of
// our origin. Its players get the stream, and however many there are, our
// origin sees one player: nginx's relay.
func TestNginxEdgePullsFromOurOrigin(t *testing.T) {
	s := startServer(t, originConfig)
	ngx := startNginx(t, fmt.Sprintf(`
        application live {
            live on;
            pull rtmp://%s/live;
        }`, s.addr))
	publishFFmpeg(t, s.url("live/interop"), "640x360", 60)
	if !s.waitLog("stream=interop", 15*time.Second) {
		t.Fatal("the publisher never reached our origin")
	}
	if n := playStarts(s, "interop"); n != 0 {
		t.Fatalf("%d players on our origin before nginx plays", n)
	}
	nginxURL := "rtmp://" + ngx + "/live/interop"

	// A long-lived player on nginx keeps its pull up for the whole test.
	_, videoTS, keyframes := playRecording(t, nginxURL)
	deadline := time.Now().Add(15 * time.Second)
	for len(videoTS()) < 50 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	ts := videoTS()
	if len(ts) < 50 {
		t.Fatalf("a player of nginx got %d video messages in 15 s", len(ts))
	}
	if keyframes() == 0 {
		t.Error("a player of nginx got no keyframe")
	}
	for i := 1; i < len(ts); i++ {
		if int32(ts[i]-ts[i-1]) < 0 {
			t.Fatalf("video timestamps from nginx went back at %d: %d after %d", i, ts[i], ts[i-1])
		}
	}

	// More players of nginx at the same time: ffmpeg and ffprobe.
	player := startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-rw_timeout", "15000000", "-i", nginxURL, "-t", "20", "-c", "copy", "-f", "null", "-")
	p := probeUntil(t, nginxURL, hasAV)
	checkAV(t, "ffprobe from nginx", p, 640, 360)
	time.Sleep(time.Second)
	select {
	case <-player.done:
		t.Errorf("ffmpeg playing from nginx ended early: %v", player.err)
	default:
	}

	if n := playStarts(s, "interop"); n != 1 {
		t.Errorf("our origin saw %d players of live/interop, want exactly 1 (nginx's pull)", n)
	}
}

// TestOurEdgePullsFromNginxOrigin: our edge plays a stream published to an
// nginx-rtmp origin.
func TestOurEdgePullsFromNginxOrigin(t *testing.T) {
	ngx := startNginx(t, `
        application live {
            live on;
        }`)
	publishFFmpeg(t, "rtmp://"+ngx+"/live/pulled", "640x360", 60)
	probeUntil(t, "rtmp://"+ngx+"/live/pulled", hasAV) // the stream is up on nginx
	edge := startServer(t, edgeConfig("", ngx))
	p := probeUntil(t, edge.url("live/pulled"), hasAV)
	checkAV(t, "ffprobe from our edge", p, 640, 360)
}

// TestOurEdgePublishesToNginxOrigin: a stream published to our edge is
// forwarded to an nginx-rtmp origin, where players get it.
func TestOurEdgePublishesToNginxOrigin(t *testing.T) {
	ngx := startNginx(t, `
        application live {
            live on;
        }`)
	edge := startServer(t, edgeConfig("", ngx))
	publishFFmpeg(t, edge.url("live/pushed"), "640x360", 60)
	p := probeUntil(t, "rtmp://"+ngx+"/live/pushed", hasAV)
	checkAV(t, "ffprobe from nginx", p, 640, 360)
}
