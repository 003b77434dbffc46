package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// SRSKind is SRS (a binary at srsPath, e.g. ../shared/peers/srs) as origin
// and edge, the edge pulling from the origin (cluster mode remote), both
// with the given merged-write window (mw_latency; 0 also turns min_latency
// on). Configs, logs and PID files go to the run dir; the processes are
// stopped by PID.
func (e Env) SRSKind(name, srsPath string, mwLatency time.Duration) Kind {
	return e.srsKind(name, srsPath, mwLatency, "")
}

// SRSFLVKind is SRSKind with the edge serving HTTP-FLV (http_remux) on the
// env's HTTP port, its players playing http://EDGE:HTTPPORT/live/bench.flv.
func (e Env) SRSFLVKind(name, srsPath string, mwLatency time.Duration) Kind {
	return e.flvKind(e.srsKind(name, srsPath, mwLatency, e.edgeHTTPAddr()), "http")
}

// srsKind is SRSKind; with httpAddr the edge also serves HTTP-FLV there.
func (e Env) srsKind(name, srsPath string, mwLatency time.Duration, httpAddr string) Kind {
	return Kind{Name: name, Ports: []int{e.OriginPort, e.EdgePort}, Start: func(dir string) (string, bool, *ProcWatch, func(), error) {
		bin, err := filepath.Abs(srsPath)
		if err != nil {
			return "", false, nil, nil, err
		}
		dir, err = filepath.Abs(dir) // SRS resolves relative paths against its working directory
		if err != nil {
			return "", false, nil, nil, err
		}
		origin := fmt.Sprintf("127.0.0.1:%d", e.OriginPort)
		edge := e.edgeAddr()
		ocfg, err := writeSRSConfig(dir, "srs-origin", origin, mwLatency, "", "")
		if err != nil {
			return "", false, nil, nil, err
		}
		top, remux := "", ""
		if httpAddr != "" {
			top = fmt.Sprintf("http_server { enabled on; listen %s; dir %s; }", httpAddr, dir)
			remux = "http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }"
		}
		ecfg, err := writeSRSConfig(dir, "srs-edge", edge, mwLatency, top, "cluster { mode remote; origin "+origin+"; } "+remux)
		if err != nil {
			return "", false, nil, nil, err
		}
		// SRS writes its own log; its stdout/stderr only says how it died.
		return e.startPair(dir, origin, edge,
			func() (*Proc, error) { return e.start(bin, filepath.Join(dir, "srs-origin.stderr"), "-c", ocfg) },
			func() (*Proc, error) { return e.start(bin, filepath.Join(dir, "srs-edge.stderr"), "-c", ecfg) })
	}}
}

// writeSRSConfig writes DIR/NAME.conf for an SRS serving RTMP on addr (top
// and vhostExtra: more directives at the top level and in the vhost) and
// returns its path.
func writeSRSConfig(dir, name, addr string, mw time.Duration, top, vhostExtra string) (string, error) {
	play := fmt.Sprintf("play { mw_latency %d; }", mw.Milliseconds())
	if mw == 0 {
		play = "min_latency on; " + play
	}
	// max_connections: SRS refuses players past it (its default is 1000).
	conf := fmt.Sprintf(`listen %[2]s;
max_connections 10000;
daemon off;
pid %[1]s/%[3]s.pid;
srs_log_tank file;
srs_log_file %[1]s/%[3]s.log;
srs_log_level warn;
query_latest_version off;
%[6]s
vhost __defaultVhost__ {
    %[4]s
    %[5]s
}
`, dir, addr, name, play, vhostExtra, top)
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", fmt.Errorf("srs config: %w", err)
	}
	return path, nil
}
