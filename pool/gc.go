package pool

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// GC pacing. The heap is mostly media: packets carved from slabs, kept
// from a stream's last keyframe on (the GOP cache) and freed together when
// the next keyframe comes. With a fixed GOGC the collector runs at every
// GOGC% of growth of the live heap, and while the GOP caches grow toward
// their keyframes every such collection finds almost nothing to free (an
// origin with 30 publishers ran three a second, 8 -> 8 -> 8 MB). TuneGC
// paces it on the largest live heap seen recently instead: the next
// collection comes when the heap reaches base% over that peak, which is
// where a fixed GOGC of base peaks at the top of the cycle anyway. The
// peak decays (halving in halfLife) rather than expiring: collections then
// mostly come right after keyframes and see a small live heap, and a
// target decayed below the real peak soon brings one just before them,
// which sees the peak again.

// gcTuner sets GOGC after every collection.
type gcTuner struct {
	base, most int // GOGC: the margin over the peak, and the most it is set to
	halfLife   time.Duration
	sample     []metrics.Sample
	mu         sync.Mutex
	peak       float64 // bytes
	at         time.Time
	set        int
}

var tuneOnce sync.Once

// TuneGC paces the garbage collector as described above, with a margin of
// base percent over the recent peak of the live heap, which halves in
// halfLife unless seen again (GOGC at least base, at most 400). It sets
// GOGC once per collection; calls after the first are ignored.
func TuneGC(base int, halfLife time.Duration) {
	tuneOnce.Do(func() {
		t := &gcTuner{base: base, most: 400, halfLife: halfLife, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, set: base}
		debug.SetGCPercent(base)
		t.arm()
	})
}

// sentinel is garbage right after it is made: its finalizer runs after the
// next collection, and makes a new one.
type sentinel struct{ _ [16]byte }

func (t *gcTuner) arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) {
		t.afterGC(time.Now())
		t.arm()
	})
}

// afterGC sets GOGC from the live heap the collection just measured.
func (t *gcTuner) afterGC(now time.Time) {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if gogc := t.next(now, t.sample[0].Value.Uint64()); gogc != t.set {
		t.set = gogc
		debug.SetGCPercent(gogc)
	}
}

// next records live at now and returns the GOGC that puts the next
// collection at base% over the recent peak.
func (t *gcTuner) next(now time.Time, live uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.at.IsZero() && t.halfLife > 0 {
		t.peak *= math.Exp2(-float64(now.Sub(t.at)) / float64(t.halfLife))
	}
	t.at = now
	t.peak = max(t.peak, float64(live))
	if live == 0 {
		return t.base
	}
	target := t.peak * (1 + float64(t.base)/100)
	gogc := int((target - float64(live)) * 100 / float64(live))
	return min(max(gogc, t.base), t.most)
}
