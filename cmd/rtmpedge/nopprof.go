//go:build !pprof

package main

import (
	"errors"
	"log/slog"
)

func startPprof(string, *slog.Logger) error {
	return errors.New("-pprof needs a build with -tags pprof (make build TAGS=pprof)")
}
