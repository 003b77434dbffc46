package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// srsPath is SRS 7 (../shared/peers/srs from the repository, or
// RTMPEDGE_SRS); tests that need it skip without it (CI has none).
func srsPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("RTMPEDGE_SRS")
	if p == "" {
		p = "../../shared/peers/srs"
	}
	p, err := filepath.Abs(p)
	if err == nil {
		_, err = os.Stat(p)
	}
	if err != nil {
		t.Skipf("SRS not found (%v): set RTMPEDGE_SRS to run the SRS interop tests", err)
	}
	return p
}

// startSRS runs SRS on a free loopback port with vhost (directives of the
// default vhost) until the test ends, stopped by its PID; it returns the
// address.
func startSRS(t *testing.T, bin, vhost string) string {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`listen %s;
daemon off;
pid %s/srs.pid;
srs_log_tank file;
srs_log_file %s/srs.log;
query_latest_version off;
vhost __defaultVhost__ { %s }
`, addr, dir, dir, vhost)
	path := filepath.Join(dir, "srs.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "srs.log"))
			t.Logf("SRS log:\n%s", lastLines(string(b), 30))
		}
	})
	if err := bench.WaitPort(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Our edge, with a registry, in front of an SRS origin (which claims
// nothing): the registry has nothing, the configured order serves.
func TestClusterEdgeBeforeSRSOrigin(t *testing.T) {
	srs := srsPath(t)
	reg := startRegistry(t)
	origin := startSRS(t, srs, "")
	edge := startServer(t, fmt.Sprintf("cluster: {registry: %q}\n", reg.URL())+edgeConfig("", origin))
	publishFFmpeg(t, "rtmp://"+origin+"/live/srs", "320x240", 60)
	p := probeUntil(t, edge.url("live/srs"), hasAV)
	if codec, w, h, _ := p.stream("video"); codec != "h264" || w != 320 || h != 240 {
		t.Errorf("video through our edge from SRS: %s %dx%d", codec, w, h)
	}
	if up := upstreams(edge, "srs"); len(up) == 0 || up[0] != origin {
		t.Errorf("upstreams %v, want SRS at %s", up, origin)
	}
}

// An SRS edge in front of our origins, pointed at an origin that does not
// have the stream: our origin redirects it (RTMP 302) to the origin the
// registry names, and SRS follows.
func TestClusterSRSEdgeFollowsOriginRedirect(t *testing.T) {
	srs := srsPath(t)
	reg := startRegistry(t)
	o1 := startServer(t, clusterOriginConfig(reg))
	o2 := startServer(t, clusterOriginConfig(reg))
	edge := startSRS(t, srs, "cluster { mode remote; origin "+o1.addr+"; }")
	publishFFmpeg(t, o2.url("live/srsedge"), "320x240", 60)
	reg.waitHolder(t, "srsedge", o2.addr, 10*time.Second)
	p := probeUntil(t, "rtmp://"+edge+"/live/srsedge", hasAV)
	if codec, _, _, _ := p.stream("video"); codec != "h264" {
		t.Errorf("video through the SRS edge: %s", codec)
	}
	if len(waitLines(o1, "play redirected: the stream is published on another origin", "to="+o2.addr)) == 0 {
		t.Error("origin 1 did not redirect the SRS edge")
	}
	if n := countPlays(o2.log.String(), "srsedge"); n < 1 {
		t.Error("the SRS edge never played from origin 2")
	}
}
