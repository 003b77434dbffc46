package edge

import (
	"hash/fnv"
	"slices"
	"sync"
	"time"
)

// Origins orders the origins of an edge vhost for each stream and
// remembers which ones failed recently, so they are tried last.
type Origins struct {
	list    []string
	hash    bool
	deadTTL time.Duration

	mu        sync.Mutex
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
	o.mu.Lock()
	defer o.mu.Unlock()
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

// Failed records that addr just failed.
func (o *Origins) Failed(addr string, now time.Time) {
	if o.deadTTL <= 0 {
		return
	}
	o.mu.Lock()
	o.deadUntil[addr] = now.Add(o.deadTTL)
	o.mu.Unlock()
}

// Worked records that addr served a stream.
func (o *Origins) Worked(addr string) {
	o.mu.Lock()
	delete(o.deadUntil, addr)
	o.mu.Unlock()
}
