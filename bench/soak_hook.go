package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// soakHook is the soak's hook server (the edge's on_connect and on_play):
// it allows everything, at once ("ok"), after a delay ("slow"), or not at
// all because its listener is closed ("down": connections refused, which
// the edge takes as a refusal).
type soakHook struct {
	addr  string
	delay time.Duration
	srv   *http.Server

	mu     sync.Mutex
	ln     net.Listener
	mode   string
	phases []hookSpan
	counts map[string]int // "action mode" -> requests
	served sync.WaitGroup
}

type hookSpan struct {
	mode string
	from time.Time
}

// SoakHookResult is what the hook server saw.
type SoakHookResult struct {
	Requests map[string]int `json:"requests"` // by "action, phase"
}

func newSoakHook(addr string, delay time.Duration) *soakHook {
	h := &soakHook{addr: addr, delay: delay, mode: "ok", counts: map[string]int{},
		phases: []hookSpan{{"ok", time.Now()}}}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	return h
}

func (h *soakHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Action string `json:"action"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req)
	h.mu.Lock()
	mode := h.mode
	h.counts[req.Action+", "+mode]++
	h.mu.Unlock()
	if mode == "slow" {
		t := time.NewTimer(h.delay)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
	_, _ = io.WriteString(w, "0")
}

// up opens the listener and serves it.
func (h *soakHook) up() error {
	var ln net.Listener
	var err error
	for range 20 { // the old socket's port may take a moment
		if ln, err = net.Listen("tcp", h.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("hook: listen %s: %w", h.addr, err)
	}
	h.mu.Lock()
	h.ln = ln
	h.mu.Unlock()
	h.served.Add(1)
	go func() {
		defer h.served.Done()
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			fmt.Println("hook server:", err)
		}
	}()
	return nil
}

// setMode switches the phase; "down" closes the listener, leaving it
// reopens it.
func (h *soakHook) setMode(mode string) error {
	h.mu.Lock()
	old := h.mode
	h.mode = mode
	h.phases = append(h.phases, hookSpan{mode, time.Now()})
	ln := h.ln
	h.mu.Unlock()
	switch {
	case mode == "down" && old != "down":
		return ln.Close()
	case mode != "down" && old == "down":
		return h.up()
	}
	return nil
}

// cycle runs the configured phases in turn until ctx is done.
func (h *soakHook) cycle(ctx context.Context, s *soaker) {
	phases := s.cfg.HookPhases
	for i := 0; ctx.Err() == nil; i++ {
		ph := phases[i%len(phases)]
		if i > 0 || ph.Mode != "ok" {
			if err := h.setMode(ph.Mode); err != nil {
				s.event("hook failed", err.Error())
			}
			s.event("hook "+ph.Mode, fmt.Sprintf("for %s", ph.For))
		}
		if !sleepCtx(ctx, ph.For) {
			return
		}
	}
}

// phaseAt returns the hook's mode at t.
func (h *soakHook) phaseAt(t time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	mode := h.phases[0].mode
	for _, p := range h.phases {
		if p.from.After(t) {
			break
		}
		mode = p.mode
	}
	return mode
}

func (h *soakHook) close() {
	_ = h.srv.Close()
	h.served.Wait()
}

func (h *soakHook) result() SoakHookResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := SoakHookResult{Requests: map[string]int{}}
	for k, v := range h.counts {
		r.Requests[k] = v
	}
	return r
}
