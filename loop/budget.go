package loop

import (
	"cmp"
	"fmt"
	"slices"
)

// Process-wide budget for reassembly memory (max_inflight_bytes). Each
// client session publishes what its chunk reader holds in session.held and
// adds the changes to Server.inflight, both atomics, once per read; only
// when the total goes over the limit does a session scan the others.

// account publishes the memory the connection's input holds after a read
// (the reader's buffers plus unread bytes left in gnet's buffer) and, when
// the server's total goes over max_inflight_bytes, reclaims. Loop only.
func (ss *session) account(unread int) {
	if ss.rd == nil || ss.gone { // closed (inside a write): its share was given back
		return
	}
	h := int64(ss.rd.Held() + unread)
	d := h - ss.held.Load()
	if d == 0 {
		return
	}
	ss.held.Store(h)
	if ss.srv.inflight.Add(d) > int64(ss.srv.config().MaxInflightBytes) && d > 0 {
		ss.srv.reclaim()
	}
}

// holder is a session and the reassembly memory it held at a scan.
type holder struct {
	ss   *session
	held int64
}

// reclaim closes the client connections holding the most reassembly memory
// until the others fit in 7/8 of max_inflight_bytes. Connections already
// chosen (closing) do not count. One scan at a time; a session that finds a
// scan running goes on (it will scan again at its next growth if still over).
func (s *Server) reclaim() {
	if !s.reclaimMu.TryLock() {
		return
	}
	defer s.reclaimMu.Unlock()
	limit := int64(s.config().MaxInflightBytes)
	var live int64
	hs := s.reclaimScratch[:0]
	s.sessions.Range(func(k, _ any) bool {
		if ss, ok := k.(*session); ok && !ss.doomed.Load() {
			if h := ss.held.Load(); h > 0 {
				hs = append(hs, holder{ss, h})
				live += h
			}
		}
		return true
	})
	defer func() { clear(hs); s.reclaimScratch = hs[:0] }()
	if live <= limit {
		return // over only by connections that are closing
	}
	slices.SortFunc(hs, func(a, b holder) int { return cmp.Compare(b.held, a.held) })
	target := limit - limit/8
	for _, h := range hs {
		if live <= target {
			break
		}
		if !h.ss.doomed.CompareAndSwap(false, true) {
			continue
		}
		s.log.Warn("max_inflight_bytes exceeded: closing the connection holding the most partial-message memory",
			"id", h.ss.id, "client", h.ss.remote, "held", h.held, "inflight", live, "max_inflight_bytes", limit)
		live -= h.held
		h.ss.setReason(fmt.Sprintf("over max_inflight_bytes (%d bytes in partial messages of all connections): this one held %d, among the most", limit, h.held))
		_ = h.ss.c.Close()
	}
}
