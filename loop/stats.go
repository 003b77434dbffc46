package loop

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/pool"
)

// What the server shows of itself to its API and metrics. Everything here
// is read off the event loops from atomics and immutable views the loops
// publish; nothing here touches a loop's own state.

// clientView is what a session last published about itself: set on its
// loop at connect and at each role change, read by anyone.
type clientView struct {
	vhost, app, stream   string
	tcURL, pageURL, swf  string
	role                 role
	protocol             string
	streamKey            edge.Key
	hasStream, publishes bool
}

// publishView records the session's current identity for the API.
func (ss *session) publishView() {
	r := role(ss.role.Load())
	v := &clientView{
		app: ss.app, stream: ss.key.Stream, tcURL: ss.tcURL, role: r, protocol: ss.protocol(),
		streamKey: ss.key, hasStream: r != roleNone, publishes: r == rolePublisher,
	}
	if vh := ss.vhostPtr.Load(); vh != nil {
		v.vhost = vh.Name
	}
	if ss.connectObj != nil {
		v.pageURL, v.swf = ss.connectObj.String("pageUrl"), ss.connectObj.String("swfUrl")
	}
	ss.view.Store(v)
}

// ClientStat is one client connection.
type ClientStat struct {
	ID       uint64
	Vhost    string // the vhost's name ("" before connect)
	App      string
	Stream   string // the stream's name ("" when neither playing nor publishing)
	StreamID string // StreamStat.ID of its stream
	IP       string
	PageURL  string
	SwfURL   string
	TcURL    string
	Type     string // SRS's names: rtmp-play, fmle-publish, flv-play, ...
	Publish  bool
	Protocol string // rtmp, http-flv, ws-flv
	Opened   time.Time
	BytesIn  uint64
	BytesOut uint64
}

// StreamStat is one live stream (published, pulled, or awaited by players).
type StreamStat struct {
	ID          string
	Key         edge.Key
	Created     time.Time
	Clients     int // players and the publisher
	Players     int
	Frames      uint64
	BytesIn     uint64 // media payload bytes published
	BytesOut    uint64 // bytes sent to its clients still connected
	Publishing  bool
	PublisherID uint64 // client id of the publisher (0: an edge upstream or none)
	BitRate     int64  // as published, bits per second
	VideoHeader []byte
	AudioHeader []byte
	Upstream    *UpstreamStat // edge vhosts: the upstream pulling it
}

// UpstreamStat is an edge's upstream connection for one stream.
type UpstreamStat struct {
	Origin    string // the origin connected or being tried
	State     string // connecting, playing, retrying
	Since     time.Time
	Failovers int64
	BytesIn   uint64
}

// VhostStat is one configured vhost.
type VhostStat struct {
	Name     string
	Enabled  bool
	Mode     string
	Clients  int
	Streams  int
	BytesIn  uint64
	BytesOut uint64
	Origins  []edge.OriginState // edge vhosts: the origins in list order with dead marks
	Select   string
}

// streamID names a stream in the API: stable while its name is.
func streamID(k edge.Key) string {
	h := fnv.New32a()
	h.Write([]byte(k.String()))
	return fmt.Sprintf("str-%08x", h.Sum32())
}

// clientType is SRS's name for what a client does.
func clientType(v *clientView) string {
	switch {
	case v == nil || v.role == roleNone:
		return "unknown"
	case v.publishes:
		return "fmle-publish"
	case v.protocol == "http-flv":
		return "flv-play"
	case v.protocol == "ws-flv":
		return "ws-flv-play"
	}
	return "rtmp-play"
}

