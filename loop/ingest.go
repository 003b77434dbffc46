package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// Version is reported to origins with debug_upnode; main sets it.
var Version = "dev"

// upstreamTarget is what an edge asks its origin for on behalf of a client.
type upstreamTarget struct {
	vhost  *conf.Vhost
	app    string // app as the client sent it (query included)
	query  string // query of the client's tcUrl
	stream string // stream name with its query
}

// tcURL returns the upstream tcUrl for origin addr: the vhost transform
// (cluster.vhost, else the client's named vhost, else the origin's address)
// and the client's parameters.
func (t upstreamTarget) tcURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if v := t.vhost.Cluster.Vhost; v != "" {
		host = v
	} else if t.vhost.Name != conf.DefaultVhost {
		host = t.vhost.Name
	}
	u := "rtmp://" + net.JoinHostPort(host, port) + "/" + t.app
	if t.query != "" {
		u += "?" + t.query
	}
	return u
}

// upnode is the debug_upnode object, with SRS's field names.
func (s *Server) upnode(v *conf.Vhost, local string) amf.Object {
	if !v.Cluster.DebugUpnode {
		return nil
	}
	host, _, _ := net.SplitHostPort(local)
	return amf.Object{
		{Key: "srs_sig", Value: "rtmpedge"},
		{Key: "srs_server", Value: "rtmpedge/" + Version},
		{Key: "srs_version", Value: Version},
		{Key: "srs_pid", Value: float64(os.Getpid())},
		{Key: "srs_id", Value: s.serverID},
		{Key: "srs_server_ip", Value: host},
	}
}

// ingester pulls one stream from an origin for every player of it on this
// edge: one upstream connection, failing over between origins.
type ingester struct {
	srv    *Server
	hub    *edge.Hub
	target upstreamTarget
	loop   gnet.EventLoop
	log    *slog.Logger

	current atomic.Pointer[outbound]

	mu        sync.Mutex
	players   int
	stopped   bool
	locating  bool // asking the registry where the stream is
	attempts  *edge.Attempts
	linger    *time.Timer
	retry     *time.Timer
	lastError string

	// For the API: when the current origin started serving (or the
	// upstream started), how often it failed over, and the media bytes of
	// the upstream connections before the current one.
	since       time.Time
	failovers   int64
	bytesBefore uint64
}

// hubPlacer places the audio and video of a stream's source in its
// packets (chunk.Placer), up to placeMax bytes.
type hubPlacer struct{ hub *edge.Hub }

func (p hubPlacer) Place(h *chunk.Header) ([]byte, chunk.Layout) {
	if h.TypeID != chunk.TypeAudio && h.TypeID != chunk.TypeVideo || h.Length > placeMax {
		return nil, chunk.Layout{}
	}
	return p.hub.Place(h.TypeID, h.Timestamp, int(h.Length))
}

// ingestJoin attaches a player of a remote vhost to its stream's ingester,
// starting one if there is none.
func (s *Server) ingestJoin(ss *session, v *conf.Vhost, t upstreamTarget) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	ing := s.ingesters[ss.hub]
	if ing == nil {
		hub := s.hubs.Acquire(ss.hub.Key(), s.hubOptions(v))
		ing = &ingester{
			srv: s, hub: hub, target: t, loop: ss.c.EventLoop(),
			attempts: s.originsLocked(v).NewAttempts(ss.key.App+"/"+ss.key.Stream, v.Cluster.RetryMin, v.Cluster.RetryMax),
			log:      s.log.With("vhost", v.Name, "app", ss.key.App, "stream", ss.key.Stream, "role", "ingest"),
		}
		if err := hub.Publish(ing); err != nil {
			// Only an ingester publishes into an edge vhost's hub.
			s.log.Error("edge stream already has a source", "stream", hub.Key().String(), "err", err)
		}
		s.ingesters[ss.hub] = ing
		ing.mu.Lock()
		ing.connectLocked()
		ing.mu.Unlock()
	}
	ing.mu.Lock()
	ing.players++
	if ing.linger != nil {
		ing.linger.Stop()
		ing.linger = nil
	}
	ing.mu.Unlock()
	ss.ingest = ing
}

// ingestLeave detaches a player; the last one starts the linger.
func (s *Server) ingestLeave(ss *session) {
	ing := ss.ingest
	if ing == nil {
		return
	}
	ss.ingest = nil
	ing.mu.Lock()
	defer ing.mu.Unlock()
	ing.players--
	if ing.players > 0 || ing.stopped {
		return
	}
	linger := s.current(ing.target.vhost).Cluster.Linger
	if linger <= 0 {
		go ing.stopIfIdle()
		return
	}
	ing.linger = time.AfterFunc(linger, ing.stopIfIdle)
}

// stopIfIdle closes the upstream when no player came back. The ingester
// leaves the registry under the same lock a joining player takes, so a
// player arriving now either keeps this one or starts a new one.
func (ing *ingester) stopIfIdle() {
	s := ing.srv
	s.ingestMu.Lock()
	ing.mu.Lock()
	if ing.players > 0 || ing.stopped {
		ing.mu.Unlock()
		s.ingestMu.Unlock()
		return
	}
	ing.stopped = true
	if s.ingesters[ing.hub] == ing {
		delete(s.ingesters, ing.hub)
	}
	if ing.retry != nil {
		ing.retry.Stop()
	}
	o := ing.current.Swap(nil)
	ing.mu.Unlock()
	s.ingestMu.Unlock()

	if o != nil {
		o.close(errors.New("no players left (linger over)"))
	}
	ing.hub.Unpublish(ing)
	s.hubs.Release(ing.hub)
	ing.log.Info("upstream stopped: no players")
}

