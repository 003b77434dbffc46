package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/chunk"
)

// makeFLV encodes an H.264 + AAC FLV of seconds for publishers that read a
// file.
func makeFLV(t *testing.T, seconds int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.flv")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", fmt.Sprint(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", path).CombinedOutput()
	if err != nil {
		t.Fatalf("encoding %s: %v: %s", path, err, out)
	}
	return path
}

// publishGst publishes an FLV file in real time with GStreamer: flvdemux,
// parsers, flvmux and sink (a gst-launch element description, e.g.
// "rtmp2sink location=URL").
func publishGst(t *testing.T, file, sink string) *process {
	t.Helper()
	pipeline := "filesrc location=" + file + " ! flvdemux name=d d.video ! queue ! h264parse ! " +
		"flvmux name=m streamable=true ! " + sink + " d.audio ! queue ! aacparse ! m."
	return startProcess(t, "gst-launch-1.0", append([]string{"-q"}, strings.Fields(pipeline)...)...)
}

// checkOnlyAV fails unless ffprobe of url lists exactly one h264 video and
// one aac audio stream (no data or subtitle stream made of metadata).
func checkOnlyAV(t *testing.T, url string) {
	t.Helper()
	p := probeUntil(t, url, hasAV)
	var got []string
	for _, s := range p.Streams {
		got = append(got, s.CodecType+"/"+s.CodecName)
	}
	if len(p.Streams) != 2 {
		t.Errorf("ffprobe %s: streams %v, want exactly video/h264 and audio/aac", url, got)
	}
	checkAV(t, url, p, 320, 240)
}

// checkFirstMessages plays url with the Go client and checks what a new
// player gets first: onMetaData with timestamp 0, the AVC and AAC sequence
// headers, then video starting at a keyframe.
func checkFirstMessages(t *testing.T, url string) {
	t.Helper()
	c := playClient(t, url, 10*time.Second)
	var (
		meta, videoSeq, audioSeq bool
		seen                     []string
	)
	for len(seen) < 200 {
		msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%s: reading after %v: %v", url, seen, err)
		}
		switch msg.TypeID {
		case chunk.TypeDataAMF0, chunk.TypeDataAMF3:
			seen = append(seen, fmt.Sprintf("data@%d", msg.Timestamp))
			if bytes.Contains(msg.Payload, []byte("onMetaData")) {
				if msg.Timestamp != 0 {
					t.Errorf("%s: onMetaData with timestamp %d, want 0", url, msg.Timestamp)
				}
				meta = true
			}
		case chunk.TypeAudio:
			if len(msg.Payload) > 1 && msg.Payload[0]>>4 == 10 && msg.Payload[1] == 0 {
				seen = append(seen, "aac-seq")
				audioSeq = true
			}
		case chunk.TypeVideo:
			if len(msg.Payload) < 2 {
				continue
			}
			if msg.Payload[1] == 0 {
				seen = append(seen, "avc-seq")
				videoSeq = true
				continue
			}
			key := msg.Payload[0]>>4 == 1
			seen = append(seen, fmt.Sprintf("video(key=%v)", key))
			if !meta || !videoSeq || !audioSeq {
				t.Errorf("%s: first video frame before metadata and sequence headers: %v", url, seen)
			}
			if !key {
				t.Errorf("%s: first video frame is not a keyframe: %v", url, seen)
			}
			t.Logf("%s: first messages %v", url, seen)
			return
		}
	}
	t.Errorf("%s: no video frame in the first messages: %v", url, seen)
}

// TestEveryPublisherGivesPlayersOnlyItsStreams publishes with ffmpeg,
// GStreamer's rtmp2sink and GStreamer's librtmp-based rtmpsink (the
// library rtmpdump and OBS's old output use) to an origin, and checks
// through the origin and an edge that ffprobe lists exactly the
// publisher's audio and video, and that a new player starts with
// metadata at timestamp 0, sequence headers and a keyframe. GStreamer's
// flvmux stamps onMetaData with the first buffer's time; players used to get
// it as a phantom text stream.
func TestEveryPublisherGivesPlayersOnlyItsStreams(t *testing.T) {
	requireTool(t, "gst-launch-1.0")
	flv := makeFLV(t, 60)
	origin := startServer(t, originConfig)
	edge := startServer(t, edgeConfig("", origin.addr))
	publishers := []struct {
		name  string
		start func(url string)
	}{
		{"ffmpeg", func(url string) { publishFFmpeg(t, url, "320x240", 60) }},
		{"gst-rtmp2sink", func(url string) { publishGst(t, flv, "rtmp2sink location="+url) }},
		{"gst-rtmpsink-librtmp", func(url string) { publishGst(t, flv, "rtmpsink location="+url+"?live=1") }},
	}
	for _, p := range publishers {
		p.start(origin.url("live/" + p.name))
	}
	for _, p := range publishers {
		t.Run(p.name, func(t *testing.T) {
			for _, s := range []*server{origin, edge} {
				checkOnlyAV(t, s.url("live/"+p.name))
				checkFirstMessages(t, s.url("live/"+p.name))
			}
		})
	}
}

// TestEdgeAfterFailoverGivesPlayersOnlyTheStreams: after the edge's
// upstream moved to the second origin, a new player of the edge still gets
// exactly audio and video, metadata at timestamp 0 and a clean start.
func TestEdgeAfterFailoverGivesPlayersOnlyTheStreams(t *testing.T) {
	o1, o2, edge := failoverCluster(t, "fm")
	w := watch(t, edge.url("live/fm"))
	w.waitFrames(t, 25, 15*time.Second)
	o1.kill()
	w.waitFrames(t, w.frames()+50, 20*time.Second)
	if n := countPlays(o2.log.String(), "fm"); n < 2 {
		t.Fatalf("second origin saw %d plays, want the edge's upstream besides the probe", n)
	}
	checkOnlyAV(t, edge.url("live/fm"))
	checkFirstMessages(t, edge.url("live/fm"))
}
