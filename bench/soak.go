package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SoakConfig describes a soak: two origins of ours and an edge pulling from
// them, ffmpeg publishers that come and go, a population of players that
// join and leave at random, the first origin killed and restarted, and a
// hook server that is sometimes slow or down, for a long time.
type SoakConfig struct {
	Server string // our server binary, built with -tags pprof
	Video  string // FLV the publishers loop
	Dir    string // configs and logs

	Duration     time.Duration // the whole soak (default 30 min)
	Warmup       time.Duration // excluded from the slopes (default 2 min)
	Every        time.Duration // sampling interval (default 5 s)
	KillEvery    time.Duration // the first origin is SIGKILLed this often (default 4 min)
	RestartAfter time.Duration // and restarted this long after (default 5 s)

	Streams                int           // streams, each with its own publishers (default 3)
	PublishMin, PublishMax time.Duration // a publishing session lasts this long (default 60-120 s)
	PauseMin, PauseMax     time.Duration // then the stream is unpublished this long (default 3-15 s)

	Players          int           // players kept on the edge (default 300)
	JoinRate         float64       // most players started per second (default 20)
	LifeMin, LifeMax time.Duration // a player stays this long (default 10 s - 4 min)
	Mix              SoakMix       // how players behave

	HookPhases []HookPhase   // the hook server's cycle (default ok 60 s, slow 30 s, ok 60 s, down 20 s)
	HookDelay  time.Duration // a slow hook answers after this (default 2 s)
	MaxWait    time.Duration // target: longest wait for media of a live stream (default 3 s)
	Tolerance  SoakTolerance // what still counts as flat
	BasePort   int           // origin 1, origin 2, edge, hook, then pprof of each server (default 19480)
	Seed       uint64        // random schedule (0: from the clock)
	Progress   io.Writer     // progress lines and events as they happen (nil: none)
}

// soaker is a running soak: its configuration, random schedule and the
// events so far.
type soaker struct {
	cfg   SoakConfig
	start time.Time

	rngMu sync.Mutex
	rng   *rand.Rand

	eventsMu sync.Mutex
	events   []SoakEvent
}

// SoakMix is the share of each kind of player (the rest are normal Go
// players, which are the ones whose waits are measured).
type SoakMix struct {
	Reset    float64 // read normally, then leave with a TCP reset (SO_LINGER 0)
	Silent   float64 // play through a 4 KiB receive buffer and never read
	Rtmpdump float64 // rtmpdump processes
}

// SoakTolerance is the largest upward slope, per hour, that still counts
// as flat.
type SoakTolerance struct {
	RSSMBPerHour      float64 `json:"rss_mb_per_hour"`
	GoroutinesPerHour float64 `json:"goroutines_per_hour"`
	FDsPerHour        float64 `json:"fds_per_hour"`
}

// HookPhase is one phase of the hook server: "ok" answers at once, "slow"
// after HookDelay, "down" closes the listener (connections are refused).
type HookPhase struct {
	Mode string        `json:"mode"`
	For  time.Duration `json:"for"`
}

// ParseHookPhases parses "ok:60s,slow:30s,down:20s".
func ParseHookPhases(s string) ([]HookPhase, error) {
	var out []HookPhase
	for _, part := range strings.Split(s, ",") {
		mode, d, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("hook phase %q: want MODE:DURATION", part)
		}
		if mode != "ok" && mode != "slow" && mode != "down" {
			return nil, fmt.Errorf("hook phase %q: mode must be ok, slow or down", part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return nil, fmt.Errorf("hook phase %q: bad duration", part)
		}
		out = append(out, HookPhase{Mode: mode, For: dur})
	}
	return out, nil
}

