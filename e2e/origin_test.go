package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/chunk"
)

const originConfig = `
listen: ["%ADDR%"]
log: {level: info}
vhosts:
  __defaultVhost__: {}
`

// probeUntil retries ffprobe until the stream is there (the publisher may
// still be connecting).
func probeUntil(t *testing.T, url string, want func(probe) bool) probe {
	t.Helper()
	var last error
	for range 10 {
		p, err := ffprobe(t, url)
		if err == nil && want(p) {
			return p
		}
		last = err
		if err == nil {
			last = fmt.Errorf("streams: %+v", p.Streams)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("ffprobe never saw the stream: %v", last)
	return probe{}
}

func hasAV(p probe) bool {
	_, _, _, v := p.stream("video")
	_, _, _, a := p.stream("audio")
	return v && a
}

func TestFFmpegPublishFFprobePlays(t *testing.T) {
	s := startServer(t, originConfig)
	publishFFmpeg(t, s.url("live/probe"), "640x360", 30)
	p := probeUntil(t, s.url("live/probe"), hasAV)
	codec, w, h, _ := p.stream("video")
	if codec != "h264" || w != 640 || h != 360 {
		t.Errorf("video = %s %dx%d, want h264 640x360", codec, w, h)
	}
	if codec, _, _, _ := p.stream("audio"); codec != "aac" {
		t.Errorf("audio = %s, want aac", codec)
	}
}

func TestRtmpdumpWritesValidFLV(t *testing.T) {
	s := startServer(t, originConfig)
	publishFFmpeg(t, s.url("live/dump"), "320x240", 30)
	probeUntil(t, s.url("live/dump"), hasAV) // the stream is up
	out := filepath.Join(t.TempDir(), "dump.flv")
	dump := startProcess(t, "rtmpdump", "-q", "-v", "-r", s.url("live/dump"), "-o", out, "-B", "100", "--stop", "3")
	err, exited := dump.wait(30 * time.Second)
	if !exited {
		t.Fatal("rtmpdump did not finish")
	}
	// rtmpdump exits 2 ("incomplete") for a live stream it stopped itself.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
		t.Fatalf("rtmpdump: %v", err)
	}
	p, err := ffprobe(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if codec, w, h, _ := p.stream("video"); codec != "h264" || w != 320 || h != 240 {
		t.Errorf("flv video = %s %dx%d", codec, w, h)
	}
	if codec, _, _, _ := p.stream("audio"); codec != "aac" {
		t.Errorf("flv audio = %s", codec)
	}
}

func TestTwoStreamsStaySeparate(t *testing.T) {
	s := startServer(t, originConfig)
	publishFFmpeg(t, s.url("live/a"), "320x240", 30)
	publishFFmpeg(t, s.url("live/b"), "640x480", 30)
	for name, want := range map[string][2]int{"live/a": {320, 240}, "live/b": {640, 480}} {
		p := probeUntil(t, s.url(name), hasAV)
		if _, w, h, _ := p.stream("video"); w != want[0] || h != want[1] {
			t.Errorf("%s: %dx%d, want %dx%d", name, w, h, want[0], want[1])
		}
	}
}

func TestAudioOnlyAndVideoOnly(t *testing.T) {
	s := startServer(t, originConfig)
	publishFFmpeg(t, s.url("live/audio"), "320x240", 30, "-vn")
	publishFFmpeg(t, s.url("live/video"), "320x240", 30, "-an")
	pa := probeUntil(t, s.url("live/audio"), func(p probe) bool { _, _, _, ok := p.stream("audio"); return ok })
	if _, _, _, v := pa.stream("video"); v {
		t.Error("audio-only stream has video")
	}
	pv := probeUntil(t, s.url("live/video"), func(p probe) bool { _, _, _, ok := p.stream("video"); return ok })
	if _, _, _, a := pv.stream("audio"); a {
		t.Error("video-only stream has audio")
	}
}

func TestSecondPublisherRefused(t *testing.T) {
	s := startServer(t, originConfig)
	publishFFmpeg(t, s.url("live/busy"), "320x240", 30)
	probeUntil(t, s.url("live/busy"), hasAV)

	c, err := bench.Dial(s.url("live/busy"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Publish()
	var se *bench.StatusError
	if !errors.As(err, &se) || se.Code != "NetStream.Publish.BadName" {
		t.Fatalf("second publish: %v, want NetStream.Publish.BadName", err)
	}
	// And the server closes that connection.
	expectServerClose(t, c, "connection of the refused publisher stayed open")
	// A second ffmpeg publisher fails too, and the first one is unharmed.
	second := publishFFmpeg(t, s.url("live/busy"), "320x240", 30)
	if err, exited := second.wait(20 * time.Second); !exited || err == nil {
		t.Fatalf("second ffmpeg publisher: exited=%v err=%v, want a failure", exited, err)
	}
	probeUntil(t, s.url("live/busy"), hasAV)
}

// videoTimestamps plays url with the Go client and records the timestamp of
// every video message until stop is closed.
func playRecording(t *testing.T, url string) (*bench.Client, func() []uint32, func() int) {
	t.Helper()
	c, err := bench.Dial(url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ts []uint32
	var keyframes atomic.Int32
	go func() {
		for {
			msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if msg.TypeID == chunk.TypeVideo && len(msg.Payload) > 1 {
				mu.Lock()
				ts = append(ts, msg.Timestamp)
				mu.Unlock()
				if msg.Payload[0]>>4 == 1 && msg.Payload[1] == 1 {
					keyframes.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return c, func() []uint32 {
			mu.Lock()
			defer mu.Unlock()
			return append([]uint32(nil), ts...)
		}, func() int {
			return int(keyframes.Load())
		}
}

func TestPlayerFollowsReturningPublisher(t *testing.T) {
	s := startServer(t, originConfig)
	// The player arrives first and waits for the stream.
	_, videoTS, _ := playRecording(t, s.url("live/back"))
	first := publishFFmpeg(t, s.url("live/back"), "320x240", 3)
	if _, exited := first.wait(30 * time.Second); !exited {
		t.Fatal("first publisher did not end")
	}
	n1 := len(videoTS())
	if n1 < 25 {
		t.Fatalf("player got %d video messages from the first publisher", n1)
	}
	time.Sleep(time.Second)
	publishFFmpeg(t, s.url("live/back"), "320x240", 30)
	deadline := time.Now().Add(15 * time.Second)
	for len(videoTS()) < n1+50 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	ts := videoTS()
	if len(ts) < n1+50 {
		t.Fatalf("player got %d video messages after the publisher returned", len(ts)-n1)
	}
	for i := 1; i < len(ts); i++ {
		if int32(ts[i]-ts[i-1]) < 0 {
			t.Fatalf("video timestamps went back at %d: %d after %d", i, ts[i], ts[i-1])
		}
	}
}
