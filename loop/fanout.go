package loop

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/pool"
)

// Pacing: with merged writes, a group spreads its players over slots of the
// window, so that every player still gets one write per window but the
// loop's egress leaves in bursts that the link drains in about
// capacity.pace_burst, instead of one burst per window, however bursty the input
// (an edge's origin merges its writes too). Each slot costs the loop a
// wake-up (a timer, an eventfd write and a thread switch, about as much as
// a hundred player writes), so a group uses as few slots as keep its
// bursts within that bound: one for a handful of players, more as its
// players and bit rate grow.
const (
	minSliceMs  = 5                     // shortest slot
	maxSlices   = 64                    // most slots in a window (a bit mask)
	repaceEvery = time.Second           // how often a group reconsiders its slot count
	retryDelay  = 10 * time.Millisecond // a player whose write was cut short is retried this soon
)

// Bounds on what a player's own requests may queue (ping responses, acks,
// status replies) while it does not read.
const (
	maxControlBacklog = 256 << 10 // bytes in gnet's outbound buffer
	maxPending        = 256       // buffers queued behind a partly sent message
)

// frameWindow is how long audio may wait for the next video frame with
// merged_write 0 (a stream whose video stalls still gets its audio).
const frameWindow = 50

// hubOptions are the settings of a new stream of vhost v.
func (s *Server) hubOptions(v *conf.Vhost) edge.Options {
	return edge.Options{
		ChunkSize: s.config().ChunkSize, GopCache: v.GopCache, GopCacheMaxBytes: int(v.GopCacheMaxBytes),
		BacklogMaxBytes: int(v.PlayerBacklogBytes), Blocks: s.blocks,
	}
}

// format is the wire format a player reads.
type format uint8

const (
	formatRTMP      format = iota
	formatFLV              // HTTP-FLV: FLV tags
	formatWebSocket        // WebSocket-FLV: each FLV tag in a binary frame
)

// groupKey names the players of one stream on one event loop.
type groupKey struct {
	hub  *edge.Hub
	loop gnet.EventLoop
	// edges: the players are downstream edges (their connect said so, SRS
	// style). They are written every quarter of merged_write (at most
	// 100 ms, the window an edge reads its upstreams in, batchWindow): one
	// connection per stream costs an origin little, the edge merges for
	// its own players, and an edge fed in bursts of a whole window writes
	// its players against the bursts' beat (gaps at line rate) and adds a
	// window of latency to every layer.
	edges bool
}

// player is a playing session's fan-out state, owned by its loop. Its
// backlog is a position in the stream's shared packets (cursor) plus, when
// the kernel took part of a write, the rest of that write (pending): slices
// of shared buffers, never copies.
type player struct {
	ss          *session
	group       *group
	fd          int
	format      format      // what the player reads: RTMP chunks, FLV or WebSocket-FLV
	lowat       int         // the socket's TCP_NOTSENT_LOWAT: most unsent bytes the kernel holds for it
	cursor      uint64      // next packet to hand the kernel
	pending     [][]byte    // sent before the packet at cursor: the rest of a partly sent write
	pin         *pool.Block // the block of the media packet pending holds part of, pinned (nil: none)
	seq         int         // join order in the group: the player's slot is seq modulo the group's slot count
	lastWrite   int64       // unix ms of the last write the kernel took some of
	due         bool        // write at the next flush whatever the slot (joined, resumed, write cut short)
	needHeaders bool        // send metadata and sequence headers before the next media
	waitKey     bool        // skip media until a keyframe
	paused      bool
	closing     bool
	drained     bool      // the kernel took the whole of the last write
	gone        bool      // left the group; removed after the flush in progress
	overSince   time.Time // when the player last fell past its backlog (zero: within it)
	skips       int       // times the player was skipped ahead for being slow
}

