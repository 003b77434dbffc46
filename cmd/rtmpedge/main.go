// Command rtmpedge is the RTMP origin/edge server.
//
//	rtmpedge [-c FILE] [-t] [-v]
//
// With no -c it runs on its embedded default configuration: RTMP on :1935
// and one default vhost in origin mode.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rtmpedge/rtmpedge/api"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/loop"
	"github.com/rtmpedge/rtmpedge/metrics"
	"github.com/rtmpedge/rtmpedge/pool"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run())
}

func run() int {
	configPath := flag.String("c", "", "config file (YAML, JSON or TOML); empty: the embedded default")
	testOnly := flag.Bool("t", false, "check the config and exit")
	showVersion := flag.Bool("v", false, "print the version and exit")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060; builds with -tags pprof only)")
	flag.Parse()

	if *showVersion {
		fmt.Println("rtmpedge", version)
		return 0
	}
	cfg, err := conf.Load(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpedge: config:", err)
		return 1
	}
	if *testOnly {
		fmt.Printf("rtmpedge: config %s is ok (%d vhosts, listen %v, http %v, api %q)\n",
			cfg.Source, len(cfg.Vhosts), cfg.Listen, cfg.HTTP.Listen, cfg.API.Listen)
		return 0
	}

	level := new(slog.LevelVar) // reloads move it to log.level
	level.Set(cfg.Log.SlogLevel())
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	log := slog.New(h)

	if *pprofAddr != "" {
		if err := startPprof(*pprofAddr, log); err != nil {
			fmt.Fprintln(os.Stderr, "rtmpedge:", err)
			return 1
		}
	}
	loop.Version = version
	if os.Getenv("GOGC") == "" {
		// The heap is small and mostly media (carved from slabs, freed by
		// the GC at about the streams' bit rate), so a tight GC target
		// keeps an edge box's RSS down: 25% over the recent peak of the
		// live heap, which is where a GOGC of 25 peaks, without the
		// collections that find the GOP caches still growing (pool.TuneGC).
		pool.TuneGC(25, 30*time.Second)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("rtmpedge starting", "version", version, "pid", os.Getpid(), "config", cfg.Source)
	srv := loop.New(cfg, log)
	srv.LogLevel = level
	httpAPI := api.New(srv, log, version, metrics.Handler(srv, version))
	if err := httpAPI.Start(cfg); err != nil {
		log.Error("api failed", "err", err)
		return 1
	}
	defer httpAPI.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHangup(ctx, hup, srv, log)
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

// reloadOnHangup reloads the configuration file on every SIGHUP, as SRS
// and nginx do; an invalid file is logged and changes nothing.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, srv *loop.Server, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the configuration")
			_, _ = srv.ReloadFile() // it logs what it did or why not
		}
	}
}
