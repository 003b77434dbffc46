package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// SRSKind is SRS (a binary at srsPath, e.g. ../shared/peers/srs) as origin
// and edge, the edge pulling from the origin, both with the given
// merged-write window (see SRSSet).
func (e Env) SRSKind(name, srsPath string, mwLatency time.Duration) Kind {
	return e.fedKind(e.SRSSet(name, srsPath, mwLatency, ""))
}

// SRSFLVKind is SRSKind with the edge serving HTTP-FLV (http_remux) on the
// env's HTTP port, its players playing http://EDGE:HTTPPORT/live/bench.flv.
func (e Env) SRSFLVKind(name, srsPath string, mwLatency time.Duration) Kind {
	return e.flvKind(e.fedKind(e.SRSSet(name, srsPath, mwLatency, e.edgeHTTPAddr())), "http")
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