// group writes a stream's new packets to every player of it on one event
// loop. A hub wakes it; at most one flush is scheduled at a time; the flush
// runs on the loop and hands each due player everything pending for it in
// one writev, as much as its socket takes.
type group struct {
	srv      *Server
	key      groupKey
	window   uint32       // merged-write window in milliseconds (0: every video frame)
	base     uint32       // the vhost's window (window is half of it while the box is busy)
	busy     bool         // the box was busy when the window was last set (on the loop)
	switched int64        // unix ms the window last changed with the box's load
	merged   atomic.Bool  // window > 0, for Wake, which runs off the loop
	vhost    string       // the vhost whose settings the group follows
	cfg      *conf.Config // the configuration they were last read from
	slices   int          // slots the players are spread over (1..maxSlices)
	slice    int64        // wall milliseconds between two slots
	phase    int64        // wall milliseconds the slots are shifted by, so groups of different loops take turns
	backlog  time.Duration
	lagLimit time.Duration

	scheduled atomic.Bool
	forceAll  atomic.Bool   // the next flush writes every player (headers, notifications)
	lastWake  atomic.Uint32 // timestamp of the last packet that scheduled a flush (window 0)
	paced     atomic.Bool   // a paced flush is coming: appends need not schedule one
	need      atomic.Uint64 // the oldest packet a player here still needs

	// Touched only on the loop.
	players  []*player
	flushing bool
	slotPos  int64 // wall-clock slot ((unix ms + phase) / slice) last written
	nextSeq  int
	repaceAt time.Time // when the slot count is next reconsidered
	retry    bool      // a write of this flush was cut short but made progress
	ls       *loopState
	due      int64 // unix ns of the paced flush the loop's clock runs (0: none)
}

// flushScratch is what a flush works in: one per event loop, since a
// loop's flushes run one at a time (a stream's group keeps none of it
// between flushes, so a thousand streams do not each keep a snapshot).
type flushScratch struct {
	snap   edge.Snapshot
	iov    [][]byte
	starts []int
	vecs   []unix.Iovec
}

func newGroup(s *Server, key groupKey, v *conf.Vhost) *group {
	g := &group{srv: s, key: key, ls: s.loopStateOf(key.loop), vhost: v.Name, cfg: s.config(), busy: s.busy.Load()}
	g.need.Store(edge.NoNeed)
	g.apply(v)
	return g
}

// apply takes the vhost's fan-out settings: at creation, and on the loop
// at the first flush after a reload changed them.
func (g *group) apply(v *conf.Vhost) {
	g.backlog, g.lagLimit = v.PlayerBacklog, v.PlayerLagTimeout
	w := uint32(v.MergedWrite / time.Millisecond)
	if g.key.edges {
		w = uint32(batchWindow(v) / time.Millisecond)
	}
	if w == g.base && g.slice != 0 {
		return
	}
	g.base = w
	g.window = g.windowFor(g.busy)
	g.slices, g.slice = 1, max(int64(g.window), 1)
	g.repaceAt, g.slotPos = time.Time{}, 0
	g.forceAll.Store(true) // write everyone once, then pace on the new window
	g.merged.Store(w > 0)
}

// windowFor returns the window the group's players are written in: the
// vhost's, halved while the box is busy (capacity.busy_load). A write whose
// first segment the box's own queue drops waits for TCP's probe timer
// (about 230 ms) on top of the window; half windows keep that wait near
// merged_write, for more writes. Edges downstream keep their quarter
// window.
func (g *group) windowFor(busy bool) uint32 {
	if busy && !g.key.edges && g.base > 1 {
		return g.base / 2
	}
	return g.base
}

// followBusy switches the group's window when the box became busy or
// stopped being busy. The slots of the new window start from now; a player
// last written before the switch is written at its new slot or a previous
// window after its last write, whichever comes first (isDue): a switch to
// half windows neither writes half the players at once nor makes any wait
// longer than its old cadence.
func (g *group) followBusy(now time.Time) {
	busy := g.srv.busy.Load()
	if busy == g.busy {
		return
	}
	g.busy = busy
	if w := g.windowFor(busy); w != g.window && g.window > 0 {
		g.window = w
		g.switched = now.UnixMilli()
		g.setSlices(g.slicesNeeded(), now)
	}
}

// reconfigure follows a reload: the settings of the group's vhost in cfg,
// if it still has one (a vhost removed or disabled closes its players).
func (g *group) reconfigure(cfg *conf.Config) {
	g.cfg = cfg
	if v := cfg.Vhosts[g.vhost]; v != nil {
		g.apply(v)
	}
}

// slicesFor returns how many slots a window's writes to players at
// bitRate need so that one slot's bytes stay within burst.
func slicesFor(players int, bitRate int64, window uint32, burst int64) int {
	most := max(1, min(maxSlices, int(window)/minSliceMs))
	if burst <= 0 {
		return most
	}
	bytes := int64(players) * bitRate / 8 * int64(window) / 1000
	return max(1, min(most, int((bytes+burst-1)/burst)))
}

