package loop

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// iovMax is the most buffers one writev takes (Linux IOV_MAX); gnet passes
// the slice to the kernel as it is.
const iovMax = 1024

func hubOptions(chunkSize int, v *conf.Vhost) edge.Options {
	return edge.Options{ChunkSize: chunkSize, GopCache: v.GopCache, GopCacheMaxBytes: int(v.GopCacheMaxBytes)}
}

// groupKey names the players of one stream on one event loop.
type groupKey struct {
	hub  *edge.Hub
	loop gnet.EventLoop
}

// player is a playing session's fan-out state, owned by its loop.
type player struct {
	ss          *session
	cursor      uint64 // next packet sequence number to send
	needHeaders bool   // send metadata and sequence headers before the next media
	waitKey     bool   // skip media until a keyframe
	paused      bool
	lagging     bool
	lagSince    time.Time
	closing     bool
	skips       int // times the player was skipped ahead for being slow
}

// group writes a stream's new packets to every player of it on one event
// loop. A hub wakes it; at most one flush is scheduled at a time; the flush
// runs on the loop and sends each player everything pending in one writev.
type group struct {
	srv      *Server
	key      groupKey
	window   uint32 // merged-write window in milliseconds (0: every packet)
	backlog  int
	lagLimit time.Duration

	scheduled   atomic.Bool
	lastFlushTS atomic.Uint32

	players []*player // touched only on the loop
	snap    edge.Snapshot
	iov     [][]byte
}

// frameWindow is how long audio may wait for the next video frame with
// merged_write 0 (a stream whose video stalls still gets its audio).
const frameWindow = 50

// Wake schedules a flush when the window's worth of media is pending. With
// window 0 it flushes at every video frame: the audio in between rides with
// the next frame (at most one frame interval later; audio-only streams are
// written message by message), so a player costs one write per frame.
func (g *group) Wake(ts uint32, kind edge.Kind, force bool) {
	if force {
		g.schedule()
		return
	}
	d := int32(ts - g.lastFlushTS.Load())
	window := int32(g.window)
	if window == 0 {
		if kind == edge.KindVideo || !g.key.hub.HasVideo() {
			g.schedule()
			return
		}
		window = frameWindow
	}
	if d > -1000 && d < window { // small backward steps are audio/video interleaving
		return
	}
	g.schedule()
}

func (g *group) schedule() {
	if g.scheduled.CompareAndSwap(false, true) {
		if err := g.key.loop.Execute(context.Background(), g); err != nil {
			g.scheduled.Store(false) // the engine is shutting down
		}
	}
}

// Run is the flush, executed on the group's loop.
func (g *group) Run(context.Context) error {
	g.scheduled.Store(false)
	g.flush(time.Now())
	return nil
}

func (g *group) flush(now time.Time) {
	if len(g.players) == 0 {
		return
	}
	from := ^uint64(0)
	for _, p := range g.players {
		if !p.lagging && !p.paused && !p.closing && p.cursor < from {
			from = p.cursor
		}
	}
	if from == ^uint64(0) {
		from = 0
	}
	s := &g.snap
	g.key.hub.Snapshot(from, s)
	if n := len(s.Packets); n > 0 {
		g.lastFlushTS.Store(s.Packets[n-1].Timestamp)
	}
	for _, p := range g.players {
		if p.closing || p.paused {
			continue
		}
		if g.throttled(p, now) {
			continue
		}
		g.writePlayer(p, s)
	}
}

// throttled applies the backlog bound: a player whose unsent bytes exceed
// it gets nothing more until it drains, then resumes at a keyframe; one that
// stays behind past the lag limit is disconnected.
func (g *group) throttled(p *player, now time.Time) bool {
	buffered := p.ss.c.OutboundBuffered()
	if buffered > g.backlog {
		if !p.lagging {
			p.lagging, p.lagSince = true, now
			p.ss.log.Debug("player behind, skipping ahead", "buffered", buffered, "backlog", g.backlog)
		} else if g.lagLimit > 0 && now.Sub(p.lagSince) > g.lagLimit {
			p.closing = true
			p.ss.setReason(fmt.Sprintf("player behind by over %d bytes for %s (player_lag_timeout)", g.backlog, g.lagLimit))
			_ = p.ss.c.Close()
		}
		return true
	}
	if p.lagging {
		if buffered > g.backlog/2 {
			return true
		}
		p.lagging = false
		p.waitKey, p.needHeaders = true, true
		p.cursor = g.snap.Head
		p.skips++
	}
	return false
}

