// Package loop runs the server on gnet event loops: it accepts RTMP and
// HTTP(-FLV, WebSocket-FLV) connections, keeps their per-connection state,
// reads chunks or request heads, answers commands and writes media to
// players with one writer per event loop and stream.
package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/cluster"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/hook"
	"github.com/rtmpedge/rtmpedge/pool"
)

// tickInterval is how often timeouts are checked.
const tickInterval = 250 * time.Millisecond

// timeoutChecker is a connection the ticker watches.
type timeoutChecker interface {
	checkTimeouts(now time.Time)
}

// Server is an RTMP server. Create it with New and start it with Run.
type Server struct {
	gnet.BuiltinEventEngine

	cfg       atomic.Pointer[conf.Config] // swapped whole by Reload; read it with config()
	log       *slog.Logger
	hubs      *edge.Registry
	blocks    *pool.Blocks // the streams' media blocks, recycled (read by the loops' flushes)
	engine    gnet.Engine
	running   chan struct{} // closed by the first tick: the loops are registered and running
	runningMu sync.Once

	lns          listeners    // open listening addresses
	acceptErrors atomic.Int64 // accept or enroll failures (out of descriptors, say)

	nextID   atomic.Uint64
	conns    atomic.Int64
	sessions sync.Map // timeoutChecker (sessions and outbound connections) -> struct{}, for the ticker

	groupsMu     sync.Mutex
	groups       map[groupKey]*group
	loopIdx      map[gnet.EventLoop]int // event loops numbered in the order their first group came
	loopStatesMu sync.Mutex
	loopStates   map[gnet.EventLoop]*loopState

	loops     int // event loops
	notifier  *hook.Notifier
	paceBurst atomic.Int64 // bytes one loop's slot of paced writes may carry
	egress    atomic.Int64 // egress estimate, bits per second (updateBusy)
	busy      atomic.Bool  // egress at capacity.busy_load of the link: merged windows halved
	lastStall atomic.Int64 // unix ns of the last player write the box's own queue stalled (sendStalled)

	inflight       atomic.Int64 // bytes held by client connections' chunk readers (max_inflight_bytes)
	reclaimMu      sync.Mutex   // one reclaim scan at a time
	reclaimScratch []holder     // guarded by reclaimMu

	tele         Telemetry
	started      time.Time
	kicks        atomic.Int64 // clients closed through the API
	players      atomic.Int64 // playing sessions, all streams
	refusedPlays atomic.Int64 // plays refused or redirected for capacity

	// LogLevel, when set before Run, is moved to log.level by reloads.
	LogLevel *slog.LevelVar

	reloadMu       sync.Mutex // one reload at a time
	reloadHooks    []func(old, cfg *conf.Config) error
	reloads        atomic.Int64
	reloadFailures atomic.Int64
	lastReload     atomic.Int64                    // unix nanoseconds
	loc            atomic.Pointer[cluster.Locator] // the stream registry (nil: none)
	cluster        clusterCounters

	serverID  string
	ingestMu  sync.Mutex
	ingesters map[*edge.Hub]*ingester
	origins   map[string]*edge.Origins // per vhost name
}

// New returns a server for cfg that logs to log.
func New(cfg *conf.Config, log *slog.Logger) *Server {
	loops := runtime.GOMAXPROCS(0)
	s := &Server{
		log:        log,
		hubs:       edge.NewRegistry(),
		blocks:     pool.NewBlocks(0),
		running:    make(chan struct{}),
		groups:     make(map[groupKey]*group),
		loopIdx:    make(map[gnet.EventLoop]int),
		loops:      loops,
		notifier:   hook.NewNotifier(notifyQueue, notifyWorkers, log),
		loopStates: make(map[gnet.EventLoop]*loopState),

		serverID:  fmt.Sprintf("%x", time.Now().UnixNano()),
		ingesters: make(map[*edge.Hub]*ingester),
		origins:   make(map[string]*edge.Origins),
	}
	s.started = time.Now()
	s.cfg.Store(cfg)
	s.paceBurst.Store(paceBurst(cfg, loops))
	return s
}

// config returns the configuration in force. A caller that needs several
// settings to agree reads it once and keeps the pointer.
func (s *Server) config() *conf.Config { return s.cfg.Load() }