// repace reconsiders the group's slot count, at most every repaceEvery:
// more slots at once when its bursts grew, fewer only when a quarter fewer
// would do (a bit rate measured over a second swings with keyframes).
func (g *group) repace(now time.Time) {
	if g.window == 0 || now.Before(g.repaceAt) {
		return
	}
	g.repaceAt = now.Add(repaceEvery)
	n := g.slicesNeeded()
	if n == g.slices || (n < g.slices && n > g.slices*3/4) {
		return
	}
	g.setSlices(n, now)
}

// slicesNeeded returns the slot count the group's players and bit rate
// need in its window (slicesFor).
func (g *group) slicesNeeded() int {
	return slicesFor(len(g.players), g.key.hub.BitRate(), g.window, g.srv.paceBurst.Load())
}

// setSlices cuts the window into n slots from now on.
func (g *group) setSlices(n int, now time.Time) {
	g.slices = n
	g.slice = max(int64(g.window)/int64(n), 1)
	g.phase = int64(g.srv.loopIndex(g.key.loop)) * g.slice / int64(max(g.srv.loops, 1))
	g.slotPos = g.slotAt(now.UnixMilli()) - 1 // the slot now starting is written by this flush
	g.repaceAt = now.Add(repaceEvery)
}

// slotAt numbers the slot wall-clock millisecond ms falls in. A window is
// cut into exactly g.slices slots (of g.slice or g.slice+1 ms), so the
// slots come round once per window, in step with input that an origin
// merges at the same window.
func (g *group) slotAt(ms int64) int64 {
	t, w, n := ms+g.phase, int64(g.window), int64(g.slices)
	return t/w*n + t%w*n/w
}

// untilNextSlot returns the milliseconds from ms to the start of the next slot.
func (g *group) untilNextSlot(ms int64) int64 {
	t, w, n := ms+g.phase, int64(g.window), int64(g.slices)
	k := t%w*n/w + 1 // the next slot in this window (n: the next window's first)
	return max(t/w*w+(k*w+n-1)/n-t, 1)
}

// Wake makes sure a flush comes. With merged writes, paced flushes run
// every slice while players have media to get. With window 0 it flushes at
// every video frame: the audio in between rides with the next frame (at
// most one frame interval later; audio-only streams are written message by
// message), so a player costs one write per frame.
func (g *group) Wake(ts uint32, kind edge.Kind, force bool) {
	if force {
		g.forceAll.Store(true)
		g.schedule()
		return
	}
	if g.merged.Load() {
		if !g.paced.Load() {
			g.schedule()
		}
		return
	}
	if kind == edge.KindVideo || !g.key.hub.HasVideo() {
		g.schedule()
		return
	}
	if d := int32(ts - g.lastWake.Load()); d > -1000 && d < frameWindow { // small backward steps are audio/video interleaving
		return
	}
	g.lastWake.Store(ts)
	g.schedule()
}

// Need is the oldest packet this group's players still have to send.
func (g *group) Need() uint64 { return g.need.Load() }

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

// isDue reports whether p is written by a flush at nowMs of the slots in
// mask: at its slot, or, if it took all it was offered, as soon as a
// window passed since its last write (media that missed its slot by a
// little, as input bursts drift against the slots, does not wait a whole
// window more; the previous window, for a write before the window last
// changed).
func (g *group) isDue(p *player, mask uint64, nowMs int64) bool {
	if p.gone || p.closing || p.paused {
		return false
	}
	w := int64(g.window)
	if p.lastWrite < g.switched {
		w = int64(g.windowFor(!g.busy)) // the window before the switch
	}
	overdue := g.window > 0 && p.drained && nowMs-p.lastWrite >= w
	return p.due || mask&(1<<(p.seq%g.slices)) != 0 || overdue
}

// dueSlots returns the slots whose time came since the last flush, as a
// bit mask, and moves the group's clock to now.
func (g *group) dueSlots(now time.Time) uint64 {
	all := g.forceAll.Swap(false)
	if g.window == 0 {
		return 1
	}
	pos := g.slotAt(now.UnixMilli())
	var mask uint64
	if d := pos - g.slotPos; all || d >= int64(g.slices) || d < 0 {
		mask = 1<<g.slices - 1
	} else {
		for q := g.slotPos + 1; q <= pos; q++ {
			mask |= 1 << (q % int64(g.slices))
		}
	}
	g.slotPos = pos
	return mask
}

