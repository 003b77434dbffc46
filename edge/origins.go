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
	alive := order[:0:0]
	var dead []string
	for _, addr := range order {
		if until, ok := o.deadUntil[addr]; ok && now.Before(until) {
			dead = append(dead, addr)
		} else {
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

// Attempts walks the origins for one stream: the policy's order, the next
// origin after a failure, a wait once a whole round failed, and redirects.
// It is not safe for concurrent use.
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
}

// NewAttempts returns the attempts for stream, waiting retryMin (doubling
// up to retryMax) after each round in which every origin failed.
func (o *Origins) NewAttempts(stream string, retryMin, retryMax time.Duration) *Attempts {
	return &Attempts{origins: o, stream: stream, retryMin: retryMin, retryMax: retryMax}
}

// Next returns the origin to try now; ok is false when every origin of
// the round failed, and wait says how long to wait before calling again.
func (a *Attempts) Next(now time.Time) (addr string, wait time.Duration, ok bool) {
	if a.redirected != "" {
		addr, a.redirected = a.redirected, ""
		return addr, 0, true
	}
	if a.next >= len(a.order) {
		if a.order != nil && a.failed >= len(a.order) {
			a.backoff = min(max(2*a.backoff, a.retryMin), a.retryMax)
			a.failed, a.order = 0, nil
			return "", a.backoff, false
		}
		a.order = a.origins.Order(a.stream, now)
		a.next = 0
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
// ex.redirect); it reports whether tcURL named a host.
func (a *Attempts) Redirect(tcURL string) (string, bool) {
	u, err := url.Parse(tcURL)
	if err != nil || u.Host == "" {
		return "", false
	}
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
