package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/chunk"
)

func TestTwoHundredPlayers(t *testing.T) {
	s := startServer(t, originConfig)
	publishFFmpeg(t, s.url("live/many"), "320x240", 60)
	probeUntil(t, s.url("live/many"), hasAV)

	const players = 200
	var wg sync.WaitGroup
	var ok atomic.Int32
	errs := make(chan error, players)
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := bench.Dial(s.url("live/many"), 15*time.Second)
			if err != nil {
				errs <- fmt.Errorf("player %d: %w", i, err)
				return
			}
			defer c.Close()
			if err := c.Play(); err != nil {
				errs <- fmt.Errorf("player %d: %w", i, err)
				return
			}
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			keyframe, video, audio := false, 0, 0
			for !keyframe || video < 50 || audio < 50 {
				msg, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("player %d after %d video %d audio: %w", i, video, audio, err)
					return
				}
				switch msg.TypeID {
				case chunk.TypeVideo:
					if video == 0 && !(len(msg.Payload) > 1 && msg.Payload[0] == 0x17) {
						errs <- fmt.Errorf("player %d: first video message is not a keyframe or sequence header: %x", i, msg.Payload[:min(2, len(msg.Payload))])
						return
					}
					video++
					keyframe = keyframe || (msg.Payload[0] == 0x17 && msg.Payload[1] == 1)
				case chunk.TypeAudio:
					audio++
				}
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ok.Load() != players {
		t.Fatalf("%d of %d players received the stream", ok.Load(), players)
	}
}

// publishSynthetic publishes a synthetic stream with the Go client, as
// fast as real time, until stop is closed. It returns the bytes sent.
func publishSynthetic(t *testing.T, url string, syn *bench.Synthetic, stop <-chan struct{}) *atomic.Int64 {
	t.Helper()
	c, err := bench.Dial(url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetChunkSize(60000); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		for _, f := range syn.Headers() {
			if err := c.WriteMessage(f.TypeID, f.Timestamp, f.Payload); err != nil {
				return
			}
		}
		start := time.Now()
		for {
			f := syn.Next()
			if wait := time.Duration(f.Timestamp)*time.Millisecond - time.Since(start); wait > 0 {
				select {
				case <-stop:
					return
				case <-time.After(wait):
				}
			}
			if err := c.WriteMessage(f.TypeID, f.Timestamp, f.Payload); err != nil {
				return
			}
			sent.Add(int64(len(f.Payload)))
		}
	}()
	t.Cleanup(func() { <-done })
	return &sent
}

func TestStalledPlayersStayBounded(t *testing.T) {
	s := startServerBin(t, plainServerBin, `
listen: ["%ADDR%"]
log: {level: info}
vhost_defaults:
  player_backlog: 2s
  player_lag_timeout: 6s
  gop_cache_max_bytes: 8MiB
vhosts:
  __defaultVhost__: {}
`)
	stop := make(chan struct{})
	defer close(stop)
	// 128 KiB frames at 30 fps: about 4 MB/s.
	sent := publishSynthetic(t, s.url("live/fast"), &bench.Synthetic{FPS: 30, GOP: 30, FrameBytes: 128 << 10}, stop)

	// Stalled players: a tiny receive buffer and they never read.
	const stalled = 8
	for range stalled {
		c, err := bench.Dialer{Timeout: 5 * time.Second, ReadBuffer: 4096}.Dial(s.url("live/fast"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Play(); err != nil {
			t.Fatal(err)
		}
	}
	// Healthy players count what they get.
	const healthy = 5
	var got [healthy]atomic.Int64
	var readers sync.WaitGroup
	for i := range healthy {
		c, err := bench.Dial(s.url("live/fast"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Play(); err != nil {
			t.Fatal(err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				got[i].Add(int64(len(msg.Payload)))
			}
		}()
		defer c.Close()
	}

	base := s.rssKB()
	sentAtStart := sent.Load()
	peak := base
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, s.rssKB())
		time.Sleep(100 * time.Millisecond)
	}
	sentDuring := sent.Load() - sentAtStart
	t.Logf("published %d MB in 5 s; server RSS %d MB -> peak %d MB", sentDuring>>20, base>>10, peak>>10)
	// Without the bound each stalled player would hold everything sent.
	if unbounded := int(sentDuring>>10) * stalled; unbounded < 60<<10 {
		t.Fatalf("the publisher sent too little (%d KB) for the test to tell", sentDuring>>10)
	}
	if growth := peak - base; growth > 40<<10 {
		t.Errorf("server RSS grew by %d MB with %d stalled players, want under 40 MB", growth>>10, stalled)
	}
	// Healthy players kept up with the publisher.
	for i := range healthy {
		if n := got[i].Load(); n < sent.Load()*8/10 {
			t.Errorf("healthy player %d got %d of %d bytes", i, n, sent.Load())
		}
	}
	// And the stalled players are disconnected after player_lag_timeout.
	deadline = time.Now().Add(15 * time.Second)
	for strings.Count(s.log.String(), "player_lag_timeout") < stalled && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := strings.Count(s.log.String(), "player_lag_timeout"); n != stalled {
		t.Errorf("%d stalled players disconnected for lag, want %d", n, stalled)
	}
}
