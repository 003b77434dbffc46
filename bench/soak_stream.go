package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// soakStream is one stream of the soak. Its publisher is an ffmpeg looping
// the FLV to each origin (two processes, started and stopped together), as
// an encoder feeding a redundant pair of origins would: with one publisher
// to the first origin only, the stream would be gone from the cluster
// whenever that origin is killed, and the edge's failover would have
// nothing to fail over to. Stopped together, the stream as a whole comes
// and goes (the edge's players see it unpublished, then back), which is
// what a publisher leaving means; stopping them apart would make the edge
// sit on an origin whose copy of the stream is gone until no_data_timeout.
//
// A monitor player on the second origin (never killed) says when the
// stream is really live: a session's live span starts at the monitor's
// first video message after the ffmpeg processes started (5 s after them
// at the latest) and ends when they are stopped.
type soakStream struct {
	s       *soaker
	name    string
	origins [2]*soakServer
	tracker *soakTracker // measures the monitor's waits

	mu    sync.Mutex
	spans []liveSpan
	procs [2]*Proc
	// starts counts the ffmpeg processes started; exits those that ended
	// on their own (their origin was killed, or ffmpeg failed).
	starts, exits int

	monitor *Player
	mwg     sync.WaitGroup
}

// liveSpan is a time the stream had a live publisher; to is zero while it
// still has.
type liveSpan struct{ from, to time.Time }

// liveAt reports whether the stream is live at t.
func (st *soakStream) liveAt(t time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, sp := range st.spans {
		if !t.Before(sp.from) && (sp.to.IsZero() || t.Before(sp.to)) {
			return true
		}
	}
	return false
}

// liveWithin returns the longest part of [a, b] that lies within one live
// span of the stream.
func (st *soakStream) liveWithin(a, b time.Time) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	return liveWithin(st.spans, a, b)
}

func liveWithin(spans []liveSpan, a, b time.Time) time.Duration {
	var best time.Duration
	for _, sp := range spans {
		to := sp.to
		if to.IsZero() || to.After(b) {
			to = b
		}
		from := sp.from
		if from.Before(a) {
			from = a
		}
		best = max(best, to.Sub(from))
	}
	return best
}

// run publishes the stream in sessions of PublishMin-PublishMax with
// pauses of PauseMin-PauseMax, until ctx is done.
func (st *soakStream) run(ctx context.Context) {
	cfg := &st.s.cfg
	defer st.mwg.Wait()
	defer st.stopPublishers()
	defer st.closeSpan()
	st.keepMonitor(ctx)
	for ctx.Err() == nil {
		on := st.s.between(cfg.PublishMin, cfg.PublishMax)
		onAt := time.Now()
		v0 := st.monitor.Video.Load()
		mon := st.monitor
		st.ensure()
		// Live from the monitor's first video (at most 5 s after the start).
		liveFrom := onAt.Add(5 * time.Second)
		for time.Now().Before(liveFrom) && ctx.Err() == nil {
			if mon.Video.Load() > v0 {
				liveFrom = time.Now()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		st.mu.Lock()
		st.spans = append(st.spans, liveSpan{from: liveFrom})
		st.mu.Unlock()
		st.s.event("publish", fmt.Sprintf("%s for %s, live after %d ms", st.name, on.Round(time.Second), liveFrom.Sub(onAt).Milliseconds()))
		// Keep it published: restart the ffmpeg of an origin that came back.
		for end := onAt.Add(on); time.Now().Before(end); {
			if !sleepCtx(ctx, min(500*time.Millisecond, time.Until(end))) {
				return
			}
			st.ensure()
			st.keepMonitor(ctx)
		}
		st.closeSpan()
		st.stopPublishers()
		pause := st.s.between(cfg.PauseMin, cfg.PauseMax)
		st.s.event("unpublish", fmt.Sprintf("%s for %s", st.name, pause.Round(100*time.Millisecond)))
		if !sleepCtx(ctx, pause) {
			return
		}
		st.keepMonitor(ctx)
	}
}

// closeSpan ends the open live span, if any, now.
func (st *soakStream) closeSpan() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.spans); n > 0 && st.spans[n-1].to.IsZero() {
		st.spans[n-1].to = time.Now()
	}
}

// ensure starts the ffmpeg of every origin that is up and has none running.
func (st *soakStream) ensure() {
	for i, o := range st.origins {
		st.mu.Lock()
		p := st.procs[i]
		st.mu.Unlock()
		if p != nil && p.Exited() {
			st.mu.Lock()
			st.exits++
			st.procs[i] = nil
			st.mu.Unlock()
			st.s.event("publisher exited", fmt.Sprintf("%s to %s: %s", st.name, o.name, p.Cmd.ProcessState))
			p = nil
		}
		if p != nil || o.current() == nil {
			continue
		}
		dir := filepath.Join(st.s.cfg.Dir, "pub-"+st.name+"-"+o.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			st.s.event("publisher failed", err.Error())
			continue
		}
		np, err := Env{Video: st.s.cfg.Video}.feed(dir, "rtmp://"+o.addr+"/live/"+st.name)
		if err != nil {
			st.s.event("publisher failed", fmt.Sprintf("%s to %s: %v", st.name, o.name, err))
			continue
		}
		st.mu.Lock()
		st.procs[i] = np
		st.starts++
		st.mu.Unlock()
	}
}

// stopPublishers stops both ffmpeg processes by PID (SIGTERM, then SIGKILL
// after 5 s), together.
func (st *soakStream) stopPublishers() {
	st.mu.Lock()
	procs := st.procs
	st.procs = [2]*Proc{}
	st.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.Stop() }()
		}
	}
	wg.Wait()
}

// keepMonitor (re)starts the monitor player on the second origin when it
// is not running.
func (st *soakStream) keepMonitor(ctx context.Context) {
	if m := st.monitor; m != nil {
		if s := m.State.Load(); s == StateConnecting || s == StatePlaying {
			return
		}
		reason := "ended"
		if r := m.Reason.Load(); r != nil {
			reason = *r
		}
		st.s.event("monitor restarted", st.name+": "+reason)
	}
	m := &Player{URL: "rtmp://" + st.origins[1].addr + "/live/" + st.name}
	st.monitor = m
	st.mwg.Add(1)
	go func() {
		defer st.mwg.Done()
		tr := st.tracker.addKind(m, st, true)
		m.Run(ctx)
		st.tracker.finish(tr, time.Now())
	}()
}
