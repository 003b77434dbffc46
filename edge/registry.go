package edge

import "sync"

// Registry holds the hubs of a server, one per stream key, alive while a
// publisher or a player holds them.
type Registry struct {
	mu   sync.Mutex
	hubs map[Key]*Hub
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{hubs: make(map[Key]*Hub)}
}

// Acquire returns the hub of key, creating it with opts if needed, and
// holds it until Release.
func (r *Registry) Acquire(key Key, opts Options) *Hub {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hubs[key]
	if h == nil {
		h = newHub(key, opts)
		r.hubs[key] = h
	}
	h.refs++
	return h
}

// Release gives up one hold on h; the last one removes it.
func (r *Registry) Release(h *Hub) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h.refs--
	if h.refs <= 0 && r.hubs[h.key] == h {
		delete(r.hubs, h.key)
	}
}

// Len returns the number of live streams.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hubs)
}

// Each calls f for every live stream, under the registry's lock: f must not
// call back into the registry.
func (r *Registry) Each(f func(*Hub)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.hubs {
		f(h)
	}
}

// Publishing reports whether the stream key exists and has a publisher.
func (r *Registry) Publishing(key Key) bool {
	r.mu.Lock()
	h := r.hubs[key]
	r.mu.Unlock()
	return h != nil && h.Publishing()
}