// Clients returns every client connection, oldest first.
func (s *Server) Clients() []ClientStat {
	var out []ClientStat
	s.sessions.Range(func(k, _ any) bool {
		if ss, ok := k.(*session); ok {
			out = append(out, ss.stat())
		}
		return true
	})
	slices.SortFunc(out, func(a, b ClientStat) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Client returns one client connection by id.
func (s *Server) Client(id uint64) (ClientStat, bool) {
	ss := s.sessionByID(id)
	if ss == nil {
		return ClientStat{}, false
	}
	return ss.stat(), true
}

// Kick closes a client connection; it reports whether one had that id.
func (s *Server) Kick(id uint64) bool {
	ss := s.sessionByID(id)
	if ss == nil {
		return false
	}
	ss.setReason("kicked through the API")
	_ = ss.c.Close()
	s.kicks.Add(1)
	return true
}

func (s *Server) sessionByID(id uint64) *session {
	var found *session
	s.sessions.Range(func(k, _ any) bool {
		if ss, ok := k.(*session); ok && ss.id == id {
			found = ss
			return false
		}
		return true
	})
	return found
}

func (ss *session) stat() ClientStat {
	v := ss.view.Load()
	c := ClientStat{
		ID: ss.id, IP: hostOf(ss.remote), Opened: ss.opened, Type: clientType(v),
		BytesIn: ss.bytesIn.Load(), BytesOut: ss.bytesOut.Load(), Protocol: "rtmp",
	}
	if v != nil {
		c.Vhost, c.App, c.TcURL, c.PageURL, c.SwfURL, c.Protocol = v.vhost, v.app, v.tcURL, v.pageURL, v.swf, v.protocol
		c.Publish = v.publishes
		if v.hasStream {
			c.Stream, c.StreamID = v.stream, streamID(v.streamKey)
		}
	}
	return c
}

// Snapshot is one reading of the clients, streams and vhosts: the streams'
// and vhosts' client figures are of the same walk of the connections.
type Snapshot struct {
	Clients []ClientStat
	Streams []StreamStat
	Vhosts  []VhostStat
}

// Snapshot reads the clients once and the streams and vhosts with them,
// for a caller that wants more than one of the three (a metrics scrape, a
// rate sample): Streams and Vhosts each read the clients again.
func (s *Server) Snapshot() Snapshot {
	clients := s.Clients()
	return Snapshot{Clients: clients, Streams: s.streams(clients), Vhosts: s.vhosts(clients)}
}

// Streams returns every live stream, by name.
func (s *Server) Streams() []StreamStat { return s.streams(s.Clients()) }

// streams returns every live stream, by name, with the figures of clients.
func (s *Server) streams(clients []ClientStat) []StreamStat {
	byStream := map[string][]ClientStat{}
	for _, c := range clients {
		if c.StreamID != "" {
			byStream[c.StreamID] = append(byStream[c.StreamID], c)
		}
	}
	var hubs []*edge.Hub
	s.hubs.Each(func(h *edge.Hub) { hubs = append(hubs, h) })
	out := make([]StreamStat, 0, len(hubs))
	for _, h := range hubs {
		st := h.Stats()
		ss := StreamStat{
			ID: streamID(h.Key()), Key: h.Key(), Created: st.Created, Players: h.Players(),
			Frames: st.Frames, BytesIn: st.BytesIn, Publishing: st.Publishing, BitRate: h.BitRate(),
			VideoHeader: st.VideoHeader, AudioHeader: st.AudioHeader,
		}
		for _, c := range byStream[ss.ID] {
			ss.Clients++
			ss.BytesOut += c.BytesOut
			if c.Publish {
				ss.PublisherID = c.ID
			}
		}
		ss.Upstream = s.upstreamStat(h)
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b StreamStat) int { return cmp.Compare(a.Key.String(), b.Key.String()) })
	return out
}

// upstreamStat describes the ingester of hub h, if it has one.
func (s *Server) upstreamStat(h *edge.Hub) *UpstreamStat {
	s.ingestMu.Lock()
	ing := s.ingesters[h]
	s.ingestMu.Unlock()
	if ing == nil {
		return nil
	}
	ing.mu.Lock()
	defer ing.mu.Unlock()
	u := &UpstreamStat{Failovers: ing.failovers, Since: ing.since, BytesIn: ing.bytesBefore}
	switch o := ing.current.Load(); {
	case o == nil:
		u.State = "retrying"
	case o.streaming.Load():
		u.State, u.Origin = "playing", o.addr
		u.BytesIn += o.up.Received()
	default:
		u.State, u.Origin = "connecting", o.addr
	}
	return u
}

// Vhosts returns the configured vhosts with their clients and streams.
func (s *Server) Vhosts() []VhostStat { return s.vhosts(s.Clients()) }

// vhosts returns the configured vhosts with the figures of clients.
func (s *Server) vhosts(clients []ClientStat) []VhostStat {
	cfg := s.config()
	byName := map[string]*VhostStat{}
	for name, v := range cfg.Vhosts {
		vs := &VhostStat{Name: name, Enabled: v.Enabled, Mode: v.Cluster.Mode}
		if v.Cluster.Mode == conf.ModeRemote {
			vs.Select = v.Cluster.Select
			s.ingestMu.Lock()
			o := s.origins[name]
			s.ingestMu.Unlock()
			if o != nil {
				vs.Origins = o.States(time.Now())
			} else {
				for _, a := range v.Cluster.Origin {
					vs.Origins = append(vs.Origins, edge.OriginState{Addr: a})
				}
			}
		}
		byName[name] = vs
	}
	for _, c := range clients {
		if vs := byName[c.Vhost]; vs != nil {
			vs.Clients++
			vs.BytesIn += c.BytesIn
			vs.BytesOut += c.BytesOut
		}
	}
	s.hubs.Each(func(h *edge.Hub) {
		if vs := byName[h.Key().Vhost]; vs != nil {
			vs.Streams++
		}
	})
	out := make([]VhostStat, 0, len(byName))
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, *byName[n])
	}
	return out
}