func (g *group) writePlayer(p *player, s *edge.Snapshot) {
	if p.cursor > s.Head {
		p.cursor = s.Head
	}
	if p.cursor < s.Start { // fell out of the ring: start again at a keyframe
		p.cursor = s.Start
		p.waitKey, p.needHeaders = true, true
		p.skips++
	}
	pkts := s.Packets[p.cursor-s.Start:]
	p.cursor = s.Head
	iov := g.iov[:0]
	if p.waitKey {
		// Skip media up to a keyframe, but not the notifications on the way.
		i := firstStart(pkts, s.HasVideo)
		skipped := pkts
		if i >= 0 {
			skipped, pkts = pkts[:i], pkts[i:]
			p.waitKey = false
		} else {
			pkts = nil
		}
		for j := range skipped {
			if skipped[j].Kind == edge.KindControl {
				iov = append(iov, skipped[j].Data)
			}
		}
	}
	if p.needHeaders && len(pkts) > 0 {
		iov = append(iov, s.Headers...)
		p.needHeaders = false
	}
	for i := range pkts {
		iov = append(iov, pkts[i].Data)
	}
	g.iov = iov[:0]
	if len(iov) == 0 {
		return
	}
	p.ss.waitingFor.Store(0)
	var n int
	for len(iov) > 0 {
		part := iov[:min(len(iov), iovMax)]
		iov = iov[len(part):]
		for _, b := range part {
			n += len(b)
		}
		if _, err := p.ss.c.Writev(part); err != nil {
			p.closing = true // gnet closes the connection itself on a write error
			break
		}
	}
	p.ss.bytesOut.Add(uint64(n))
}

// firstStart returns the index of the first packet a player can start at:
// a video keyframe, or any audio packet for a stream without video.
func firstStart(pkts []edge.Packet, hasVideo bool) int {
	for i := range pkts {
		switch pkts[i].Kind {
		case edge.KindVideo:
			if pkts[i].Keyframe {
				return i
			}
		case edge.KindAudio:
			if !hasVideo {
				return i
			}
		}
	}
	return -1
}

// join adds a playing session to its loop's group for the stream and
// schedules its first write (headers and the GOP cache).
func (s *Server) join(ss *session, v *conf.Vhost) {
	key := groupKey{hub: ss.hub, loop: ss.c.EventLoop()}
	s.groupsMu.Lock()
	g := s.groups[key]
	if g == nil {
		g = &group{
			srv:      s,
			key:      key,
			window:   uint32(v.MergedWrite / time.Millisecond),
			backlog:  int(v.PlayerBacklog),
			lagLimit: v.PlayerLagTimeout,
		}
		s.groups[key] = g
		ss.hub.AddWaker(g)
	}
	s.groupsMu.Unlock()
	cursor, waitKey := ss.hub.Join()
	p := &player{ss: ss, cursor: cursor, waitKey: waitKey, needHeaders: true}
	ss.player = p
	g.players = append(g.players, p)
	g.schedule()
}

// leave removes a playing session from its group.
func (s *Server) leave(ss *session) {
	p := ss.player
	if p == nil {
		return
	}
	ss.player = nil
	key := groupKey{hub: ss.hub, loop: ss.c.EventLoop()}
	s.groupsMu.Lock()
	defer s.groupsMu.Unlock()
	g := s.groups[key]
	if g == nil {
		return
	}
	for i, x := range g.players {
		if x == p {
			last := len(g.players) - 1
			g.players[i] = g.players[last]
			g.players[last] = nil
			g.players = g.players[:last]
			break
		}
	}
	if len(g.players) == 0 {
		delete(s.groups, key)
		ss.hub.RemoveWaker(g)
	}
}

// pause stops or resumes sending to a player; it resumes at a keyframe.
func (s *Server) pause(ss *session, paused bool) {
	p := ss.player
	if p == nil || p.paused == paused {
		return
	}
	p.paused = paused
	if !paused {
		p.cursor = ^uint64(0) >> 1 // clamped to the head by the next snapshot
		p.waitKey, p.needHeaders = true, true
	}
}