func (cfg *SoakConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Duration, 30*time.Minute)
	def(&cfg.Warmup, 2*time.Minute)
	def(&cfg.Every, 5*time.Second)
	def(&cfg.KillEvery, 4*time.Minute)
	def(&cfg.RestartAfter, 5*time.Second)
	def(&cfg.PublishMin, time.Minute)
	def(&cfg.PublishMax, 2*time.Minute)
	def(&cfg.PauseMin, 3*time.Second)
	def(&cfg.PauseMax, 15*time.Second)
	def(&cfg.LifeMin, 10*time.Second)
	def(&cfg.LifeMax, 4*time.Minute)
	def(&cfg.HookDelay, 2*time.Second)
	def(&cfg.MaxWait, 3*time.Second)
	if cfg.Streams <= 0 {
		cfg.Streams = 3
	}
	if cfg.Players <= 0 {
		cfg.Players = 300
	}
	if cfg.JoinRate <= 0 {
		cfg.JoinRate = 20
	}
	if len(cfg.HookPhases) == 0 {
		cfg.HookPhases = []HookPhase{{"ok", time.Minute}, {"slow", 30 * time.Second}, {"ok", time.Minute}, {"down", 20 * time.Second}}
	}
	if cfg.Tolerance == (SoakTolerance{}) {
		cfg.Tolerance = SoakTolerance{RSSMBPerHour: 5, GoroutinesPerHour: 10, FDsPerHour: 30}
	}
	if cfg.BasePort <= 0 {
		cfg.BasePort = 19480
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
}

// between returns a random duration in [lo, hi].
func (s *soaker) between(lo, hi time.Duration) time.Duration {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

// float returns a random number in [0, 1).
func (s *soaker) float() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

// intN returns a random number in [0, n).
func (s *soaker) intN(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.IntN(n)
}

// SoakEvent is something the harness did (or saw) at T seconds.
type SoakEvent struct {
	T      float64 `json:"t"`
	Kind   string  `json:"kind"`
	Detail string  `json:"detail,omitempty"`
}

// event records an event and logs it.
func (s *soaker) event(kind, detail string) {
	t := s.since(time.Now())
	s.eventsMu.Lock()
	s.events = append(s.events, SoakEvent{T: t, Kind: kind, Detail: detail})
	s.eventsMu.Unlock()
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, "%7.1fs event: %s %s\n", t, kind, detail)
	}
}

// since is t in seconds since the soak started.
func (s *soaker) since(t time.Time) float64 { return t.Sub(s.start).Seconds() }

func (s *soaker) eventList() []SoakEvent {
	s.eventsMu.Lock()
	defer s.eventsMu.Unlock()
	return append([]SoakEvent(nil), s.events...)
}

// sleepCtx waits d or until ctx is done; false when ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// soakServer is one server process of ours, which may be killed and
// restarted (a new PID each time).
type soakServer struct {
	name, addr, pprof string
	port              int
	cfgPath, logPath  string
	bin               string

	mu   sync.Mutex
	proc *Proc
	pids []int
}

func (s *soakServer) start() error {
	p, err := StartProc(s.bin, s.logPath, "-c", s.cfgPath, "-pprof", s.pprof)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if err := errors.Join(WaitPort(s.addr, 10*time.Second), WaitPort(s.pprof, 10*time.Second)); err != nil {
		p.Stop()
		return fmt.Errorf("%s: %w (see %s)", s.name, err, s.logPath)
	}
	s.mu.Lock()
	s.proc = p
	s.pids = append(s.pids, p.Cmd.Process.Pid)
	s.mu.Unlock()
	return nil
}

// current returns the running process (nil: none).
func (s *soakServer) current() *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.Exited() {
		return nil
	}
	return s.proc
}

// kill sends SIGKILL and waits (at most 5 s) for the process to end.
func (s *soakServer) kill() error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s: not running", s.name)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("%s: kill %d: %w", s.name, p.Cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s: pid %d still there 5 s after SIGKILL", s.name, p.Cmd.Process.Pid)
	}
}

func (s *soakServer) stop() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	p.Stop()
}

// goroutines reads the goroutine count from the server's pprof endpoint
// (first line "goroutine profile: total N"); -1 when it cannot.
func goroutines(client *http.Client, addr string) int {
	resp, err := client.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	if err != nil && line == "" {
		return -1
	}
	n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return -1
	}
	v, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return v
}

// soakYAML writes a server's config.
func soakYAML(path, listen, vhost string) error {
	y := fmt.Sprintf("listen: [%q]\nlog: {level: info}\n", listen)
	if vhost != "" {
		y += "vhosts:\n  __defaultVhost__:\n" + vhost
	}
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		return fmt.Errorf("soak: config %s: %w", path, err)
	}
	return nil
}

