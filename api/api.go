// Package api serves the server's HTTP API on a listener of its own: JSON
// under /api/v1 with SRS's paths and field names (versions, summaries,
// vhosts, streams, clients; DELETE a client to kick it), what an edge adds
// (each stream's upstream, each vhost's origins and their dead marks), a
// health check, live reload, and Prometheus metrics at /metrics.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/loop"
)

// SRS's error codes, for scripts written against it.
const (
	codeOK             = 0
	codeStreamNotFound = 2048
	codeClientNotFound = 2049
	codeVhostNotFound  = 1018
	codeReloadFailed   = 1061
	codeBadRequest     = 1001
)

// Paging defaults and limits (start, count), as SRS pages.
const (
	defaultCount = 10
	maxCount     = 10000
)

// API is the HTTP API of one server.
type API struct {
	srv     *loop.Server
	log     *slog.Logger
	version string
	metrics http.Handler
	rates   *rates
	mux     *http.ServeMux

	auth atomic.Pointer[string] // "user:password" or ""

	mu     sync.Mutex
	listen string
	hs     *http.Server
	done   chan struct{}
}

// New returns the API of srv; metrics serves /metrics (nil: 404).
func New(srv *loop.Server, log *slog.Logger, version string, metrics http.Handler) *API {
	a := &API{srv: srv, log: log.With("component", "api"), version: version, metrics: metrics, rates: newRates(srv)}
	a.mux = a.routes()
	return a
}

// Start serves the API if cfg has api.listen, and follows the server's
// reloads: a new address moves the listener, new auth applies at once.
func (a *API) Start(cfg *conf.Config) error {
	a.srv.OnReload(func(_, c *conf.Config) error { return a.apply(c) })
	return a.apply(cfg)
}

// apply puts cfg's api settings in force.
func (a *API) apply(cfg *conf.Config) error {
	auth := cfg.API.Auth
	a.auth.Store(&auth)
	a.mu.Lock()
	defer a.mu.Unlock()
	if cfg.API.Listen == a.listen {
		return nil
	}
	var ln net.Listener
	if cfg.API.Listen != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.API.Listen); err != nil {
			return fmt.Errorf("api listen %s: %w", cfg.API.Listen, err)
		}
	}
	a.stopLocked()
	a.listen = cfg.API.Listen
	if ln == nil {
		return nil
	}
	a.rates.start()
	hs := &http.Server{
		Handler:           a.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	a.hs, a.done = hs, done
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("api server failed", "err", err)
		}
	}()
	a.log.Info("api listening", "listen", cfg.API.Listen, "auth", auth != "")
	return nil
}

// stopLocked closes the listener in use, letting requests in flight end.
func (a *API) stopLocked() {
	if a.hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.hs.Shutdown(ctx)
	<-a.done
	a.hs, a.done = nil, nil
	a.log.Info("api stopped listening", "listen", a.listen)
}

// Close stops serving.
func (a *API) Close() {
	a.mu.Lock()
	a.stopLocked()
	a.listen = ""
	a.mu.Unlock()
	a.rates.stop()
}

func (a *API) routes() *http.ServeMux {
	m := http.NewServeMux()
	open := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, h) }
	auth := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, a.authorized(h)) }

	open("GET /api/v1/health", a.health)
	open("GET /healthz", a.health)
	auth("GET /api/v1/{$}", a.index)
	auth("GET /api/v1/versions", a.versions)
	auth("GET /api/v1/summaries", a.summaries)
	auth("GET /api/v1/vhosts", a.vhosts)
	auth("GET /api/v1/vhosts/{$}", a.vhosts)
	auth("GET /api/v1/vhosts/{id}", a.vhost)
	auth("GET /api/v1/streams", a.streams)
	auth("GET /api/v1/streams/{$}", a.streams)
	auth("GET /api/v1/streams/{id}", a.stream)
	auth("GET /api/v1/clients", a.clients)
	auth("GET /api/v1/clients/{$}", a.clients)
	auth("GET /api/v1/clients/{id}", a.client)
	auth("DELETE /api/v1/clients/{id}", a.kick)
	auth("POST /api/v1/reload", a.reload)
	auth("GET /api/v1/raw", a.raw)
	if a.metrics != nil {
		m.Handle("GET /metrics", a.authorized(a.metrics.ServeHTTP))
	}
	return m
}

