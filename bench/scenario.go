package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Proc is a process a scenario started; it is stopped by its PID.
type Proc struct {
	Cmd  *exec.Cmd
	Name string
	done chan struct{}
}

// StartProc starts name with args, its output appended to logPath.
func StartProc(name, logPath string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Cmd: cmd, Name: name, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// Stop sends SIGTERM, then SIGKILL after 5 s.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitPort waits until addr accepts TCP connections.
func WaitPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not accept connections within %s", addr, timeout)
}

// Kind is a server set-up a comparison runs.
type Kind struct {
	Name  string
	Ports []int // ports the set-up listens on; they must be free before it starts
	// Start starts the set-up in dir and returns the URL players load, the
	// process to measure, the port it pulls from (0: none) and a stop func.
	Start func(dir string) (url string, raw bool, watch *ProcWatch, stop func(), err error)
}

// Env holds what the scenarios need.
type Env struct {
	Server     string // our server binary
	Bench      string // this harness binary (for the floor subprocess)
	Video      string // FLV fed to the origins
	Bitrate    float64
	OriginPort int
	EdgePort   int
	HTTPPort   int // the edge's HTTP-FLV and WebSocket-FLV port (FLV set-ups only)
	Log        io.Writer
	// Netns is the network namespace the set-ups run in (empty: this one)
	// and Host the address their edges listen on (empty: 127.0.0.1);
	// origins listen on 127.0.0.1.
	Netns string
	Host  string
	// OursExtra is YAML merged into our edge's config (empty: none), e.g.
	// "capacity: {max_egress: 900Mbit}"; OursOriginExtra into our origin's.
	OursExtra       string
	OursOriginExtra string
}

func (e Env) feed(dir, url string) (*Proc, error) {
	return e.start("ffmpeg", filepath.Join(dir, "ffmpeg.log"), "-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", e.Video, "-c", "copy", "-f", "flv", url)
}

// OursKind is our origin + edge with the given merged-write window.
func (e Env) OursKind(name string, merged time.Duration) Kind {
	return e.fedKind(e.OursSet(name, merged))
}

// NginxKind is Debian's nginx-rtmp as origin + pull edge.
func (e Env) NginxKind() Kind {
	return e.fedKind(e.NginxSet())
}

// StartNginx runs nginx-rtmp in dir serving addr with the given application block.
func StartNginx(dir, addr, app string) (*Proc, error) { return Env{}.startNginx(dir, addr, app) }

func (e Env) startNginx(dir, addr, app string) (*Proc, error) {
	dir, err := filepath.Abs(dir) // nginx resolves relative paths against its prefix
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
rtmp {
    server {
        listen %[2]s;
        chunk_size 4096;
        %[3]s
    }
}
`, dir, addr, app)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return e.start("nginx", filepath.Join(dir, "stderr.log"), "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", path)
}

// FloorKind is the bare gnet fan-out at the stream's byte rate.
func (e Env) FloorKind(name string, cadence time.Duration) Kind {
	return Kind{Name: name, Ports: []int{e.EdgePort}, Start: func(dir string) (string, bool, *ProcWatch, func(), error) {
		addr := fmt.Sprintf("127.0.0.1:%d", e.EdgePort)
		p, err := StartProc(e.Bench, filepath.Join(dir, "floor.log"), "floor", "-listen", addr,
			"-bitrate", fmt.Sprint(e.Bitrate), "-cadence", cadence.String())
		if err != nil {
			return "", false, nil, nil, err
		}
		if err := WaitPort(addr, 10*time.Second); err != nil {
			p.Stop()
			return "", false, nil, nil, err
		}
		return addr, true, &ProcWatch{PID: p.Cmd.Process.Pid}, p.Stop, nil
	}}
}

// PortsFree fails when something already listens on one of the ports: a
// leftover server would silently take the place of the one under test.
func PortsFree(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("port %d is in use (a leftover server?): %w", p, err)
		}
		l.Close()
	}
	return nil
}

// RunKind runs one load of our players against a set-up and stops it.
func RunKind(ctx context.Context, k Kind, dir string, players int, ramp float64, d time.Duration, progress io.Writer) (Result, error) {
	return RunKindWith(ctx, k, dir, func(url string, raw bool, watch *ProcWatch) Result {
		return RunLoad(ctx, LoadConfig{URL: url, Players: players, Ramp: ramp, Duration: d, Interval: time.Second, Raw: raw, Progress: progress, Server: watch})
	})
}

// RunKindWith starts a set-up, waits until its stream plays through the
// edge, runs load against it (raw: the set-up speaks no RTMP) and stops it.
func RunKindWith(ctx context.Context, k Kind, dir string, load func(url string, raw bool, watch *ProcWatch) Result) (Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	if err := PortsFree(k.Ports...); err != nil {
		return Result{}, fmt.Errorf("%s: %w", k.Name, err)
	}
	url, raw, watch, stop, err := k.Start(dir)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", k.Name, err)
	}
	defer stop()
	if !raw {
		// Wait until the stream plays through the edge (the edge has pulled it).
		probe := &Player{URL: url}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		go probe.Run(pctx)
		for probe.FirstKey.Load() == 0 && pctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if probe.FirstKey.Load() == 0 {
			return Result{}, fmt.Errorf("%s: the stream never played through the edge", k.Name)
		}
		time.Sleep(500 * time.Millisecond) // the probe's upstream lingers; fine: it is the same stream
	}
	r := load(url, raw, watch)
	r.Name = k.Name
	return r, nil
}

// ColdStart measures the time to the first keyframe of the first player of
// a set-up whose edge has no upstream yet, n times.
func ColdStart(ctx context.Context, k Kind, dir string, n int) ([]float64, error) {
	var out []float64
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("cold%d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, err
		}
		if err := PortsFree(k.Ports...); err != nil {
			return nil, fmt.Errorf("%s: %w", k.Name, err)
		}
		url, _, _, stop, err := k.Start(sub)
		if err != nil {
			return nil, err
		}
		// Let the origin have the stream (GOP cached) before the edge is asked.
		time.Sleep(3 * time.Second)
		p := &Player{URL: url}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		go p.Run(pctx)
		for p.FirstKey.Load() == 0 && pctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		stop()
		if v := p.FirstKey.Load(); v > 0 {
			out = append(out, ms(v))
		}
	}
	return out, nil
}

func errorsJoin(errs ...error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}