// Soak runs the soak described by cfg and returns what it measured. Every
// process it starts is stopped by its PID before it returns; every loop
// ends with ctx or cfg.Duration.
func Soak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	cfg.defaults()
	if cfg.Server == "" || cfg.Video == "" || cfg.Dir == "" {
		return nil, errors.New("soak: server, video and dir are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	bp := cfg.BasePort
	ports := []int{bp, bp + 1, bp + 2, bp + 3, bp + 4, bp + 5, bp + 6}
	if err := PortsFree(ports...); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	srv := func(name string, port, pprofPort int) *soakServer {
		return &soakServer{name: name, addr: addr(port), port: port, pprof: addr(pprofPort), bin: cfg.Server,
			cfgPath: filepath.Join(cfg.Dir, name+".yaml"), logPath: filepath.Join(cfg.Dir, name+".log")}
	}
	o1, o2, ed := srv("origin1", bp, bp+4), srv("origin2", bp+1, bp+5), srv("edge", bp+2, bp+6)
	hookAddr := addr(bp + 3)
	edgeVhost := fmt.Sprintf("    cluster: {mode: remote, origin: [%q, %q]}\n    hooks: {on_connect: %q, on_play: %q}\n",
		o1.addr, o2.addr, "http://"+hookAddr+"/on_connect", "http://"+hookAddr+"/on_play")
	if err := errors.Join(soakYAML(o1.cfgPath, o1.addr, ""), soakYAML(o2.cfgPath, o2.addr, ""), soakYAML(ed.cfgPath, ed.addr, edgeVhost)); err != nil {
		return nil, err
	}

	// The hook server first: the edge calls it from its first player on.
	hook := newSoakHook(hookAddr, cfg.HookDelay)
	if err := hook.up(); err != nil {
		return nil, fmt.Errorf("soak: hook server: %w", err)
	}
	defer hook.close()
	for _, s := range []*soakServer{o1, o2, ed} {
		if err := s.start(); err != nil {
			o1.stop()
			o2.stop()
			ed.stop()
			return nil, fmt.Errorf("soak: %w", err)
		}
	}
	defer func() { ed.stop(); o2.stop(); o1.stop() }()
	httpc := &http.Client{Timeout: 2 * time.Second}
	for _, s := range []*soakServer{o1, o2, ed} {
		if goroutines(httpc, s.pprof) < 0 {
			return nil, fmt.Errorf("soak: %s: no goroutine count from http://%s/debug/pprof/goroutine: build the server with -tags pprof", s.name, s.pprof)
		}
	}
	edgePID := ed.current().Cmd.Process.Pid

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	sk := &soaker{cfg: cfg, start: time.Now(), rng: rand.New(rand.NewPCG(cfg.Seed, 0x50a4))}
	sk.event("start", fmt.Sprintf("edge pid %d, origin1 pid %d, origin2 pid %d, seed %d", edgePID, o1.current().Cmd.Process.Pid, o2.current().Cmd.Process.Pid, cfg.Seed))

	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred calls run last first)
	defer cancel()

	// Publishers: every stream is published to both origins (see
	// soakStream), on and off at random.
	pop := newSoakPopulation(sk, "rtmp://"+ed.addr+"/live/", hook)
	streams := make([]*soakStream, cfg.Streams)
	for i := range streams {
		streams[i] = &soakStream{s: sk, name: fmt.Sprintf("soak%d", i), origins: [2]*soakServer{o1, o2}, tracker: &pop.tracker}
	}
	pop.streams = streams
	for _, st := range streams {
		wg.Add(1)
		go func() { defer wg.Done(); st.run(ctx) }()
	}
	// Wait (bounded) for the streams to be live before the players come.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		live := 0
		for _, st := range streams {
			if st.liveAt(time.Now()) {
				live++
			}
		}
		if live == len(streams) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	wg.Add(1)
	go func() { defer wg.Done(); hook.cycle(ctx, sk) }()

	wg.Add(1)
	go func() { defer wg.Done(); pop.run(ctx) }()

	wg.Add(1)
	go func() { defer wg.Done(); sk.killLoop(ctx, o1, ed) }()

	samples := sk.sampleLoop(ctx, httpc, ed, o1, o2, pop, streams, hook)
	cancel()
	wg.Wait()

	res := &SoakResult{Seed: cfg.Seed, Duration: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), EveryS: cfg.Every.Seconds(),
		MaxWaitTargetMs: float64(cfg.MaxWait.Milliseconds()), Tolerance: cfg.Tolerance, Samples: samples, HookPhases: cfg.HookPhases,
		Players: cfg.Players, Streams: cfg.Streams, KillEveryS: cfg.KillEvery.Seconds(), RestartAfterS: cfg.RestartAfter.Seconds()}
	res.Seconds = sk.since(time.Now())
	res.Interrupted = res.Seconds < cfg.Duration.Seconds()-cfg.Every.Seconds()
	// Is the edge we started still the one running?
	res.EdgePIDStart = edgePID
	if p := ed.current(); p != nil {
		res.EdgePIDEnd = p.Cmd.Process.Pid
		res.EdgeAlive = (&ProcWatch{PID: res.EdgePIDEnd}).Alive()
	}
	res.Origin1PIDs = append([]int(nil), o1.pids...)
	res.Origin2Alive = o2.current() != nil
	pop.result(res)
	for _, st := range streams {
		res.PublisherStarts += st.starts
		res.PublisherExits += st.exits
	}
	res.Hook = hook.result()
	res.Events = sk.eventList()
	for _, s := range []*soakServer{ed, o1, o2} {
		res.Logs = append(res.Logs, scanLog(s.name, s.logPath))
	}
	res.summarize()
	return res, nil
}

