package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// EdgeRole is what a set-up's edge does for the harness.
type EdgeRole int

// Edge roles.
const (
	NoEdge   EdgeRole = iota // the origin alone
	PullEdge                 // an edge whose players pull from the origin
	PushEdge                 // an edge that forwards publishers to the origin
)

// Servers is a started set-up: an origin listening on the env's origin
// port and, unless the role is NoEdge, an edge in front of it on the edge
// port. Nothing feeds it: publishers and players come from the harness.
type Servers struct {
	OriginAddr, EdgeAddr string
	Origin, Edge         *ProcWatch // Edge nil without an edge; the edge counts its connections to the origin
	Stop                 func()
}

// ServerSet is a kind of server (ours, nginx-rtmp, SRS) as origin and edge.
type ServerSet struct {
	Name string
	// Start starts the origin (and the edge for role) with its files in
	// dir, and waits until they accept connections.
	Start func(dir string, role EdgeRole) (Servers, error)
}

// Ports returns the ports a set-up of role listens on.
func (e Env) Ports(role EdgeRole) []int {
	if role == NoEdge {
		return []int{e.OriginPort}
	}
	return []int{e.OriginPort, e.EdgePort}
}

// startServers starts an origin and, unless the role is NoEdge, an edge with
// the given start functions, and waits for their ports.
func (e Env) startServers(role EdgeRole, startOrigin, startEdge func(origin, edge string) (*Proc, error)) (Servers, error) {
	s := Servers{OriginAddr: fmt.Sprintf("127.0.0.1:%d", e.OriginPort)}
	o, err := startOrigin(s.OriginAddr, "")
	if err != nil {
		return Servers{}, err
	}
	s.Origin, s.Stop = &ProcWatch{PID: o.Cmd.Process.Pid}, o.Stop
	if role != NoEdge {
		s.EdgeAddr = e.edgeAddr()
		ed, err := startEdge(s.OriginAddr, s.EdgeAddr)
		if err != nil {
			o.Stop()
			return Servers{}, err
		}
		s.Edge = &ProcWatch{PID: ed.Cmd.Process.Pid, UpstreamPort: e.OriginPort}
		s.Stop = func() { ed.Stop(); o.Stop() }
	}
	err = e.waitPort(s.OriginAddr, 10*time.Second)
	if err == nil && role != NoEdge {
		err = e.waitPort(s.EdgeAddr, 10*time.Second)
	}
	if err != nil {
		s.Stop()
		return Servers{}, err
	}
	return s, nil
}

// OursSet is our server with the given merged-write window on both the
// origin and the edge (the edge's config merged with the env's OursExtra).
func (e Env) OursSet(name string, merged time.Duration) ServerSet {
	return ServerSet{Name: name, Start: func(dir string, role EdgeRole) (Servers, error) {
		return e.startServers(role,
			func(origin, _ string) (*Proc, error) {
				// The origin uses the same window: with 350 ms merged writes
				// upstream the edge would receive (and so write) in 350 ms
				// bursts whatever its own setting.
				y, err := mergeYAML(fmt.Sprintf("listen: [%q]\nlog: {level: warn}\nvhost_defaults: {merged_write: %s}\n", origin, merged), e.OursOriginExtra)
				if err != nil {
					return nil, err
				}
				return e.startOurs(dir, "origin", y)
			},
			func(origin, edge string) (*Proc, error) {
				y, err := mergeYAML(fmt.Sprintf(`listen: [%q]
log: {level: warn}
vhost_defaults:
  merged_write: %s
vhosts:
  __defaultVhost__:
    cluster: {mode: remote, origin: [%q]}
`, edge, merged, origin), e.OursExtra)
				if err != nil {
					return nil, err
				}
				return e.startOurs(dir, "edge", y)
			})
	}}
}

// startOurs writes DIR/NAME.yaml and starts our server on it.
func (e Env) startOurs(dir, name, yaml string) (*Proc, error) {
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	return e.start(e.Server, filepath.Join(dir, name+".log"), "-c", cfg)
}

// NginxSet is Debian's nginx-rtmp: an origin (live on) and an edge that
// pulls from it (pull) or pushes its publishers to it (push).
func (e Env) NginxSet() ServerSet {
	return ServerSet{Name: "nginx-rtmp", Start: func(dir string, role EdgeRole) (Servers, error) {
		return e.startServers(role,
			func(origin, _ string) (*Proc, error) {
				return e.startNginx(filepath.Join(dir, "nginx-origin"), origin, "application live { live on; }")
			},
			func(origin, edge string) (*Proc, error) {
				relay := "pull"
				if role == PushEdge {
					relay = "push"
				}
				return e.startNginx(filepath.Join(dir, "nginx-edge"), edge, "application live { live on; "+relay+" rtmp://"+origin+"/live; }")
			})
	}}
}

// SRSSet is SRS (a binary at srsPath) as origin and edge (cluster mode
// remote: its players pull from the origin and its publishers are
// forwarded to it), both with the given merged-write window (mw_latency;
// 0 also turns min_latency on); with httpAddr the edge also serves
// HTTP-FLV there. Configs, logs and PID files go to the run dir.
func (e Env) SRSSet(name, srsPath string, mwLatency time.Duration, httpAddr string) ServerSet {
	return ServerSet{Name: name, Start: func(dir string, role EdgeRole) (Servers, error) {
		bin, err := filepath.Abs(srsPath)
		if err != nil {
			return Servers{}, err
		}
		if dir, err = filepath.Abs(dir); err != nil { // SRS resolves relative paths against its working directory
			return Servers{}, err
		}
		// SRS writes its own log; its stdout/stderr only says how it died.
		return e.startServers(role,
			func(origin, _ string) (*Proc, error) {
				cfg, err := writeSRSConfig(dir, "srs-origin", origin, mwLatency, "", "")
				if err != nil {
					return nil, err
				}
				return e.start(bin, filepath.Join(dir, "srs-origin.stderr"), "-c", cfg)
			},
			func(origin, edge string) (*Proc, error) {
				top, remux := "", ""
				if httpAddr != "" {
					top = fmt.Sprintf("http_server { enabled on; listen %s; dir %s; }", httpAddr, dir)
					remux = "http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }"
				}
				cfg, err := writeSRSConfig(dir, "srs-edge", edge, mwLatency, top, "cluster { mode remote; origin "+origin+"; } "+remux)
				if err != nil {
					return nil, err
				}
				return e.start(bin, filepath.Join(dir, "srs-edge.stderr"), "-c", cfg)
			})
	}}
}

// fedKind is set's origin and pull edge, the origin fed with the env's video
// by ffmpeg: a Kind whose players play the stream from the edge.
func (e Env) fedKind(set ServerSet) Kind {
	return Kind{Name: set.Name, Ports: e.Ports(PullEdge), Start: func(dir string) (string, bool, *ProcWatch, func(), error) {
		s, err := set.Start(dir, PullEdge)
		if err != nil {
			return "", false, nil, nil, err
		}
		f, err := e.feed(dir, "rtmp://"+s.OriginAddr+"/live/bench")
		if err != nil {
			s.Stop()
			return "", false, nil, nil, err
		}
		return "rtmp://" + s.EdgeAddr + "/live/bench", false, s.Edge, func() { f.Stop(); s.Stop() }, nil
	}}
}