func (g *group) flush(now time.Time) {
	g.paced.Store(false) // appends from now on schedule a flush until the next one is armed
	if c := g.srv.config(); c != g.cfg {
		g.reconfigure(c)
	}
	if len(g.players) == 0 {
		return
	}
	g.followBusy(now)
	g.repace(now)
	mask := g.dueSlots(now)
	nowMs := now.UnixMilli()
	g.retry = false
	from := edge.NoNeed
	for _, p := range g.players {
		if g.isDue(p, mask, nowMs) {
			from = min(from, p.cursor)
		}
	}
	s := &g.ls.scratch.snap
	if from != edge.NoNeed {
		// Blocks the hub retires while the packets are written here are not
		// carved again until Exit (pool.Blocks).
		g.ls.reader.Enter()
		defer func() {
			clear(s.Packets) // no media held until the next flush
			clear(s.Headers)
			g.ls.reader.Exit()
		}()
		g.key.hub.Snapshot(from, s)
		// Players that close during the flush stay in the slice (marked
		// gone) until it ends, so the loop below never meets a hole.
		g.flushing = true
		for _, p := range g.players {
			if g.isDue(p, mask, nowMs) {
				g.writePlayer(p, s, now)
			}
		}
		g.flushing = false
		g.srv.tele.Flush.Observe(time.Since(now))
	}
	g.removeGone()
	if g.publishNeed(g.key.hub.Head()) && g.window > 0 {
		// Players have media waiting: the loop's clock flushes at the next
		// slot, or sooner to go on with writes the kernel cut short.
		g.paced.Store(true)
		d := time.Duration(g.untilNextSlot(now.UnixMilli())) * time.Millisecond
		if g.retry {
			d = min(d, retryDelay)
		}
		g.ls.flushAt(g, now.Add(d).UnixNano())
	}
}

// publishNeed tells the hub which packets the players still need and
// reports whether some player has media before head left to get.
func (g *group) publishNeed(head uint64) bool {
	need := edge.NoNeed
	waiting := false
	for _, p := range g.players {
		if !p.paused && !p.gone && !p.closing {
			need = min(need, p.cursor)
			waiting = waiting || p.cursor < head || len(p.pending) > 0
		}
	}
	g.need.Store(need)
	return waiting
}

// lag returns how far p is behind the live edge: the media time from its
// next packet to the newest, plus what its socket still holds unsent (the
// kernel's queue, turned into time at the stream's bit rate). Only called
// for players that did not take their last write whole.
func (g *group) lag(p *player, s *edge.Snapshot) time.Duration {
	var lag time.Duration
	if p.cursor < s.Head {
		lag = time.Duration(int32(s.LastTS-s.Packets[p.cursor-s.Start].Timestamp)) * time.Millisecond
	}
	if rate := g.key.hub.BitRate(); rate > 0 {
		if queued, err := unix.IoctlGetInt(p.fd, unix.SIOCOUTQ); err == nil && queued > 0 {
			lag += time.Duration(int64(queued) * 8 * int64(time.Second) / rate)
		}
	}
	return lag
}

// skip moves a player that fell behind to the newest keyframe: the GOP's
// when it lies ahead of the player, else the next one to come.
func (g *group) skip(p *player, s *edge.Snapshot, now time.Time) {
	target := s.Head
	if s.Gop >= max(p.cursor, s.Start) && s.Gop < s.Head {
		target = s.Gop
	}
	p.cursor = target
	p.waitKey, p.needHeaders = true, true
	p.skips++
	g.srv.tele.PlayerSkips.Add(1)
	if p.overSince.IsZero() {
		p.overSince = now
	}
	p.ss.log.Debug("player behind its backlog, skipped to a keyframe", "backlog", g.backlog, "skips", p.skips)
}