// BlockStats returns the counters of the streams' media block pool.
func (s *Server) BlockStats() pool.BlockStats { return s.blocks.Stats() }

// Counters are the server's running totals, for metrics.
type Counters struct {
	Connections    int64 // client connections open
	Players        int64
	Streams        int
	Upstreams      int // edge upstreams (pulls) running
	AcceptErrors   int64
	RefusedPlays   int64
	Kicks          int64
	Reloads        int64
	ReloadFailures int64
	LastReload     time.Time
	NotifySent     uint64
	NotifyFailed   uint64
	NotifyDropped  uint64
	InflightBytes  int64 // held in partly received messages (max_inflight_bytes)
	EgressEstimate int64 // bits per second on the wire: players x their stream's bit rate with RTMP and TCP/IP headers
	LinkBusy       bool  // capacity.busy_load reached: merged windows halved
	Started        time.Time
}

// Counters returns the server's totals.
func (s *Server) Counters() Counters {
	s.ingestMu.Lock()
	ups := len(s.ingesters)
	s.ingestMu.Unlock()
	c := Counters{
		Connections: s.conns.Load(), Players: s.players.Load(), Streams: s.hubs.Len(), Upstreams: ups,
		AcceptErrors: s.acceptErrors.Load(), RefusedPlays: s.refusedPlays.Load(), Kicks: s.kicks.Load(),
		Reloads: s.reloads.Load(), ReloadFailures: s.reloadFailures.Load(), InflightBytes: s.inflight.Load(),
		Started: s.started, EgressEstimate: s.egress.Load(), LinkBusy: s.busy.Load(),
	}
	c.NotifySent, c.NotifyFailed, c.NotifyDropped = s.notifier.Counts()
	if t := s.lastReload.Load(); t != 0 {
		c.LastReload = time.Unix(0, t)
	}
	return c
}

// ServerID is this process's id, as sent to origins and in hooks.
func (s *Server) ServerID() string { return s.serverID }

// Config returns the configuration in force.
func (s *Server) Config() *conf.Config { return s.config() }

// ParseClientID reads a client id as the API writes it.
func ParseClientID(s string) (uint64, bool) {
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil
}
