package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/viper"
	"golang.org/x/sys/unix"
)

// edgeAddr is the address the set-up's edge listens on.
func (e Env) edgeAddr() string { return e.edgeListen(e.EdgePort) }

// edgeListen is the address of port on the set-up's edge host.
func (e Env) edgeListen(port int) string {
	host := e.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// start is StartProc in the env's network namespace. `ip netns exec` execs
// the command, so the Proc's PID is the command's own.
func (e Env) start(name, logPath string, args ...string) (*Proc, error) {
	if e.Netns == "" {
		return StartProc(name, logPath, args...)
	}
	return StartProc("ip", logPath, append([]string{"netns", "exec", e.Netns, name}, args...)...)
}

// waitPort is WaitPort in the env's network namespace.
func (e Env) waitPort(addr string, timeout time.Duration) error {
	return InNetns(e.Netns, func() error { return WaitPort(addr, timeout) })
}

// mergeYAML returns base with extra merged into it (maps merged key by key,
// everything else replaced). Keys come out lowercased, as the server reads
// them anyway.
func mergeYAML(base, extra string) (string, error) {
	if strings.TrimSpace(extra) == "" {
		return base, nil
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(strings.NewReader(base)); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	if err := v.MergeConfig(strings.NewReader(extra)); err != nil {
		return "", fmt.Errorf("extra config %q: %w", extra, err)
	}
	var b bytes.Buffer
	if err := v.WriteConfigTo(&b); err != nil {
		return "", fmt.Errorf("merged config: %w", err)
	}
	return b.String(), nil
}

// InNetns runs f on an OS thread switched into the named network namespace
// (ns empty: here). Sockets f opens in its own goroutine (net.Dial,
// net.Listen, Player.Run) belong to that namespace; goroutines f starts do
// not. The thread is not reused: it ends with f.
func InNetns(ns string, f func() error) error {
	if ns == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the runtime ends the thread with the goroutine
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Shape is a tbf shaping of a link: rate, bucket size and the longest a
// packet may queue (which sets the queue's size), in tc's units.
type Shape struct {
	Rate, Burst, Latency string
	// ServerSysctls are KEY=VALUE settings of the server namespace (its
	// TCP stack is the servers' own), e.g.
	// net.ipv4.tcp_slow_start_after_idle=0.
	ServerSysctls []string
}

// Link is two network namespaces joined by a veth pair: the servers run in
// Server and listen on ServerIP, the players run in Client. The server
// side's egress (what the players receive) is shaped with tbf. Nothing is
// routed out of the pair.
type Link struct {
	Server, Client       string // namespace names
	ServerDev, ClientDev string // the veth ends
	ServerIP, ClientIP   string
	Shape                Shape
}

// LinkPrefix starts the names of the namespaces NewLink creates.
const LinkPrefix = "rb-"

var linkName = regexp.MustCompile(`^` + LinkPrefix + `(srv|cli)-(\d+)$`)

// NewLink creates the namespaces rb-srv-ID and rb-cli-ID (ID: the caller's
// PID, which CleanStaleLinks relies on) joined by a veth pair in
// 198.18.0.0/30 (RFC 2544's benchmarking range), with lo up in both and the
// server side shaped. On error it removes what it made.
func NewLink(id int, sh Shape) (l *Link, err error) {
	l = &Link{
		Server: fmt.Sprintf("%ssrv-%d", LinkPrefix, id), Client: fmt.Sprintf("%scli-%d", LinkPrefix, id),
		ServerDev: fmt.Sprintf("rbs-%d", id), ClientDev: fmt.Sprintf("rbc-%d", id),
		ServerIP: "198.18.0.1", ClientIP: "198.18.0.2", Shape: sh,
	}
	steps := [][]string{
		{"ip", "netns", "add", l.Server},
		{"ip", "netns", "add", l.Client},
		// Created inside the namespaces: no veth is ever left in this one.
		{"ip", "link", "add", l.ServerDev, "netns", l.Server, "type", "veth", "peer", "name", l.ClientDev, "netns", l.Client},
		{"ip", "-n", l.Server, "addr", "add", l.ServerIP + "/30", "dev", l.ServerDev},
		{"ip", "-n", l.Client, "addr", "add", l.ClientIP + "/30", "dev", l.ClientDev},
		{"ip", "-n", l.Server, "link", "set", "lo", "up"},
		{"ip", "-n", l.Client, "link", "set", "lo", "up"},
		{"ip", "-n", l.Server, "link", "set", l.ServerDev, "up"},
		{"ip", "-n", l.Client, "link", "set", l.ClientDev, "up"},
		{"ip", "netns", "exec", l.Server, "tc", "qdisc", "add", "dev", l.ServerDev, "root", "tbf",
			"rate", sh.Rate, "burst", sh.Burst, "latency", sh.Latency},
	}
	for _, kv := range sh.ServerSysctls {
		steps = append(steps, []string{"ip", "netns", "exec", l.Server, "sysctl", "-q", "-w", kv})
	}
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	for _, s := range steps {
		if _, err := run(s[0], s[1:]...); err != nil {
			return l, fmt.Errorf("link: %w", err)
		}
	}
	return l, nil
}

// Close deletes both namespaces (the veth pair and its qdisc go with them).
func (l *Link) Close() error {
	var errs []error
	for _, ns := range []string{l.Server, l.Client} {
		if nsExists(ns) {
			if _, err := run("ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Qdisc reads the shaped side's root qdisc counters.
func (l *Link) Qdisc() (QdiscStats, error) {
	out, err := run("ip", "netns", "exec", l.Server, "tc", "-s", "qdisc", "show", "dev", l.ServerDev)
	if err != nil {
		return QdiscStats{}, err
	}
	return ParseQdisc(out)
}

// CleanStaleLinks deletes the namespaces a harness that is gone left behind
// (rb-srv-PID and rb-cli-PID whose PID is not running), killing by PID the
// processes still in them first. It returns the names it deleted.
func CleanStaleLinks() ([]string, error) {
	out, err := run("ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := linkName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[2])
		if pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its harness still runs
		}
		if pids, err := run("ip", "netns", "pids", f[0]); err == nil {
			for _, s := range strings.Fields(pids) {
				if p, err := strconv.Atoi(s); err == nil && p > 1 {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
		if _, err := run("ip", "netns", "del", f[0]); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, f[0])
	}
	return removed, errors.Join(errs...)
}

func nsExists(ns string) bool {
	_, err := os.Stat("/var/run/netns/" + ns)
	return err == nil
}

// run runs a short command (10 s at most) and returns its output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// QdiscStats are a qdisc's counters as `tc -s qdisc show` prints them.
type QdiscStats struct {
	Kind           string `json:"kind"`
	SentBytes      int64  `json:"sent_bytes"` // frames as the device sends them, headers included
	SentPackets    int64  `json:"sent_packets"`
	Dropped        int64  `json:"dropped"`
	Overlimits     int64  `json:"overlimits"` // times a packet had to wait for tokens
	Requeues       int64  `json:"requeues"`
	BacklogBytes   int64  `json:"backlog_bytes"`
	BacklogPackets int64  `json:"backlog_packets"`
}

var (
	qdiscSent    = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+) requeues (\d+)\)`)
	qdiscBacklog = regexp.MustCompile(`backlog (\d+(?:\.\d+)?)([KMG]?)b (\d+)p`)
)

// ParseQdisc reads the root qdisc's counters (the first qdisc when none is
// marked root) from `tc -s qdisc show dev DEV`'s output.
func ParseQdisc(out string) (QdiscStats, error) {
	var blocks [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "qdisc ") {
			blocks = append(blocks, nil)
		}
		if len(blocks) > 0 {
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], line)
		}
	}
	if len(blocks) == 0 {
		return QdiscStats{}, fmt.Errorf("tc: no qdisc in %q", out)
	}
	block := blocks[0]
	for _, b := range blocks {
		if strings.Contains(" "+b[0]+" ", " root ") {
			block = b
			break
		}
	}
	var st QdiscStats
	if f := strings.Fields(block[0]); len(f) > 1 {
		st.Kind = f[1]
	}
	text := strings.Join(block, "\n")
	m := qdiscSent.FindStringSubmatch(text)
	if m == nil {
		return st, fmt.Errorf("tc: no counters in %q", text)
	}
	for i, dst := range []*int64{&st.SentBytes, &st.SentPackets, &st.Dropped, &st.Overlimits, &st.Requeues} {
		*dst, _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	if m := qdiscBacklog.FindStringSubmatch(text); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		st.BacklogBytes = int64(v * float64(map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m[2]]))
		st.BacklogPackets, _ = strconv.ParseInt(m[3], 10, 64)
	}
	return st, nil
}

// LinkSample is the shaped qdisc's counters at a moment.
type LinkSample struct {
	At    time.Time  `json:"at"`
	Stats QdiscStats `json:"stats"`
}

// linkAt interpolates the counters at t between the samples around it.
func linkAt(samples []LinkSample, t time.Time) (sent, dropped, overlimits float64, ok bool) {
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if t.Before(a.At) || t.After(b.At) {
			continue
		}
		f := 0.0
		if span := b.At.Sub(a.At); span > 0 {
			f = float64(t.Sub(a.At)) / float64(span)
		}
		lerp := func(x, y int64) float64 { return float64(x) + f*float64(y-x) }
		return lerp(a.Stats.SentBytes, b.Stats.SentBytes), lerp(a.Stats.Dropped, b.Stats.Dropped),
			lerp(a.Stats.Overlimits, b.Stats.Overlimits), true
	}
	return 0, 0, 0, false
}

// GigabitConfig is a player load through a Link.
type GigabitConfig struct {
	Link     *Link
	Bench    string // this harness's binary: `Bench play` runs the players in the client namespace
	Players  int
	Ramp     float64       // players started per second
	Duration time.Duration // measurement window after the last player started
	Progress io.Writer     // progress lines (nil: none)
}

// GigabitResult is what the players measured plus the shaped link's
// counters over the same window.
type GigabitResult struct {
	Result
	LinkBytes      int64        `json:"link_bytes"` // sent by the server side's qdisc in the window (frames, headers included)
	LinkMbps       float64      `json:"link_mbps"`
	LinkDrops      int64        `json:"link_drops"`      // packets the qdisc dropped in the window
	LinkOverlimits int64        `json:"link_overlimits"` // times packets waited for tokens in the window
	LinkBacklogMax int64        `json:"link_backlog_max_bytes"`
	LinkTimeline   []Sample     `json:"link_timeline"` // the link's Mbit/s, T on the players' clock (Result.Start)
	Link           []LinkSample `json:"link_samples"`
}

// RunGigabit starts the set-up k (whose Env runs it in cfg.Link's server
// namespace), waits until the stream plays through the link, runs the
// players in the client namespace as a `play` subprocess measuring the
// edge's PID, samples the link's qdisc every second, and stops everything.
// Logs, the players' JSON and the configs go to dir.
func RunGigabit(ctx context.Context, k Kind, dir string, cfg GigabitConfig) (GigabitResult, error) {
	l := cfg.Link
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return GigabitResult{}, err
	}
	// Something still listening in the namespace would take the place of
	// the set-up under test.
	if err := InNetns(l.Server, func() error {
		for _, p := range k.Ports {
			for _, h := range []string{"127.0.0.1", l.ServerIP} {
				addr := net.JoinHostPort(h, strconv.Itoa(p))
				if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
					c.Close()
					return fmt.Errorf("%s is in use in %s (a leftover server?)", addr, l.Server)
				}
			}
		}
		return nil
	}); err != nil {
		return GigabitResult{}, fmt.Errorf("%s: %w", k.Name, err)
	}
	url, _, watch, stop, err := k.Start(dir)
	if err != nil {
		return GigabitResult{}, fmt.Errorf("%s: %w%s", k.Name, err, logTails(dir))
	}
	defer stop()

	// Wait until the stream plays through the edge, from the players' side.
	probe := &Player{URL: url}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	go func() { _ = InNetns(l.Client, func() error { probe.Run(pctx); return nil }) }()
	for probe.FirstKey.Load() == 0 && pctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if probe.FirstKey.Load() == 0 {
		if err := ctx.Err(); err != nil {
			return GigabitResult{}, err
		}
		return GigabitResult{}, fmt.Errorf("%s: the stream never played through the edge (%s)", k.Name, url)
	}
	time.Sleep(500 * time.Millisecond)

	jsonPath := filepath.Join(dir, "players.json")
	logPath := filepath.Join(dir, "players.log")
	_ = os.Remove(jsonPath)
	args := []string{"netns", "exec", l.Client, cfg.Bench, "play", "-url", url,
		"-n", strconv.Itoa(cfg.Players), "-ramp", fmt.Sprint(cfg.Ramp), "-d", cfg.Duration.String(),
		"-interval", "1s", "-json", jsonPath}
	if watch != nil {
		args = append(args, "-pid", strconv.Itoa(watch.PID), "-upstream-port", strconv.Itoa(watch.UpstreamPort))
	}
	var res GigabitResult
	sample := func() {
		st, err := l.Qdisc()
		if err != nil {
			return
		}
		res.Link = append(res.Link, LinkSample{At: time.Now(), Stats: st})
		res.LinkBacklogMax = max(res.LinkBacklogMax, st.BacklogBytes)
	}
	sample()
	players, err := StartProc("ip", logPath, args...)
	if err != nil {
		return GigabitResult{}, fmt.Errorf("%s: players: %w", k.Name, err)
	}
	defer players.Stop()
	ramp := time.Duration(0)
	if cfg.Ramp > 0 {
		ramp = time.Duration(float64(cfg.Players) / cfg.Ramp * float64(time.Second))
	}
	deadline := time.After(ramp + cfg.Duration + 90*time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	shown := ""
wait:
	for {
		select {
		case <-ctx.Done():
			return GigabitResult{}, ctx.Err()
		case <-deadline:
			return GigabitResult{}, fmt.Errorf("%s: the players did not finish in time (see %s)", k.Name, logPath)
		case <-players.done:
			break wait
		case <-tick.C:
			sample()
			// The players' latest progress line, once, with the link's
			// rate since the previous sample.
			if line := lastLine(logPath); cfg.Progress != nil && len(res.Link) > 1 && line != "" && line != shown {
				shown = line
				a, b := res.Link[len(res.Link)-2], res.Link[len(res.Link)-1]
				mbps := float64(b.Stats.SentBytes-a.Stats.SentBytes) * 8 / 1e6 / b.At.Sub(a.At).Seconds()
				fmt.Fprintf(cfg.Progress, "%s | link %.0f Mbit/s backlog %.0f kB drops %d\n", line, mbps,
					float64(b.Stats.BacklogBytes)/1e3, b.Stats.Dropped-res.Link[0].Stats.Dropped)
			}
		}
	}
	sample()
	if code := players.Cmd.ProcessState.ExitCode(); code != 0 {
		return GigabitResult{}, fmt.Errorf("%s: players exited with %d: %s", k.Name, code, lastLine(logPath))
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return GigabitResult{}, fmt.Errorf("%s: players' result: %w", k.Name, err)
	}
	if err := json.Unmarshal(b, &res.Result); err != nil {
		return GigabitResult{}, fmt.Errorf("%s: players' result %s: %w", k.Name, jsonPath, err)
	}
	res.Name = k.Name
	from := res.Start.Add(time.Duration(res.WindowFrom * float64(time.Second)))
	to := from.Add(time.Duration(res.Seconds * float64(time.Second)))
	s0, d0, o0, ok0 := linkAt(res.Link, from)
	s1, d1, o1, ok1 := linkAt(res.Link, to)
	if ok0 && ok1 && res.Seconds > 0 {
		res.LinkBytes = int64(s1 - s0)
		res.LinkMbps = (s1 - s0) * 8 / 1e6 / res.Seconds
		res.LinkDrops, res.LinkOverlimits = int64(d1-d0), int64(o1-o0)
	}
	for i := 1; i < len(res.Link); i++ {
		a, b := res.Link[i-1], res.Link[i]
		res.LinkTimeline = append(res.LinkTimeline, Sample{
			T:    b.At.Sub(res.Start).Seconds(),
			Mbps: float64(b.Stats.SentBytes-a.Stats.SentBytes) * 8 / 1e6 / b.At.Sub(a.At).Seconds(),
		})
	}
	return res, nil
}

// logTails is the last line of each non-empty log in dir, for an error
// message.
func logTails(dir string) string {
	var b strings.Builder
	for _, pat := range []string{"*.log", "*.stderr", "*/*.log"} {
		files, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range files {
			if line := lastLine(f); line != "" {
				fmt.Fprintf(&b, "\n    %s: %s", f, line)
			}
		}
	}
	return b.String()
}

// lastLine is the last non-empty line of a (small) log file.
func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
