// Command rtmpbench is the load harness: RTMP players and publishers that
// measure a server, a floor server, and side-by-side comparisons.
//
//	rtmpbench play    -url rtmp://HOST/APP/STREAM -n 500 [-ramp 100] [-d 30s] [-pid PID] [-json F] [-plot F] [-client rtmpdump]
//	rtmpbench publish -url rtmp://HOST/APP/STREAM -n 10 [-file x.flv | -bitrate 1200000] [-d 30s] [-pid PID]
//	rtmpbench floor   -listen 127.0.0.1:19400 -bitrate 1160000 -cadence 350ms
//	rtmpbench compare [-players 500] [-runs 3] [-d 30s] [-out bench-out] [-srs PATH]
//	rtmpbench gigabit [-players 800,1000] [-d 20s] [-out gigabit-out] [-srs PATH] [-ours-extra NAME=YAML]   (root)
//	rtmpbench churn   -url rtmp://HOST/APP/STREAM [-cycles 3000] [-concurrency 50] [-canaries 5] [-pid PID] [-json F]
//	rtmpbench soak    [-d 30m] [-kill-every 4m] [-players 300] [-server bin/rtmpedge-pprof] [-out soak-out]
//	rtmpbench cluster [-n 30] [-out bench-out/cluster]   (cold-edge first keyframe with and without the stream registry)
//	rtmpbench ingest  [-publishers 30] [-runs 3] [-d 20s] [-loads ingest,forward] [-srs PATH] [-out DIR]
//	rtmpbench streams [-shapes 200x5,50x20] [-runs 3] [-d 20s] [-srs PATH] [-out DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "play":
		err = play(ctx, os.Args[2:])
	case "publish":
		err = publish(ctx, os.Args[2:])
	case "floor":
		err = floor(ctx, os.Args[2:])
	case "compare":
		err = compare(ctx, os.Args[2:])
	case "gigabit":
		err = gigabit(ctx, os.Args[2:])
	case "churn":
		err = churn(ctx, os.Args[2:])
	case "stall":
		err = stall(ctx, os.Args[2:])
	case "soak":
		err = soak(ctx, os.Args[2:])
	case "cluster":
		err = clusterCold(ctx, os.Args[2:])
	case "ingest":
		err = ingest(ctx, os.Args[2:])
	case "streams":
		err = streams(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: rtmpbench play|publish|floor|compare|churn|gigabit|stall|soak|cluster|ingest|streams [flags]   (rtmpbench CMD -h for flags)`)
	os.Exit(2)
}

func play(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("play", flag.ExitOnError)
	url := fs.String("url", "", "rtmp://host[:port]/app/stream, http://host:port/app/stream.flv (HTTP-FLV) or ws://host:port/app/stream.flv (WebSocket-FLV) to play (or host:port with -raw)")
	n := fs.Int("n", 100, "players")
	ramp := fs.Float64("ramp", 100, "players started per second (0: all at once)")
	d := fs.Duration("d", 30*time.Second, "measurement window after the last player started")
	interval := fs.Duration("interval", time.Second, "progress line interval")
	raw := fs.Bool("raw", false, "count raw TCP bytes (the floor server)")
	pid := fs.Int("pid", 0, "server PID: measure its CPU, peak RSS (and upstreams with -upstream-port)")
	upPort := fs.Int("upstream-port", 0, "count the server's connections to this remote port (an edge's origin)")
	jsonPath := fs.String("json", "", "write the result as JSON here")
	plotPath := fs.String("plot", "", "write a PNG plot of throughput and lag here")
	client := fs.String("client", clientGo, "players: rtmpbench (this harness's) or rtmpdump (processes; no lag figures)")
	_ = fs.Parse(args)
	if *url == "" {
		return errors.New("play: -url is required")
	}
	cfg := bench.LoadConfig{URL: *url, Players: *n, Ramp: *ramp, Duration: *d, Interval: *interval, Raw: *raw, Progress: os.Stdout}
	if *pid > 0 {
		cfg.Server = &bench.ProcWatch{PID: *pid, UpstreamPort: *upPort}
	}
	r, err := runPlayers(ctx, *client, cfg)
	if err != nil {
		return fmt.Errorf("play: %w", err)
	}
	r.Name = "play"
	bench.WriteSummary(os.Stdout, []bench.Result{r})
	if *jsonPath != "" {
		if err := bench.WriteJSON(*jsonPath, r); err != nil {
			return err
		}
	}
	if *plotPath != "" {
		return bench.PlotTimeline([]bench.Result{r}, *url, *plotPath)
	}
	return nil
}

func publish(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ExitOnError)
	url := fs.String("url", "", "rtmp://host[:port]/app/stream; with -n > 1, -0, -1, ... are appended to the stream name")
	n := fs.Int("n", 1, "publishers")
	file := fs.String("file", "", "FLV file to publish, looped in real time")
	bitrate := fs.Float64("bitrate", 1.2e6, "synthetic stream bitrate (bits/s) when no -file")
	fps := fs.Int("fps", 30, "synthetic frames per second")
	gop := fs.Int("gop", 60, "synthetic frames per keyframe")
	d := fs.Duration("d", 30*time.Second, "how long to publish")
	pid := fs.Int("pid", 0, "server PID: report its CPU and peak RSS")
	_ = fs.Parse(args)
	if *url == "" {
		return errors.New("publish: -url is required")
	}
	ctx, cancel := context.WithTimeout(ctx, *d)
	defer cancel()
	var watch *bench.ProcWatch
	var before bench.Usage
	if *pid > 0 {
		watch = &bench.ProcWatch{PID: *pid}
		before = watch.Usage()
	}
	type res struct {
		sent int64
		err  error
	}
	out := make(chan res, *n)
	for i := range *n {
		u := *url
		if *n > 1 {
			u = fmt.Sprintf("%s-%d", *url, i)
		}
		go func() {
			var src bench.Source
			if *file != "" {
				fsrc, err := bench.NewFileSource(*file)
				if err != nil {
					out <- res{err: err}
					return
				}
				src = fsrc
			} else {
				src = bench.NewSynthetic(*bitrate, *fps, *gop)
			}
			sent, err := bench.Publish(ctx, u, src)
			out <- res{sent, err}
		}()
	}
	var total int64
	failed := 0
	for range *n {
		r := <-out
		total += r.sent
		if r.err != nil {
			failed++
			fmt.Fprintln(os.Stderr, "publisher:", r.err)
		}
	}
	fmt.Printf("publishers=%d failed=%d sent=%.1f MB (%.1f Mbit/s)\n", *n, failed, float64(total)/1e6, float64(total)*8/1e6/d.Seconds())
	if watch != nil {
		u := watch.Usage()
		cpu := u.CPUSeconds - before.CPUSeconds
		fmt.Printf("server: cpu=%.2fs (%.2f CPU-s per GB ingested) peak_rss=%.1fMB\n", cpu, cpu/(float64(total)/1e9), u.PeakRSSMB)
	}
	if failed > 0 {
		return fmt.Errorf("%d publishers failed", failed)
	}
	return nil
}

func floor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:19400", "address to serve")
	bitrate := fs.Float64("bitrate", 1.16e6, "bits per second written to every client")
	cadence := fs.Duration("cadence", 350*time.Millisecond, "write interval")
	_ = fs.Parse(args)
	f := &bench.Floor{Addr: *listen, Bitrate: *bitrate, Cadence: *cadence}
	return f.Run(ctx)
}
