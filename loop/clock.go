package loop

import (
	"context"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// loopState is what the server keeps for one event loop and only that
// loop's goroutine touches (except its clock's timer): the loop's clock,
// which runs everything the loop does at a time with one Go timer, and
// the connections it reads in batches.
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
		ls = &loopState{srv: s, el: el}
		ls.timer = time.AfterFunc(time.Hour, ls.fire)
		ls.timer.Stop()
		s.loopStates[el] = ls
	}
	return ls
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

// Run is the clock's tick, on the loop: the batched reads when due.
func (ls *loopState) Run(context.Context) error {
	now := time.Now().UnixNano()
	if ls.readAt != 0 && now >= ls.readAt {
		ls.readAll()
		ls.readAt = 0
		if len(ls.batch) > 0 {
			ls.readAt = now + int64(ls.readEvery)
		}
	}
	if ls.readAt != 0 {
		ls.wakeAt(ls.readAt)
	}
	return nil
}