// Run serves until ctx is cancelled, then closes every connection and
// returns. It returns an error if the listeners cannot be opened.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.config()
	if err := s.openRegistry(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		// The server accepts on its own goroutines (listen.go) and enrolls
		// connections on the loops. gnet wants a listener of its own to
		// start: a loopback port the system picks, whose connections
		// OnOpen closes (no file, unlike a unix socket).
		done <- gnet.Rotate(s, []string{"tcp://127.0.0.1:0"},
			gnet.WithNumEventLoop(s.loops),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithTicker(true),
			gnet.WithLogger(gnetLogger{s.log}),
		)
	}()
	// gnet calls OnBoot before it registers its loops; the first tick
	// comes after, and only then may connections be enrolled.
	select {
	case err := <-done:
		s.closeRegistry(context.Background())
		return fmt.Errorf("start event loops: %w", err)
	case <-s.running:
	}
	if _, _, err := s.reconcileListeners(cfg.Listen, cfg.HTTP.Listen); err != nil {
		_ = s.stopEngine(done)
		s.closeRegistry(context.Background())
		return err
	}
	s.log.Info("rtmp server listening", "listen", cfg.Listen, "http_listen", cfg.HTTP.Listen, "event_loops", s.loops,
		"config", cfg.Source)
	select {
	case err := <-done:
		s.closeListeners()
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "connections", s.conns.Load())
	s.closeListeners()
	if err := s.stopEngine(done); err != nil {
		return err
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.closeRegistry(stopCtx)  // release the claims of the publishers just closed
	s.notifier.Close(stopCtx) // post the notifications of the connections just closed
	s.log.Info("stopped")
	return nil
}

// stopEngine stops the event loops, closing every connection, and waits
// for Rotate to return on done.
func (s *Server) stopEngine(done <-chan error) error {
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.engine.Stop(stopCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop: %w", err)
	}
	<-done
	return nil
}

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.engine = eng
	return gnet.None
}

// OnOpen sets up a connection's state, refusing it over max_connections.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if o, ok := c.Context().(*outbound); ok {
		return o.onOpen(c)
	}
	l, ok := c.Context().(*listener)
	if !ok {
		return nil, gnet.Close // from gnet's placeholder listener: nobody's client
	}
	proto := l.proto
	n := s.conns.Add(1)
	remote := c.RemoteAddr().String()
	if n > int64(s.config().MaxConnections) {
		s.conns.Add(-1)
		s.log.Warn("connection refused: max_connections reached", "client", remote, "max_connections", s.config().MaxConnections)
		return nil, gnet.Close
	}
	ss := newSession(s, c, remote)
	if proto == protoHTTP {
		ss.hs, ss.http = nil, &httpState{}
	}
	c.SetContext(ss)
	s.sessions.Store(ss, struct{}{})
	ss.log.Info("connection open", "local", c.LocalAddr().String())
	return nil, gnet.None
}

// OnClose releases what the connection held and logs its summary.
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	if o, ok := c.Context().(*outbound); ok {
		o.onClose(err)
		return gnet.None
	}
	ss, ok := c.Context().(*session)
	if !ok {
		return gnet.None
	}
	s.conns.Add(-1)
	s.forget(ss)
	ss.close(err)
	return gnet.None
}

// OnTraffic parses what arrived.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	if o, ok := c.Context().(*outbound); ok {
		return o.onTraffic(c)
	}
	ss := c.Context().(*session)
	err := consumeConn(c, &ss.pend, ss.consume)
	if err != nil {
		ss.protocolErr = true
		ss.setReason(err.Error())
		return gnet.Close
	}
	if ss.closing {
		return gnet.Close
	}
	return gnet.None
}

// OnTick enforces the timeouts of every connection and re-estimates the
// egress (updateBusy).
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	s.runningMu.Do(func() { close(s.running) })
	now := time.Now()
	s.updateBusy(now)
	s.sessions.Range(func(k, _ any) bool {
		k.(timeoutChecker).checkTimeouts(now)
		return true
	})
	return tickInterval, gnet.None
}

// gnetLogger routes gnet's own logging into slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }

// loopIndex numbers event loops (0, 1, ...) in the order they are first
// asked about.
func (s *Server) loopIndex(el gnet.EventLoop) int {
	s.groupsMu.Lock()
	defer s.groupsMu.Unlock()
	i, ok := s.loopIdx[el]
	if !ok {
		i = len(s.loopIdx)
		s.loopIdx[el] = i
	}
	return i
}

// Notification hooks: a queue this long, posted by this many goroutines.
const (
	notifyQueue   = 4096
	notifyWorkers = 4
)

// paceBurst returns the bytes one loop's slot of paced writes may carry:
// pace_burst of the link, shared by the loops.
func paceBurst(cfg *conf.Config, loops int) int64 {
	return int64(cfg.Capacity.Link) / 8 * cfg.Capacity.PaceBurst.Microseconds() / 1_000_000 / int64(max(loops, 1))
}
