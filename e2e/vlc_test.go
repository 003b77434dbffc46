package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vlcSeconds is how long each VLC run plays.
const vlcSeconds = 5

// vlcUser returns the credential VLC runs with: VLC refuses to run as
// root, so as root the test runs it as nobody (nil otherwise: as the
// test's own user).
func vlcUser(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		unavailable(t, "VLC refuses to run as root and there is no user nobody to run it as: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// vlcPlay plays src with cvlc for vlcSeconds, headless: it decodes to the
// dummy video and audio outputs and also writes what it demuxed to an
// MPEG-TS file, which it returns with VLC's verbose log.
func vlcPlay(t *testing.T, cvlc, src string) (string, string) {
	t.Helper()
	// A directory the unprivileged user can write: its HOME (VLC's config
	// and cache) and the recording. t.TempDir's parent is private to root.
	dir, err := os.MkdirTemp("", "rtmpedge-vlc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "rec.ts")
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(vlcSeconds+25)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cvlc, "-I", "dummy", "--vout=dummy", "--aout=dummy", "-vv",
		"--no-one-instance", "--run-time="+strconv.Itoa(vlcSeconds), "--play-and-exit",
		"--sout", "#duplicate{dst=display,dst=std{access=file,mux=ts,dst="+rec+"}}",
		src)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_RUNTIME_DIR="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: vlcUser(t)}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cvlc %s did not exit within %v:\n%s", src, time.Since(start).Round(time.Second), lastLines(out.String(), 40))
	}
	if err != nil {
		t.Fatalf("cvlc %s: %v:\n%s", src, err, lastLines(out.String(), 40))
	}
	return rec, out.String()
}

// countFrames decodes a file with ffprobe and returns its streams' codecs
// and frame counts.
func countFrames(t testing.TB, file string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, requireTool(t, "ffprobe"), "-hide_banner", "-v", "error", "-count_frames",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %v", file, err)
	}
	var p struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Frames    string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, s := range p.Streams {
		m[s.CodecName], _ = strconv.Atoi(s.Frames)
	}
	return m
}

// VLC plays a stream from an edge over HTTP-FLV and over RTMP, as an
// unprivileged user: its log shows the FLV demuxed and H.264 decoded, and
// its recording of the play holds vlcSeconds of video and audio.
func TestVLC(t *testing.T) {
	cvlc := needTool(t, "cvlc")
	if m, _ := filepath.Glob("/usr/lib*/*vlc/plugins/demux/libavformat_plugin.so"); len(m) == 0 {
		if m, _ = filepath.Glob("/usr/lib/*/vlc/plugins/demux/libavformat_plugin.so"); len(m) == 0 {
			unavailable(t, "VLC's plugins (Debian's vlc-plugin-base: libavformat demux, avio access) are not installed")
		}
	}
	vlcUser(t)
	origin := startServer(t, originConfig)
	edge := startServer(t, httpEdgeConfig(origin.addr))
	publishFFmpeg(t, origin.url("live/v"), "320x240", 120)
	probeUntil(t, origin.url("live/v"), hasAV)

	// The two players play at once; the group waits for both.
	t.Run("players", func(t *testing.T) {
		for _, c := range []struct{ name, src, access string }{
			// VLC reads HTTP with its own access module (named "access") and
			// demuxes FLV with its libavformat module; Debian's VLC plays RTMP
			// with libavformat's RTMP client (its avio access module).
			{"HTTP-FLV", "http://" + edge.httpAddr + "/live/v.flv", `using access module "access"`},
			{"RTMP", edge.url("live/v"), `using access module "avio"`},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				rec, log := vlcPlay(t, cvlc, c.src)
				for _, want := range []string{c.access, `using demux module "avformat"`, `using video decoder module "avcodec"`, "codec (h264) started"} {
					if !strings.Contains(log, want) {
						t.Errorf("VLC's log has no %q", want)
					}
				}
				frames := countFrames(t, rec)
				t.Logf("VLC played %s for %d s: recorded %v frames", c.src, vlcSeconds, frames)
				// 25 frames/s of video and about 43/s of AAC, for vlcSeconds
				// (more with the GOP cache); half of it is plenty to show play.
				if frames["h264"] < 25*vlcSeconds/2 || frames["aac"] < 43*vlcSeconds/2 {
					t.Errorf("VLC's recording has %v frames, want at least %d of h264 and %d of aac", frames, 25*vlcSeconds/2, 43*vlcSeconds/2)
				}
				if t.Failed() {
					t.Logf("VLC log:\n%s", lastLines(log, 60))
				}
			})
		}
	})
	for _, p := range []string{"http-flv", "rtmp"} {
		if !edge.waitLog("role=player protocol="+p, 10*time.Second) {
			t.Errorf("the edge logged no %s player", p)
		}
	}
	if strings.Contains(edge.log.String(), "level=ERROR") || strings.Contains(edge.log.String(), "panic") {
		t.Fatalf("the edge logged an error:\n%s", edge.log.String())
	}
}
