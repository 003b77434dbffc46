package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rtmpedge/rtmpedge/bench"
)

// runFlags are the flags of the loads that run our server and feed its
// origins a video (compare, stall, gigabit, cluster, soak): the output
// directory, our server binary and the FLV.
type runFlags struct{ out, server, video *string }

func addRunFlags(fs *flag.FlagSet, out, server string) runFlags {
	return runFlags{
		out:    fs.String("out", out, "directory for the configs, logs, JSON, tables and plots"),
		server: fs.String("server", server, "our server binary"),
		video:  fs.String("video", "", "FLV to feed the origins (default: a generated 60 s 720p30 H.264 + AAC file in -out)"),
	}
}

// env makes the output directory and resolves what a load needs: our
// server's absolute path, this harness's path, and the video (generated
// into -out when -video is empty; made absolute and written back to -video)
// with its bit rate. The ports and the rest are the caller's to set.
func (f runFlags) env() (bench.Env, error) {
	srv, err := ourServer(*f.out, *f.server)
	if err != nil {
		return bench.Env{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return bench.Env{}, err
	}
	if *f.video == "" {
		*f.video = filepath.Join(*f.out, "bench-720p.flv")
		if _, err := os.Stat(*f.video); err != nil {
			fmt.Println("generating", *f.video)
			if err := generateVideo(*f.video); err != nil {
				return bench.Env{}, err
			}
		}
	}
	if *f.video, err = filepath.Abs(*f.video); err != nil {
		return bench.Env{}, err
	}
	bitrate, err := fileBitrate(*f.video)
	if err != nil {
		return bench.Env{}, fmt.Errorf("%s: %w", *f.video, err)
	}
	return bench.Env{Server: srv, Bench: self, Video: *f.video, Bitrate: bitrate}, nil
}

// ourServer makes the output directory out and returns the absolute path
// of our server binary, which must exist.
func ourServer(out, server string) (string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	srv, err := filepath.Abs(server)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(srv); err != nil {
		return "", fmt.Errorf("our server %s: %w (run make build)", srv, err)
	}
	return srv, nil
}

// addSRS adds the set-up srs to the -kinds list of fs, unless -kinds was
// given: -srs alone asks for it.
func addSRS(fs *flag.FlagSet, kinds *string) {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "kinds" })
	if !set {
		*kinds += ",srs"
	}
}

// pick returns the set-ups of all that the comma-separated names name, in
// their order.
func pick[T any](all map[string]T, names string) ([]T, error) {
	var out []T
	for _, n := range strings.Split(names, ",") {
		v, ok := all[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("unknown set-up %q", n)
		}
		out = append(out, v)
	}
	return out, nil
}
