//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers the profiling handlers
)

// startPprof serves the profiling endpoints. It is built only with
// -tags pprof: net/http adds 3 MB of resident binary to every process.
func startPprof(addr string, log *slog.Logger) error {
	go func() {
		log.Info("pprof listening", "addr", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Error("pprof", "err", err)
		}
	}()
	return nil
}