// authorized checks HTTP basic authentication when api.auth is set.
func (a *API) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if want := *a.auth.Load(); want != "" {
			user, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(user+":"+pass), []byte(want)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="rtmpedge"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		h(w, r)
	}
}

// reply writes SRS's envelope (code, server, service, pid) with fields.
func (a *API) reply(w http.ResponseWriter, status, code int, fields map[string]any) {
	body := map[string]any{
		"code": code, "server": a.srv.ServerID(), "service": a.srv.ServerID(), "pid": strconv.Itoa(os.Getpid()),
	}
	for k, v := range fields {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}

func (a *API) fail(w http.ResponseWriter, status, code int, msg string) {
	a.reply(w, status, code, map[string]any{"error": msg})
}

// health answers load balancers: 200 while the server serves.
func (a *API) health(w http.ResponseWriter, _ *http.Request) {
	c := a.srv.Counters()
	a.reply(w, http.StatusOK, codeOK, map[string]any{
		"ok": true, "uptime_s": int64(time.Since(c.Started).Seconds()), "connections": c.Connections,
	})
}

func (a *API) index(w http.ResponseWriter, _ *http.Request) {
	a.reply(w, http.StatusOK, codeOK, map[string]any{"urls": map[string]string{
		"versions":  "the version of the server",
		"summaries": "the summary (pid, uptime, memory, cpu, connections, load)",
		"vhosts":    "the vhosts, with an edge's origins and their dead marks",
		"streams":   "the streams (?start=&count=), with an edge's upstream",
		"clients":   "the clients (?start=&count=); DELETE /api/v1/clients/ID kicks one",
		"health":    "200 while the server serves (no authentication)",
		"reload":    "POST: reload the configuration file (also GET /api/v1/raw?rpc=reload)",
		"metrics":   "/metrics: Prometheus metrics",
	}})
}

func (a *API) versions(w http.ResponseWriter, _ *http.Request) {
	major, minor, rev := splitVersion(a.version)
	a.reply(w, http.StatusOK, codeOK, map[string]any{"data": map[string]any{
		"major": major, "minor": minor, "revision": rev, "version": a.version,
	}})
}

// reload re-reads the configuration file; an invalid one changes nothing.
func (a *API) reload(w http.ResponseWriter, _ *http.Request) {
	rep, err := a.srv.ReloadFile()
	if err != nil {
		a.fail(w, http.StatusBadRequest, codeReloadFailed, err.Error())
		return
	}
	a.reply(w, http.StatusOK, codeOK, map[string]any{"data": rep})
}

// raw is SRS's RPC path; rpc=reload is the one supported.
func (a *API) raw(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("rpc") != "reload" {
		a.fail(w, http.StatusBadRequest, codeBadRequest, "only rpc=reload is supported")
		return
	}
	a.reload(w, r)
}

// page returns the start and count query parameters (SRS's paging).
func page(r *http.Request) (start, count int) {
	q := r.URL.Query()
	start, _ = strconv.Atoi(q.Get("start"))
	count, err := strconv.Atoi(q.Get("count"))
	if err != nil || count <= 0 {
		count = defaultCount
	}
	return max(start, 0), min(count, maxCount)
}

// paged converts the page of all that r asks for (start and count).
func paged[T, J any](r *http.Request, all []T, conv func(T) J) []J {
	start, count := page(r)
	items := window(all, start, count)
	out := make([]J, 0, len(items))
	for _, x := range items {
		out = append(out, conv(x))
	}
	return out
}

// window returns items[start:start+count], clamped.
func window[T any](items []T, start, count int) []T {
	if start >= len(items) {
		return []T{}
	}
	return items[start:min(len(items), start+count)]
}

// splitVersion reads "1.2.3" (with a v or suffixes) into numbers; a build
// without a release tag is 0.0.0.
func splitVersion(v string) (major, minor, rev int) {
	var n [3]int
	i := 0
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			n[i] = n[i]*10 + int(c-'0')
		case c == '.' && i < 2:
			i++
		case c == 'v' && i == 0 && n[0] == 0:
		default:
			return n[0], n[1], n[2]
		}
	}
	return n[0], n[1], n[2]
}
