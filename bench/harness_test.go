package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/internal/freeport"
	"github.com/rtmpedge/rtmpedge/loop"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startOrigin runs the real server in this process on a free port.
func startOrigin(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	cfg, err := conf.Parse([]byte(fmt.Sprintf("listen: [%q]\nvhost_defaults: {merged_write: 0s}\n", addr)), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := WaitPort(addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestPlayersReportTheStreamBitrate(t *testing.T) {
	addr := startOrigin(t)
	url := "rtmp://" + addr + "/live/known"
	const bitrate = 2e6
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	go func() {
		n, _ := Publish(ctx, url, NewSynthetic(bitrate, 30, 30))
		sent.Store(n)
	}()
	time.Sleep(500 * time.Millisecond)
	r := RunLoad(ctx, LoadConfig{URL: url, Players: 5, Duration: 4 * time.Second, Interval: 500 * time.Millisecond})
	if r.Received != 5 || r.Failed != 0 {
		t.Fatalf("received %d failed %d: %v", r.Received, r.Failed, r.Reasons)
	}
	// The synthetic stream's media bitrate plus RTMP chunk headers.
	if r.PerPlayer < 0.85*bitrate/1e6 || r.PerPlayer > 1.15*bitrate/1e6 {
		t.Fatalf("per-player %.3f Mbit/s, want about %.3f", r.PerPlayer, bitrate/1e6)
	}
	if r.Stalls != 0 || r.LagP99 > 300 {
		t.Errorf("stalls %d lag p99 %.0f ms on an idle loopback server", r.Stalls, r.LagP99)
	}
	if r.FirstKeyP50 <= 0 || r.HandshakeP50 <= 0 {
		t.Errorf("first keyframe %.1f ms, handshake %.1f ms", r.FirstKeyP50, r.HandshakeP50)
	}
}

func TestFloorDeliversItsBitrate(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &Floor{Addr: addr, Bitrate: 4e6, Cadence: 50 * time.Millisecond}
	go func() { _ = f.Run(ctx) }()
	if err := WaitPort(addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r := RunLoad(ctx, LoadConfig{URL: addr, Raw: true, Players: 4, Duration: 3 * time.Second, Interval: 500 * time.Millisecond})
	if r.PerPlayer < 3.4 || r.PerPlayer > 4.6 {
		t.Fatalf("floor per player %.2f Mbit/s, want 4", r.PerPlayer)
	}
}

// throttle is a TCP relay that stops relaying server bytes while paused,
// as a server that stops sending would.
type throttle struct {
	paused atomic.Bool
}

func (th *throttle) serve(t *testing.T, target string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(s, c); s.Close() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					for th.paused.Load() {
						time.Sleep(10 * time.Millisecond)
					}
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestLagAndStallsAreDetected(t *testing.T) {
	addr := startOrigin(t)
	th := &throttle{}
	relay := th.serve(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = Publish(ctx, "rtmp://"+addr+"/live/slow", NewSynthetic(1e6, 30, 30)) }()
	time.Sleep(500 * time.Millisecond)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		th.paused.Store(true)
		time.Sleep(1500 * time.Millisecond)
		th.paused.Store(false)
	}()
	r := RunLoad(ctx, LoadConfig{URL: "rtmp://" + relay + "/live/slow", Players: 2, Duration: 4 * time.Second, Interval: 250 * time.Millisecond})
	if r.Stalls == 0 || r.MaxGapMs < 1200 {
		t.Fatalf("stalls %d max gap %.0f ms after a 1.5 s pause", r.Stalls, r.MaxGapMs)
	}
	peak := 0.0
	for _, s := range r.Samples {
		peak = max(peak, s.LagP99)
	}
	if peak < 1000 {
		t.Fatalf("lag peaked at %.0f ms during a 1.5 s pause", peak)
	}
}

func TestProcWatchMeasuresThisProcess(t *testing.T) {
	w := &ProcWatch{PID: os_getpid()}
	u := w.Usage()
	if u.Processes < 1 || u.PeakRSSMB <= 0 {
		t.Fatalf("usage %+v", u)
	}
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	if v := w.Usage(); v.CPUSeconds <= u.CPUSeconds-0.0001 {
		t.Fatalf("CPU went from %.3f to %.3f", u.CPUSeconds, v.CPUSeconds)
	}
}