func (g *group) writePlayer(p *player, s *edge.Snapshot, now time.Time) {
	p.due = false
	if p.cursor > s.Head {
		p.cursor = s.Head
	}
	// A player that took all it was offered last time keeps up, however
	// much media came since (a publisher may send faster than real time).
	behind := p.cursor < s.Start
	if !behind && !p.drained {
		if lag := g.lag(p, s); lag > g.backlog {
			behind = true
			if p.overSince.IsZero() { // it crossed the backlog this long ago
				p.overSince = now.Add(g.backlog - lag)
			}
		}
	}
	if behind {
		g.skip(p, s, now)
	}
	if !p.overSince.IsZero() && g.lagLimit > 0 && now.Sub(p.overSince) > g.lagLimit {
		p.closing = true
		g.srv.tele.LagDisconnects.Add(1)
		p.ss.setReason(fmt.Sprintf("player stayed behind its player_backlog %s for player_lag_timeout %s", g.backlog, g.lagLimit))
		// Reset rather than close: a graceful close keeps the unread send
		// queue in the kernel until the peer reads it or TCP gives up.
		_ = unix.SetsockoptLinger(p.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		_ = p.ss.c.Close()
		return
	}
	if p.ss.c.OutboundBuffered() > 0 {
		p.due, g.retry = true, true // gnet is still sending this player's control replies: keep the order
		return
	}

	sc := &g.ls.scratch
	iov := append(sc.iov[:0], p.pending...)
	pkts := s.Packets[p.cursor-s.Start:]
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
				iov = g.appendPacket(iov, p, &skipped[j])
			}
		}
	}
	if p.needHeaders && len(pkts) > 0 {
		for j := range s.Headers {
			iov = g.appendPacket(iov, p, &s.Headers[j])
		}
		p.needHeaders = false
	}
	first := s.Head - uint64(len(pkts)) // sequence number of pkts[0]
	extras := len(iov)
	starts := sc.starts[:0] // where each packet's buffers start in iov
	for i := range pkts {
		starts = append(starts, len(iov))
		iov = g.appendPacket(iov, p, &pkts[i])
	}
	sc.starts = starts
	defer func() { clear(iov); sc.iov = iov[:0] }()

	n, err := writevSocket(p.fd, iov, &sc.vecs)
	if err != nil {
		p.closing = true
		p.ss.setReason("write to player: " + err.Error())
		_ = p.ss.c.Close()
		return
	}
	p.ss.bytesOut.Add(uint64(n))
	if n > 0 {
		p.ss.waitingFor.Store(0)
		p.lastWrite = now.UnixMilli()
		if g.window > 0 && sendStalled(p.fd) {
			g.srv.tele.StalledSends.Add(1)
			g.srv.lastStall.Store(now.UnixNano())
		}
	}

	// Keep what the kernel did not take: the rest of the buffer it stopped
	// in, the rest of the packet (or of the extras) it belongs to, and the
	// packets after it, from the cursor on.
	i, off := 0, n
	for i < len(iov) && off >= len(iov[i]) {
		off -= len(iov[i])
		i++
	}
	oldPending := len(p.pending)
	p.pending = p.pending[:0]
	var pin *pool.Block // the block of the media packet the new pending holds part of
	switch {
	case i == len(iov):
		p.cursor = s.Head
	case i < extras:
		p.pending = append(p.pending, iov[i][off:])
		p.pending = append(p.pending, iov[i+1:extras]...)
		p.cursor = first
		if i < oldPending {
			pin = p.pin // still within the old pending (headers and notifications are not in blocks)
		}
	default:
		k := len(starts) - 1 // the packet iov[i] belongs to
		for starts[k] > i {
			k--
		}
		p.cursor = first + uint64(k)
		if i > starts[k] || off > 0 {
			end := len(iov)
			if k+1 < len(starts) {
				end = starts[k+1]
			}
			p.pending = append(p.pending, iov[i][off:])
			p.pending = append(p.pending, iov[i+1:end]...)
			p.cursor++
			pin = pkts[k].Block
		}
	}
	p.setPin(pin)
	p.drained = len(p.pending) == 0 && p.cursor == s.Head
	switch {
	case p.drained:
		p.overSince = time.Time{} // caught up with the live edge
	case n > 0:
		// The kernel took part: the link is busy, not the player gone. Go
		// on soon rather than a window later (a player that takes nothing
		// waits for its slot).
		p.due, g.retry = true, true
		p.limitUnsent(g.key.hub.BitRate())
	}
}

