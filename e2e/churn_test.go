package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// churnCycles is how many connect/play/reset cycles the churn test runs.
// A server that removes a player from the fan-out while writing to it
// (a reset arriving inside the write) crashed in well under this many.
const churnCycles = 600

// TestChurnOfResettingPlayers has players connect, play, read a little and
// leave with a TCP reset, 50 at a time, while a canary player watches: the
// server must survive it and keep the canary's media flowing.
func TestChurnOfResettingPlayers(t *testing.T) {
	s := startServer(t, originConfig)
	url := s.url("live/churn")
	publishFFmpeg(t, url, "640x360", 60)
	probeUntil(t, url, hasAV)

	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r, err := bench.Churn(ctx, bench.ChurnConfig{
		URL:         url,
		Cycles:      churnCycles,
		Concurrency: 50,
		Canaries:    1,
		After:       2 * time.Second,
		Timeout:     35 * time.Second,
		Interval:    time.Second,
		Progress:    &progress,
		Server:      &bench.ProcWatch{PID: s.pid()},
	})
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	bench.WriteChurn(&report, r)
	t.Logf("churn:\n%s%s", progress.String(), report.String())

	select {
	case <-s.done:
		t.Fatalf("the server exited during the churn (first seen gone after %d of %d cycles)", r.DiedAfter, churnCycles)
	default:
	}
	if !r.ServerAlive {
		t.Fatalf("the server was gone after %d cycles", r.DiedAfter)
	}
	log := s.log.String()
	for _, bad := range []string{"panic", "DATA RACE"} {
		if strings.Contains(log, bad) {
			t.Errorf("the server log contains %q", bad)
		}
	}
	if r.TimedOut {
		t.Errorf("the churn did not finish in time: %d of %d cycles done", r.Cycles, churnCycles)
	}
	// Cycles fail only when the server misbehaves; a few on a busy machine
	// are tolerated, not a failing server.
	if r.Cycles < churnCycles*9/10 {
		t.Errorf("only %d of %d cycles played and reset; errors: %v", r.Cycles, churnCycles, r.Examples)
	}
	if r.CanaryPlaying != 1 || r.CanaryFailed != 0 {
		t.Errorf("the canary stopped playing: %v", r.CanaryReasons)
	}
	if r.CanaryVideoAfter == 0 {
		t.Errorf("the canary received no video in the %s after the churn", 2*time.Second)
	}
	// And a new player still gets the stream.
	probeUntil(t, url, hasAV)
}
