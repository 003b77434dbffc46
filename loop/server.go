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
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/hook"
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

	cfg    atomic.Pointer[conf.Config] // swapped whole by Reload; read it with config()
	log    *slog.Logger
	hubs   *edge.Registry
	engine gnet.Engine
	booted chan struct{}

	nextID   atomic.Uint64
	conns    atomic.Int64
	sessions sync.Map // timeoutChecker (sessions and outbound connections) -> struct{}, for the ticker

	groupsMu     sync.Mutex
	groups       map[groupKey]*group
	loopIdx      map[gnet.EventLoop]int // event loops numbered in the order their first group came
	loopStatesMu sync.Mutex
	loopStates   map[gnet.EventLoop]*loopState

	httpPorts map[int]bool // ports of the HTTP listeners (config validation keeps them apart from RTMP's)
	loops     int          // event loops
	notifier  *hook.Notifier
	paceBurst int64 // bytes one loop's slot of paced writes may carry

	inflight       atomic.Int64 // bytes held by client connections' chunk readers (max_inflight_bytes)
	reclaimMu      sync.Mutex   // one reclaim scan at a time
	reclaimScratch []holder     // guarded by reclaimMu

	players      atomic.Int64 // playing sessions, all streams
	refusedPlays atomic.Int64 // plays refused or redirected for capacity

	serverID  string
	ingestMu  sync.Mutex
	ingesters map[*edge.Hub]*ingester
	origins   map[string]*edge.Origins // per vhost name
}

// New returns a server for cfg that logs to log.
func New(cfg *conf.Config, log *slog.Logger) *Server {
	loops := runtime.GOMAXPROCS(0)
	link := int64(cfg.Capacity.Link)
	s := &Server{
		log:        log,
		hubs:       edge.NewRegistry(),
		booted:     make(chan struct{}),
		groups:     make(map[groupKey]*group),
		loopIdx:    make(map[gnet.EventLoop]int),
		loopStates: make(map[gnet.EventLoop]*loopState),
		loops:      loops,
		paceBurst:  link / 8 * cfg.Capacity.PaceBurst.Microseconds() / 1_000_000 / int64(loops),
		httpPorts:  listenPorts(cfg.HTTP.Listen),
		notifier:   hook.NewNotifier(notifyQueue, notifyWorkers, log),

		serverID:  fmt.Sprintf("%x", time.Now().UnixNano()),
		ingesters: make(map[*edge.Hub]*ingester),
		origins:   make(map[string]*edge.Origins),
	}
	s.cfg.Store(cfg)
	return s
}

// config returns the configuration in force. A caller that needs several
// settings to agree reads it once and keeps the pointer.
func (s *Server) config() *conf.Config { return s.cfg.Load() }

// Run serves until ctx is cancelled, then closes every connection and
// returns. It returns an error if the listeners cannot be opened.
func (s *Server) Run(ctx context.Context) error {
	var addrs []string
	for _, a := range append(append([]string(nil), s.config().Listen...), s.config().HTTP.Listen...) {
		addrs = append(addrs, "tcp://"+a)
	}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Rotate(s, addrs,
			gnet.WithNumEventLoop(s.loops),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithReuseAddr(true),
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{s.log}),
		)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("listen %v: %w", s.config().Listen, err)
	case <-s.booted:
	}
	s.log.Info("rtmp server listening", "listen", s.config().Listen, "http_listen", s.config().HTTP.Listen, "event_loops", s.loops,
		"config", s.config().Source)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "connections", s.conns.Load())
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.engine.Stop(stopCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop: %w", err)
	}
	<-done
	s.notifier.Close(stopCtx) // post the notifications of the connections just closed
	s.log.Info("stopped")
	return nil
}

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.engine = eng
	close(s.booted)
	return gnet.None
}

// OnOpen sets up a connection's state, refusing it over max_connections.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if o, ok := c.Context().(*outbound); ok {
		return o.onOpen(c)
	}
	n := s.conns.Add(1)
	remote := c.RemoteAddr().String()
	if n > int64(s.config().MaxConnections) {
		s.conns.Add(-1)
		s.log.Warn("connection refused: max_connections reached", "client", remote, "max_connections", s.config().MaxConnections)
		return nil, gnet.Close
	}
	ss := newSession(s, c, remote)
	if s.isHTTP(c.LocalAddr()) {
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
	s.sessions.Delete(ss)
	ss.close(err)
	return gnet.None
}

// OnTraffic parses what arrived.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	if o, ok := c.Context().(*outbound); ok {
		return o.onTraffic(c)
	}
	ss := c.Context().(*session)
	buf, _ := c.Peek(-1)
	var err error
	if len(ss.pend) > 0 {
		// Bytes a batched read took and the session left: they go first.
		ss.pend = append(ss.pend, buf...)
		_, _ = c.Discard(len(buf))
		var n int
		n, err = ss.consume(ss.pend)
		ss.keep(ss.pend[n:])
	} else {
		var n int
		n, err = ss.consume(buf)
		if n > 0 { // gnet's Discard(0) discards everything
			_, _ = c.Discard(n)
		}
	}
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

// OnTick enforces the timeouts of every connection.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	now := time.Now()
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

// listenPorts returns the ports of listen addresses.
func listenPorts(addrs []string) map[int]bool {
	ports := map[int]bool{}
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				ports[n] = true
			}
		}
	}
	return ports
}

// isHTTP reports whether a connection came in on an HTTP listener.
func (s *Server) isHTTP(local net.Addr) bool {
	if len(s.httpPorts) == 0 {
		return false
	}
	a, ok := local.(*net.TCPAddr)
	return ok && s.httpPorts[a.Port]
}
