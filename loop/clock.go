package loop

import (
	"context"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/pool"
)

// loopState is what the server keeps for one event loop and only that
// loop's goroutine touches (except its clock's timer): the loop's clock,
// which runs everything the loop does at a time with one Go timer (the
// fan-out's paced flushes of every stream, the batched reads), and the
// connections it reads in batches. A timer per stream and loop cost a
// goroutine and a wake-up of the loop each time it fired: 1,100 a second
// for 200 streams; flushes due together now take one.
type loopState struct {
	srv *Server
	el  gnet.EventLoop

	// The clock: the timer is armed for armedAt (unix ns, 0: not armed);
	// when it fires, Run runs on the loop. mu guards armedAt against the
	// timer's goroutine.
	mu      sync.Mutex
	timer   *time.Timer
	armedAt int64

	scratch flushScratch // the fan-out's, for one flush at a time
	reader  *pool.Reader // a flush reads media blocks within Enter/Exit
	timed   []*group     // groups with a paced flush to come (at their due)

	batch     []batchReader // read every readEvery, in one pass
	readEvery time.Duration
	readAt    int64 // unix ns of the next pass (0: none)
	buf       []byte
}

// loopStateOf returns the state of event loop el, creating it.
func (s *Server) loopStateOf(el gnet.EventLoop) *loopState {
	s.loopStatesMu.Lock()
	defer s.loopStatesMu.Unlock()
	ls := s.loopStates[el]
	if ls == nil {
		ls = &loopState{srv: s, el: el, reader: s.blocks.NewReader()}
		ls.timer = time.AfterFunc(time.Hour, ls.fire)
		ls.timer.Stop()
		s.loopStates[el] = ls
	}
	return ls
}

// readInterval is the time between two passes of batched reads: readEvery,
// halved while the box is busy (capacity.busy_load), as the players'
// windows are: media read in lumps of a whole readEvery would add that
// much to a player's wait for its half window.
func (ls *loopState) readInterval() time.Duration {
	if ls.srv.busy.Load() {
		return max(ls.readEvery/2, time.Millisecond)
	}
	return ls.readEvery
}

// wakeAt makes the clock run at unix ns t or soon after (loop only).
func (ls *loopState) wakeAt(t int64) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.armedAt != 0 && ls.armedAt <= t {
		return
	}
	ls.armedAt = t
	ls.timer.Reset(time.Duration(t - time.Now().UnixNano()))
}

// fire runs on the timer's goroutine: the work is done on the loop.
func (ls *loopState) fire() {
	ls.mu.Lock()
	ls.armedAt = 0
	ls.mu.Unlock()
	_ = ls.el.Execute(context.Background(), ls)
}

// flushAt makes the clock flush g at unix ns t (loop only).
func (ls *loopState) flushAt(g *group, t int64) {
	if g.due == 0 {
		ls.timed = append(ls.timed, g)
	}
	g.due = t
	ls.wakeAt(t)
}

// cancelFlush drops g's paced flush (loop only).
func (ls *loopState) cancelFlush(g *group) {
	if g.due == 0 {
		return
	}
	g.due = 0
	for i, x := range ls.timed {
		if x == g {
			ls.dropTimed(i)
			return
		}
	}
}

func (ls *loopState) dropTimed(i int) {
	last := len(ls.timed) - 1
	ls.timed[i] = ls.timed[last]
	ls.timed[last] = nil
	ls.timed = ls.timed[:last]
}

// Run is the clock's tick, on the loop: the batched reads and the paced
// flushes that are due, then the timer armed for the next.
func (ls *loopState) Run(context.Context) error {
	t := time.Now()
	now := t.UnixNano()
	if ls.readAt != 0 && now >= ls.readAt {
		ls.readAll() // first: what they bring is in the flushes
		ls.readAt = 0
		if len(ls.batch) > 0 {
			ls.readAt = now + int64(ls.readInterval())
		}
	}
	next := ls.readAt
	for i := 0; i < len(ls.timed); {
		g := ls.timed[i]
		if g.due > now {
			if next == 0 || g.due < next {
				next = g.due
			}
			i++
			continue
		}
		ls.dropTimed(i) // the last group moved to i
		g.due = 0
		g.flush(t) // may ask for its next flush: appended, later than now
	}
	if next != 0 {
		ls.wakeAt(next)
	}
	return nil
}
