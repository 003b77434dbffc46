package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/internal/freeport"
)

// serverBin is the server binary built once for all tests (with -race when
// the tests run with -race, so their real traffic also hunts data races in
// the server), or the one RTMPEDGE_E2E_SERVER names. plainServerBin is
// built without -race, for the tests that measure memory: the race
// detector's shadow memory would drown the signal.
var serverBin, plainServerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rtmpedge-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plainServerBin = filepath.Join(dir, "rtmpedge")
	serverBin = plainServerBin
	builds := [][]string{{"build", "-o", plainServerBin, "../cmd/rtmpedge"}}
	if raceEnabled {
		serverBin = filepath.Join(dir, "rtmpedge-race")
		builds = append(builds, []string{"build", "-race", "-o", serverBin, "../cmd/rtmpedge"})
	}
	for _, args := range builds {
		build := exec.Command("go", args...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building the server:", err)
			os.Exit(1)
		}
	}
	// RTMPEDGE_E2E_SERVER runs the tests against another server binary,
	// such as a build of an older commit.
	if p := os.Getenv("RTMPEDGE_E2E_SERVER"); p != "" {
		if serverBin, err = filepath.Abs(p); err != nil {
			fmt.Fprintln(os.Stderr, "RTMPEDGE_E2E_SERVER:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "e2e: testing the server binary", serverBin)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback TCP port that was free a moment ago, below
// the ephemeral range so that no outgoing connection takes it first.
func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// server is a running server process.
type server struct {
	t        testing.TB
	cmd      *exec.Cmd
	addr     string
	httpAddr string // with %HTTP% in the config: its HTTP-FLV listener
	apiAddr  string // with %API% in the config: its API listener
	cfgPath  string // the config file (startServer), for reload tests
	bin      string // the binary and config file it runs, for a restart
	path     string
	log      *syncBuffer
	done     chan struct{}
}

// syncBuffer collects a process's output for assertions and failure logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer writes cfg (YAML; %ADDR% is replaced by a free loopback
// address) and runs the server on it until the test ends.
func startServer(t testing.TB, cfg string) *server {
	t.Helper()
	return startServerBin(t, serverBin, cfg)
}

// startServerBin is startServer with a given binary.
func startServerBin(t testing.TB, bin, cfg string) *server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg = strings.ReplaceAll(cfg, "%ADDR%", addr)
	httpAddr, apiAddr := "", ""
	if strings.Contains(cfg, "%HTTP%") {
		httpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg = strings.ReplaceAll(cfg, "%HTTP%", httpAddr)
	}
	if strings.Contains(cfg, "%API%") {
		apiAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg = strings.ReplaceAll(cfg, "%API%", apiAddr)
	}
	path := filepath.Join(t.TempDir(), "rtmpedge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServerFile(t, bin, path, addr)
	s.httpAddr, s.apiAddr, s.cfgPath = httpAddr, apiAddr, path
	return s
}

// startServerFile runs bin -c path; the config listens on addr.
func startServerFile(t testing.TB, bin, path, addr string) *server {
	t.Helper()
	s := &server{t: t, addr: addr, bin: bin, path: path, log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "-c", path)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(s.log.String(), "rtmp server listening") {
		select {
		case <-s.done:
			t.Fatalf("server exited at start:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start in time:\n%s", s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// url returns the rtmp URL of app/stream on this server.
func (s *server) url(appStream string) string { return "rtmp://" + s.addr + "/" + appStream }

// pid returns the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits; SIGKILL after 10 s.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// waitLog waits until the server log contains substr.
func (s *server) waitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log.String(), substr) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// rssKB returns the server's resident set size in KiB.
func (s *server) rssKB() int { return s.statusKB("VmRSS:") }

// peakRSSKB returns the server's peak resident set size in KiB.
func (s *server) peakRSSKB() int { return s.statusKB("VmHWM:") }

// fds returns the number of the server's open file descriptors.
func (s *server) fds() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid()))
	if err != nil {
		return -1
	}
	return len(ents)
}

// statusKB returns a field (such as "VmRSS:") of the server's
// /proc/PID/status in KiB.
func (s *server) statusKB(field string) int { return bench.StatusKB(s.pid(), field) }

// requireTool skips nothing: the suite's set-up installs the tools, so a
// missing one is a failure.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (make test installs it): %v", name, err)
	}
	return p
}

// process is a client process started by a test and stopped by its PID.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startProcess(t testing.TB, name string, args ...string) *process {
	t.Helper()
	requireTool(t, name)
	p := &process{cmd: exec.Command(name, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Stdin = nil
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, lastLines(p.out.String(), 30))
		}
	})
	return p
}

func (p *process) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// wait waits for the process to exit and returns its error.
func (p *process) wait(timeout time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// publishFFmpeg publishes a stream ffmpeg encodes itself (lavfi test
// source, libx264 + AAC) in real time for seconds.
func publishFFmpeg(t testing.TB, url string, size string, seconds int, extra ...string) *process {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=" + size + ":rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k"}
	args = append(args, extra...)
	args = append(args, "-f", "flv", url)
	return startProcess(t, "ffmpeg", args...)
}

// probe is what ffprobe reports about a URL or file.
type probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

func (p probe) stream(kind string) (codec string, w, h int, ok bool) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			return s.CodecName, s.Width, s.Height, true
		}
	}
	return "", 0, 0, false
}

// ffprobe runs ffprobe on target and decodes its stream list.
func ffprobe(t testing.TB, target string) (probe, error) {
	t.Helper()
	requireTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-v", "error", "-rw_timeout", "15000000",
		"-show_entries", "stream=codec_type,codec_name,width,height", "-of", "json", target)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return probe{}, fmt.Errorf("ffprobe %s: %v: %s", target, err, errOut.String())
	}
	var p probe
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		return probe{}, fmt.Errorf("ffprobe output: %v", err)
	}
	return p, nil
}

// expectServerClose reads from c until the server closes it; still open
// after 5 s fails the test with msg.
func expectServerClose(t testing.TB, c *bench.Client, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.ReadMessage(); err != nil {
			if strings.Contains(err.Error(), "timeout") {
				t.Fatal(msg)
			}
			return
		}
	}
}

// playClient plays url with the Go client, reading for at most timeout; the
// client closes when the test ends.
func playClient(t testing.TB, url string, timeout time.Duration) *bench.Client {
	t.Helper()
	c, err := bench.Dial(url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Play(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	return c
}
