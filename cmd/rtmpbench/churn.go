package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// churn runs connections that play a stream for a moment and leave with a
// TCP reset, many at a time, while canary players watch the stream.
func churn(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("churn", flag.ExitOnError)
	url := fs.String("url", "", "rtmp://host[:port]/app/stream to play")
	cycles := fs.Int("cycles", 3000, "connect/play/reset cycles in all")
	conc := fs.Int("concurrency", 50, "cycles in flight at once")
	msgs := fs.Int("read-messages", 8, "cycle n reads 1 + n%read-messages messages after play, then resets")
	readBytes := fs.Int("read-bytes", 64<<10, "or payload bytes, whichever comes first")
	readTimeout := fs.Duration("read-timeout", time.Second, "bound of a cycle's read phase")
	canaries := fs.Int("canaries", 5, "ordinary players watching the stream meanwhile")
	after := fs.Duration("after", 2*time.Second, "how long the canaries are watched after the churn")
	timeout := fs.Duration("timeout", 3*time.Minute, "bound of the whole run")
	interval := fs.Duration("interval", time.Second, "progress line interval")
	pid := fs.Int("pid", 0, "server PID: report whether it survived, its CPU and peak RSS")
	jsonPath := fs.String("json", "", "write the result as JSON here")
	_ = fs.Parse(args)
	if *url == "" {
		return errors.New("churn: -url is required")
	}
	cfg := bench.ChurnConfig{URL: *url, Cycles: *cycles, Concurrency: *conc, ReadMessages: *msgs, ReadBytes: *readBytes,
		ReadTimeout: *readTimeout, Canaries: *canaries, After: *after, Timeout: *timeout, Interval: *interval, Progress: os.Stdout}
	if *pid > 0 {
		cfg.Server = &bench.ProcWatch{PID: *pid}
		if !cfg.Server.Alive() {
			return fmt.Errorf("churn: no process %d", *pid)
		}
	}
	r, err := bench.Churn(ctx, cfg)
	if err != nil {
		return err
	}
	bench.WriteChurn(os.Stdout, r)
	if *jsonPath != "" {
		if err := bench.WriteJSON(*jsonPath, r); err != nil {
			return fmt.Errorf("churn: %w", err)
		}
	}
	if r.ServerWatched && !r.ServerAlive {
		return fmt.Errorf("churn: the server (pid %d) exited after %d cycles", *pid, r.DiedAfter)
	}
	return nil
}
