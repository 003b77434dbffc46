package loop

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmpedge/rtmpedge/hook"
)

// DurationBuckets are the upper bounds of DurationHistogram's buckets, in
// seconds: 100 µs to about 13 s, doubling.
var DurationBuckets = func() []float64 {
	b := make([]float64, 18)
	for i := range b {
		b[i] = 0.0001 * float64(uint(1)<<i)
	}
	return b
}()

// DurationHistogram counts durations into DurationBuckets with atomics, so
// event loops can observe without locks; metrics read it at scrape time.
type DurationHistogram struct {
	buckets [18]atomic.Uint64 // non-cumulative; a duration above the last bound counts only in count
	count   atomic.Uint64
	sumNs   atomic.Int64
}

// Observe adds one duration.
func (h *DurationHistogram) Observe(d time.Duration) {
	s := d.Seconds()
	for i, ub := range DurationBuckets {
		if s <= ub {
			h.buckets[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	h.sumNs.Add(int64(d))
}

// Snapshot returns the count, the sum in seconds and the cumulative count
// of each bucket (by its upper bound).
func (h *DurationHistogram) Snapshot() (count uint64, sum float64, cumulative map[float64]uint64) {
	cumulative = make(map[float64]uint64, len(DurationBuckets))
	var acc uint64
	for i, ub := range DurationBuckets {
		acc += h.buckets[i].Load()
		cumulative[ub] = acc
	}
	return h.count.Load(), time.Duration(h.sumNs.Load()).Seconds(), cumulative
}

// HookStats counts the deciding hooks (on_connect, on_publish, on_play) of
// one action.
type HookStats struct {
	Calls    atomic.Uint64
	Refusals atomic.Uint64 // the hook answered no
	Failures atomic.Uint64 // no answer: unreachable, timed out, malformed (also refuses)
	Latency  DurationHistogram
}

// OriginCounters count one origin's upstream connections.
type OriginCounters struct {
	Connects  atomic.Uint64 // connections attempted (pull and push)
	Failures  atomic.Uint64 // connections that failed or ended with an error
	DeadMarks atomic.Uint64 // times it was marked dead
}

// Telemetry is what the server counts for its metrics.
type Telemetry struct {
	Flush          DurationHistogram // one merged write to a group's players
	PlayerSkips    atomic.Uint64     // players skipped to a keyframe for lagging
	StalledSends   atomic.Uint64     // player writes TCP kept unsent with nothing in flight (sendStalled)
	LagDisconnects atomic.Uint64     // players disconnected for staying behind

	hooks   named[HookStats]
	origins named[OriginCounters]

	closedMu sync.Mutex
	closed   map[string]*[2]uint64 // per vhost: bytes received from and sent to connections that closed
}

// forget removes a closed session from the server's set and adds its byte
// counts to its vhost's totals, both under one lock, so ClientBytes never
// sees a session twice or not at all.
func (s *Server) forget(ss *session) {
	name := ""
	if v := ss.vhostPtr.Load(); v != nil {
		name = v.Name
	}
	t := &s.tele
	t.closedMu.Lock()
	defer t.closedMu.Unlock()
	t.addClosedLocked(name, ss.bytesIn.Load(), ss.bytesOut.Load())
	s.sessions.Delete(ss)
}

func (t *Telemetry) addClosedLocked(vhost string, in, out uint64) {
	if t.closed == nil {
		t.closed = make(map[string]*[2]uint64)
	}
	c := t.closed[vhost]
	if c == nil {
		c = &[2]uint64{}
		t.closed[vhost] = c
	}
	c[0] += in
	c[1] += out
}

// ClientBytes returns, per vhost ("" for connections that never named
// one), the bytes received from and sent to client connections since
// start, open ones included: counters that only grow.
func (s *Server) ClientBytes() map[string][2]uint64 {
	out := map[string][2]uint64{}
	s.tele.closedMu.Lock()
	defer s.tele.closedMu.Unlock()
	for v, c := range s.tele.closed {
		out[v] = *c
	}
	s.sessions.Range(func(k, _ any) bool {
		if ss, ok := k.(*session); ok {
			name := ""
			if v := ss.vhostPtr.Load(); v != nil {
				name = v.Name
			}
			c := out[name]
			c[0] += ss.bytesIn.Load()
			c[1] += ss.bytesOut.Load()
			out[name] = c
		}
		return true
	})
	return out
}

// Hook returns the stats of a hook action ("on_connect", ...).
func (t *Telemetry) Hook(action string) *HookStats { return t.hooks.get(action) }

// Hooks returns the hook actions seen so far, sorted, with their stats.
func (t *Telemetry) Hooks() ([]string, []*HookStats) { return t.hooks.sorted() }

// Origin returns the counters of origin addr.
func (t *Telemetry) Origin(addr string) *OriginCounters { return t.origins.get(addr) }

// Origins returns the origins seen so far, sorted, with their counters.
func (t *Telemetry) Origins() ([]string, []*OriginCounters) { return t.origins.sorted() }

// named holds a T per name, made at the name's first use.
type named[T any] struct {
	mu sync.Mutex
	m  map[string]*T
}

// get returns the T of name.
func (n *named[T]) get(name string) *T {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = make(map[string]*T)
	}
	v := n.m[name]
	if v == nil {
		v = new(T)
		n.m[name] = v
	}
	return v
}

// sorted returns the names seen so far, sorted, with their Ts.
func (n *named[T]) sorted() ([]string, []*T) {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := slices.Sorted(maps.Keys(n.m))
	out := make([]*T, len(names))
	for i, name := range names {
		out[i] = n.m[name]
	}
	return names, out
}

// recordHook counts one deciding hook call that took d and returned err.
func (t *Telemetry) recordHook(action string, d time.Duration, err error) {
	h := t.Hook(action)
	h.Calls.Add(1)
	h.Latency.Observe(d)
	var denied *hook.Denied
	switch {
	case err == nil:
	case errors.As(err, &denied):
		h.Refusals.Add(1)
	default:
		h.Failures.Add(1)
	}
}

// originFailed counts a failure of origin addr (and its dead mark).
func (s *Server) originFailed(addr string, markedDead bool) {
	c := s.tele.Origin(addr)
	c.Failures.Add(1)
	if markedDead {
		c.DeadMarks.Add(1)
	}
}

// Telemetry returns the server's counters for metrics.
func (s *Server) Telemetry() *Telemetry { return &s.tele }
