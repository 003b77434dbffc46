package edge

import (
	"hash/fnv"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Origins orders the origins of an edge vhost for each stream and
// remembers which ones failed recently, so they are tried last.
type Origins struct {
	mu        sync.Mutex
	list      []string
	hash      bool
	deadTTL   time.Duration
	deadUntil map[string]time.Time
}

// NewOrigins returns the origins of a vhost. With hash, each stream gets its
// own order (rendezvous hashing), the same on every edge with the same list.
func NewOrigins(list []string, hash bool, deadTTL time.Duration) *Origins {
	return &Origins{list: slices.Clone(list), hash: hash, deadTTL: deadTTL, deadUntil: make(map[string]time.Time)}
}

// Order returns the origins to try for stream, best first: the policy's
// order, with origins that failed within the dead TTL moved to the end.
func (o *Origins) Order(stream string, now time.Time) []string {
	return o.orderPreferring(stream, now, "")
}

// orderPreferring is Order with prefer (an origin a stream registry names,
// listed or not) first, unless it failed within the dead TTL.
func (o *Origins) orderPreferring(stream string, now time.Time, prefer string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	order := slices.Clone(o.list)
	if o.hash {
		scores := make(map[string]uint64, len(order))
		for _, addr := range order {
			h := fnv.New64a()
			h.Write([]byte(stream))
			h.Write([]byte{0})
			h.Write([]byte(addr))
			scores[addr] = h.Sum64()
		}
		slices.SortStableFunc(order, func(a, b string) int {
			switch {
			case scores[a] > scores[b]:
				return -1
			case scores[a] < scores[b]:
				return 1
			}
			return 0
		})
	}
	isDead := func(addr string) bool {
		until, ok := o.deadUntil[addr]
		return ok && now.Before(until)
	}
	alive := order[:0:0]
	var dead []string
	if prefer != "" && !isDead(prefer) {
		alive = append(alive, prefer)
	}
	for _, addr := range order {
		switch {
		case addr == prefer && len(alive) > 0 && alive[0] == prefer:
		case isDead(addr):
			dead = append(dead, addr)
		default:
			alive = append(alive, addr)
		}
	}
	return append(alive, dead...)
}

// Update replaces the list and policy (a configuration reload). Streams
// take the new order at their next round of attempts; an origin still in
// the list keeps its dead mark.
func (o *Origins) Update(list []string, hash bool, deadTTL time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list, o.hash, o.deadTTL = slices.Clone(list), hash, deadTTL
	for addr := range o.deadUntil {
		if !slices.Contains(list, addr) {
			delete(o.deadUntil, addr)
		}
	}
}

// Failed records that addr just failed; it reports whether addr is now
// marked dead (tried last for dead_origin_ttl).
func (o *Origins) Failed(addr string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.deadTTL <= 0 {
		return false
	}
	o.deadUntil[addr] = now.Add(o.deadTTL)
	return true
}

// Worked records that addr served a stream.
func (o *Origins) Worked(addr string) {
	o.mu.Lock()
	delete(o.deadUntil, addr)
	o.mu.Unlock()
}

// MaxRedirects bounds the redirects followed in one round of attempts, so
// origins that send a stream to each other cannot hold an upstream in a
// loop: past it a redirect counts as a failure of the origin that sent it.
const MaxRedirects = 3

// Attempts walks the origins for one stream: the policy's order (with the
// origin a registry names first), the next origin after a failure, a wait
// once a whole round failed, and redirects. It is not safe for concurrent
// use.
type Attempts struct {
	origins    *Origins
	stream     string
	retryMin   time.Duration
	retryMax   time.Duration
	order      []string
	next       int
	failed     int // failed attempts in the current round
	backoff    time.Duration
	redirected string
	redirects  int    // redirects followed in the current round
	prefer     string // first origin of the next round
}

// NewAttempts returns the attempts for stream, waiting retryMin (doubling
// up to retryMax) after each round in which every origin failed.
func (o *Origins) NewAttempts(stream string, retryMin, retryMax time.Duration) *Attempts {
	return &Attempts{origins: o, stream: stream, retryMin: retryMin, retryMax: retryMax}
}

// NewRound reports whether the next call to Next starts a round (orders
// the origins afresh): the moment to ask a stream registry where the
// stream is, and to Prefer that origin.
func (a *Attempts) NewRound() bool {
	return a.redirected == "" && a.next >= len(a.order) && !a.roundFailed()
}

func (a *Attempts) roundFailed() bool { return a.order != nil && a.failed >= len(a.order) }

// Prefer puts addr first in the next round, unless it failed within the
// dead TTL; "" prefers nothing. addr need not be one of the list.
func (a *Attempts) Prefer(addr string) { a.prefer = addr }

// Next returns the origin to try now; ok is false when every origin of
// the round failed, and wait says how long to wait before calling again.
func (a *Attempts) Next(now time.Time) (addr string, wait time.Duration, ok bool) {
	if a.redirected != "" {
		addr, a.redirected = a.redirected, ""
		return addr, 0, true
	}
	if a.next >= len(a.order) {
		if a.roundFailed() {
			a.backoff = min(max(2*a.backoff, a.retryMin), a.retryMax)
			a.failed, a.order = 0, nil
			return "", a.backoff, false
		}
		a.order = a.origins.orderPreferring(a.stream, now, a.prefer)
		a.next, a.redirects, a.prefer = 0, 0, ""
	}
	addr = a.order[a.next]
	a.next++
	return addr, 0, true
}

// Failed records that addr failed and reports whether it was marked dead.
// An origin that was serving starts a fresh round at once (with addr tried
// last); otherwise the round goes on.
func (a *Attempts) Failed(addr string, wasServing bool, now time.Time) (markedDead bool) {
	markedDead = a.origins.Failed(addr, now)
	if wasServing {
		a.order, a.next, a.failed = nil, 0, 1
		return markedDead
	}
	a.failed++
	return markedDead
}

// Worked records that addr accepted the stream.
func (a *Attempts) Worked(addr string) {
	a.origins.Worked(addr)
	a.failed, a.backoff = 0, 0
}

// Redirect makes the next attempt go to the host of tcURL (an origin's
// ex.redirect). It reports false, following nothing, when tcURL names no
// host or the round already followed MaxRedirects redirects; the caller
// then records a failure. A redirect followed is not a failure of the
// origin that sent it.
func (a *Attempts) Redirect(tcURL string) (string, bool) {
	u, err := url.Parse(tcURL)
	if err != nil || u.Host == "" || a.redirects >= MaxRedirects {
		return "", false
	}
	a.redirects++
	a.redirected = u.Host
	if u.Port() == "" {
		a.redirected = net.JoinHostPort(u.Hostname(), "1935")
	}
	return a.redirected, true
}

// OriginState is one origin of a vhost as its edge sees it.
type OriginState struct {
	Addr      string
	DeadUntil time.Time // zero: alive (tried in the policy's order)
}

// States returns the origins in list order with their dead marks.
func (o *Origins) States(now time.Time) []OriginState {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]OriginState, len(o.list))
	for i, addr := range o.list {
		out[i].Addr = addr
		if until, ok := o.deadUntil[addr]; ok && now.Before(until) {
			out[i].DeadUntil = until
		}
	}
	return out
}