// killLoop SIGKILLs the first origin every KillEvery and restarts it
// RestartAfter later, noting how many of the edge's upstreams it had.
func (s *soaker) killLoop(ctx context.Context, o1, ed *soakServer) {
	cfg := &s.cfg
	for n := 1; ; n++ {
		at := s.start.Add(time.Duration(n) * cfg.KillEvery)
		if at.Add(cfg.RestartAfter).After(s.start.Add(cfg.Duration)) || !sleepCtx(ctx, time.Until(at)) {
			return
		}
		ups := -1
		if p := ed.current(); p != nil {
			ups = countConns(p.Cmd.Process.Pid, o1.port)
		}
		pid := 0
		if p := o1.current(); p != nil {
			pid = p.Cmd.Process.Pid
		}
		if err := o1.kill(); err != nil {
			s.event("kill failed", err.Error())
			if o1.current() == nil { // a failed restart: try again
				if err := o1.start(); err != nil {
					s.event("restart failed", err.Error())
				}
			}
			continue
		}
		s.event("kill origin1", fmt.Sprintf("SIGKILL pid %d; the edge had %d upstreams on it", pid, ups))
		if !sleepCtx(ctx, cfg.RestartAfter) {
			return
		}
		if err := o1.start(); err != nil {
			s.event("restart failed", err.Error())
			continue
		}
		s.event("restart origin1", fmt.Sprintf("pid %d", o1.current().Cmd.Process.Pid))
	}
}

// LogSummary counts what a server logged: errors, warnings by message,
// panics.
type LogSummary struct {
	Server   string         `json:"server"`
	Lines    int            `json:"lines"`
	Errors   int            `json:"errors"`
	Panics   int            `json:"panics"`
	Warnings map[string]int `json:"warnings,omitempty"` // by msg
	Examples []string       `json:"error_examples,omitempty"`
}

func scanLog(name, path string) LogSummary {
	ls := LogSummary{Server: name, Warnings: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return ls
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ls.Lines++
		switch {
		case strings.Contains(line, "panic") || strings.Contains(line, "fatal error"):
			ls.Panics++
			if len(ls.Examples) < 5 {
				ls.Examples = append(ls.Examples, line)
			}
		case strings.Contains(line, "level=ERROR"):
			ls.Errors++
			if len(ls.Examples) < 5 {
				ls.Examples = append(ls.Examples, line)
			}
		case strings.Contains(line, "level=WARN"):
			ls.Warnings[logMsg(line)]++
		}
	}
	return ls
}

// logMsg returns the msg field of a slog text line.
func logMsg(line string) string {
	_, rest, ok := strings.Cut(line, " msg=")
	if !ok {
		return "?"
	}
	if strings.HasPrefix(rest, `"`) {
		if s, err := strconv.QuotedPrefix(rest); err == nil {
			u, _ := strconv.Unquote(s)
			return u
		}
	}
	msg, _, _ := strings.Cut(rest, " ")
	return msg
}
