package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// Player clients: this harness's Go players, or rtmpdump processes.
const (
	clientGo       = "rtmpbench"
	clientRtmpdump = "rtmpdump"
	clientBoth     = "both"
)

// runPlayers runs cfg's load with the given client.
func runPlayers(ctx context.Context, client string, cfg bench.LoadConfig) (bench.Result, error) {
	switch client {
	case clientGo:
		return bench.RunLoad(ctx, cfg), nil
	case clientRtmpdump:
		if cfg.Raw {
			return bench.Result{}, fmt.Errorf("rtmpdump players need an RTMP server, not -raw")
		}
		return bench.RtmpdumpLoad(ctx, bench.RtmpdumpConfig{URL: cfg.URL, Players: cfg.Players, Ramp: cfg.Ramp,
			Duration: cfg.Duration, Interval: cfg.Interval, Progress: cfg.Progress, Server: cfg.Server}), nil
	}
	return bench.Result{}, fmt.Errorf("unknown client %q (want %s or %s)", client, clientGo, clientRtmpdump)
}

// clientRun is one set-up run with one client; name is its row in the report.
type clientRun struct {
	kind   bench.Kind
	client string
	name   string
}

// clientRuns lists the runs of the set-ups with the -client choice. With
// both, every RTMP set-up runs twice, the rtmpdump row named KIND-rtmpdump.
// The floor speaks no RTMP: it is always read by raw Go readers, once; FLV
// set-ups (names ending in "flv") by Go FLV players, once.
func clientRuns(order []bench.Kind, client string) ([]clientRun, error) {
	var out []clientRun
	for _, k := range order {
		goOnly := strings.HasPrefix(k.Name, "floor") || strings.HasSuffix(k.Name, "flv")
		switch {
		case client == clientGo || client == clientRtmpdump || goOnly && client == clientBoth:
			out = append(out, clientRun{k, client, k.Name})
		case client == clientBoth:
			out = append(out, clientRun{k, clientGo, k.Name}, clientRun{k, clientRtmpdump, k.Name + "-rtmpdump"})
		default:
			return nil, fmt.Errorf("unknown -client %q (want %s, %s or %s)", client, clientGo, clientRtmpdump, clientBoth)
		}
	}
	return out, nil
}

// reportKinds names the report's rows.
func reportKinds(runs []clientRun) []bench.Kind {
	out := make([]bench.Kind, len(runs))
	for i, r := range runs {
		out[i] = bench.Kind{Name: r.name}
	}
	return out
}

// runKindClient is bench.RunKind with the given client; a raw set-up (the
// floor) gets Go raw readers and an FLV one Go FLV players, whatever the
// client.
func runKindClient(ctx context.Context, k bench.Kind, client, dir string, players int, ramp float64, d time.Duration, progress io.Writer) (bench.Result, error) {
	var loadErr error
	r, err := bench.RunKindWith(ctx, k, dir, func(url string, raw bool, watch *bench.ProcWatch) bench.Result {
		c := client
		if raw || c == clientBoth || !strings.HasPrefix(url, "rtmp://") {
			c = clientGo
		}
		r, err := runPlayers(ctx, c, bench.LoadConfig{URL: url, Players: players, Ramp: ramp, Duration: d,
			Interval: time.Second, Raw: raw, Progress: progress, Server: watch})
		loadErr = err
		return r
	})
	if err == nil {
		err = loadErr
	}
	return r, err
}

// clientNote says in the report which players measured the set-ups.
func clientNote(client string) string {
	switch client {
	case clientRtmpdump:
		return "Players: rtmpdump processes (the floor: raw Go readers; FLV set-ups: this harness's FLV players).\n\n"
	case clientBoth:
		return "Players: this harness's, and rtmpdump processes in the -rtmpdump rows (the floor: raw Go readers; FLV set-ups: this harness's FLV players).\n\n"
	}
	return ""
}