// setPin makes b the block p's pending keeps from being carved again
// (pool.Block.Pin), releasing the one it kept before.
func (p *player) setPin(b *pool.Block) {
	if b == p.pin {
		return
	}
	if b != nil {
		b.Pin()
	}
	if p.pin != nil {
		p.pin.Unpin()
	}
	p.pin = b
}

// minUnsent is the least TCP_NOTSENT_LOWAT of a player socket.
const minUnsent = 256 << 10

// limitUnsent bounds what the kernel holds unsent for the player to about a
// second of media (at least minUnsent): enough for a few merged writes of a
// player that reads, while one that stops reading is seen falling behind
// (its writes come back short) within about a second instead of after the
// megabytes an autotuned send buffer swallows; and the kernel memory it pins
// stays small. It only ever raises the bound, with one setsockopt.
func (p *player) limitUnsent(bitRate int64) {
	want := max(minUnsent, int(bitRate/8))
	if want <= p.lowat {
		return
	}
	if err := unix.SetsockoptInt(p.fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, want); err == nil {
		p.lowat = want
	}
}

// appendPacket appends what p gets of pkt to iov: the RTMP chunks, or the
// FLV tag (in a WebSocket frame for WebSocket players) made of slices of
// the same shared buffers. FLV players get no RTMP notifications.
func (g *group) appendPacket(iov [][]byte, p *player, pkt *edge.Packet) [][]byte {
	switch p.format {
	case formatFLV:
		return pkt.AppendFLV(iov, g.key.hub.ChunkSize(), false)
	case formatWebSocket:
		return pkt.AppendFLV(iov, g.key.hub.ChunkSize(), true)
	}
	return append(iov, pkt.Data)
}

// queueControl queues b (a control or command message for the player) behind
// a partly sent media message, which must be completed first. It reports
// false when the player has too much queued already.
func (p *player) queueControl(b []byte) bool {
	if len(p.pending) >= maxPending {
		return false
	}
	p.pending = append(p.pending, append([]byte(nil), b...))
	return true
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
func (s *Server) join(ss *session, v *conf.Vhost, f format) {
	el := ss.c.EventLoop()
	key := groupKey{hub: ss.hub, loop: el, edges: ss.fromEdge}
	s.groupsMu.Lock()
	g := s.groups[key]
	if g == nil {
		g = newGroup(s, key, v)
		s.groups[key] = g
		ss.hub.AddWaker(g)
	}
	s.groupsMu.Unlock()
	cursor, waitKey := ss.hub.Join()
	p := &player{
		ss: ss, group: g, fd: ss.c.Fd(), format: f, cursor: cursor, waitKey: waitKey, needHeaders: true,
		due: true, drained: true, seq: g.nextSeq, lastWrite: time.Now().UnixMilli(),
	}
	g.nextSeq++
	p.limitUnsent(ss.hub.BitRate())
	ss.player = p
	ss.hub.AddPlayers(1)
	s.players.Add(1)
	g.players = append(g.players, p)
	g.need.Store(min(g.need.Load(), cursor))
	g.schedule()
}

// leave removes a playing session from its group. It runs on the loop,
// possibly while the group is flushing; the player is then only marked and
// removed when the flush ends.
func (s *Server) leave(ss *session) {
	p := ss.player
	if p == nil {
		return
	}
	ss.player = nil
	p.gone = true
	p.setPin(nil) // it writes no more
	clear(p.pending)
	p.pending = nil
	ss.hub.AddPlayers(-1)
	s.players.Add(-1)
	if !p.group.flushing {
		p.group.removeGone()
	}
}

// removeGone drops the players that left; a group left empty is
// unregistered from its hub.
func (g *group) removeGone() {
	kept := g.players[:0]
	for _, p := range g.players {
		if !p.gone {
			kept = append(kept, p)
		}
	}
	clear(g.players[len(kept):])
	g.players = kept
	if len(kept) > 0 {
		return
	}
	g.need.Store(edge.NoNeed)
	g.ls.cancelFlush(g)
	s := g.srv
	s.groupsMu.Lock()
	if s.groups[g.key] == g {
		delete(s.groups, g.key)
		g.key.hub.RemoveWaker(g)
	}
	s.groupsMu.Unlock()
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
		p.waitKey, p.needHeaders, p.due = true, true, true
		p.group.schedule()
	}
}