// connectLocked dials the next origin of the current round, or waits
// before a new round when every origin failed. A new round first asks the
// registry (off the loop) which origin has the stream, and starts there.
func (ing *ingester) connectLocked() {
	if ing.stopped || ing.locating {
		return
	}
	if ing.attempts.NewRound() {
		ing.locating = ing.srv.locateOrigin(upstreamKey(ing.target.vhost, ing.hub.Key()), func(addr string) {
			ing.mu.Lock()
			defer ing.mu.Unlock()
			ing.locating = false
			ing.attempts.Prefer(addr)
			ing.dialLocked()
		})
		if ing.locating {
			return
		}
	}
	ing.dialLocked()
}

// dialLocked dials the next origin, or waits when every origin failed.
func (ing *ingester) dialLocked() {
	if ing.stopped {
		return
	}
	addr, wait, ok := ing.attempts.Next(time.Now())
	if !ok {
		ing.log.Warn("every origin failed, retrying", "in", wait.String(), "last_error", ing.lastError)
		ing.retry = time.AfterFunc(wait, func() {
			ing.mu.Lock()
			defer ing.mu.Unlock()
			ing.connectLocked()
		})
		return
	}
	ing.target.vhost = ing.srv.current(ing.target.vhost) // a reload applies from the next connect
	t := ing.target
	c := t.vhost.Cluster
	up := edge.NewUpstream(edge.UpstreamConfig{
		Mode:   edge.UpstreamPlay,
		TcURL:  t.tcURL(addr),
		App:    t.app,
		Stream: t.stream,
		Upnode: ing.srv.upnode(t.vhost, ing.srv.localAddr()),
		// The upstream receives media: it keeps max_message_size.
		MaxMessageSize: int(ing.srv.config().MaxMessageSize),
	})
	var o *outbound
	// media hands a message to the hub: append copies payload, or makes
	// a placed message a packet.
	media := func(append func() error) error {
		if ing.current.Load() != o {
			return errors.New("upstream replaced")
		}
		o.lastData.Store(time.Now().UnixNano())
		if err := append(); err != nil && !errors.Is(err, edge.ErrNotPublisher) {
			ing.log.Debug("upstream message dropped", "err", err)
		}
		return nil
	}
	up.OnMedia = func(typeID uint8, ts uint32, payload []byte) error {
		return media(func() error { return ing.hub.Append(ing, typeID, ts, payload) })
	}
	up.OnPlaced = func(msg *chunk.Message) error {
		return media(func() error { return ing.hub.AppendPlaced(ing, msg) })
	}
	up.SetPlacer(hubPlacer{ing.hub})
	o = ing.srv.dialUpstream(addr, c.ConnectTimeout, c.CommandTimeout, c.NoDataTimeout, batchWindow(t.vhost), up, ing, ing.loop, ing.log)
	ing.current.Store(o)
}

func (ing *ingester) upstreamReady(o *outbound, _ []any) {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	if ing.current.Load() != o {
		return
	}
	ing.attempts.Worked(o.addr)
	ing.since = time.Now()
	ing.hub.Restart(ing)
	ing.log.Info("upstream playing", "origin", o.addr, "after", time.Since(o.opened).Round(time.Millisecond).String())
}

func (ing *ingester) upstreamClosed(o *outbound, err error) {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	if !ing.current.CompareAndSwap(o, nil) || ing.stopped {
		return
	}
	ing.lastError = err.Error()
	ing.bytesBefore += o.up.Received()
	var ue *edge.UpstreamError
	if errors.As(err, &ue) && ue.Redirect != "" {
		if to, ok := ing.attempts.Redirect(ue.Redirect); ok {
			ing.log.Info("origin redirects", "origin", o.addr, "to", to)
			ing.connectLocked()
			return
		}
	}
	ing.failovers++
	ing.srv.originFailed(o.addr, ing.attempts.Failed(o.addr, o.streaming.Load() && o.up.Received() > 0, time.Now()))
	ing.log.Warn("upstream failed, trying the next origin", "origin", o.addr, "err", err.Error(),
		"had_media", o.up.Received() > 0)
	if errors.As(err, &ue) {
		desc := fmt.Sprintf("origin %s refused the stream (%s); retrying", o.addr, ue.Code)
		ing.hub.Notify(edge.OnStatus(nil, ing.hub.ChunkSize(), "warning", ue.Code, desc))
	}
	ing.connectLocked()
}

// originsOf returns the shared origin set of a vhost.
func (s *Server) originsOf(v *conf.Vhost) *edge.Origins {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	return s.originsLocked(v)
}

func (s *Server) originsLocked(v *conf.Vhost) *edge.Origins {
	o := s.origins[v.Name]
	if o == nil {
		o = edge.NewOrigins(v.Cluster.Origin, v.Cluster.Select == conf.SelectHash, v.Cluster.DeadOriginTTL)
		s.origins[v.Name] = o
	}
	return o
}

// current returns the settings of vhost v in the configuration in force:
// v itself when a reload removed it (what uses it is being closed).
func (s *Server) current(v *conf.Vhost) *conf.Vhost {
	if nv := s.config().Vhosts[v.Name]; nv != nil {
		return nv
	}
	return v
}

// localAddr is an address of this server for debug_upnode.
func (s *Server) localAddr() string {
	if len(s.config().Listen) > 0 {
		return s.config().Listen[0]
	}
	return ""
}
