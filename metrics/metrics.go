// Package metrics exposes a server's counters to Prometheus. Everything is
// read from the server when scraped (a custom collector), so counting
// costs the event loops nothing beyond the atomics they already keep.
//
// It uses prometheus/client_golang rather than VictoriaMetrics/metrics,
// which costs less memory (measured here: importing it adds 0.3 MB to an
// idle process's RSS against 2.9 MB) but writes HELP lines without text,
// which `promtool check metrics` refuses, and histograms in its own
// vmrange form.
package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtmpedge/rtmpedge/loop"
)

const ns = "rtmpedge"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

var (
	descBuild        = desc("build_info", "The running version (value 1).", "version")
	descStart        = desc("start_time_seconds", "When the server started, in Unix seconds.")
	descConnections  = desc("connections", "Client connections open, by protocol and role.", "protocol", "role")
	descStreams      = desc("streams", "Live streams (published, pulled from an origin, or awaited by players).")
	descPublishing   = desc("streams_publishing", "Streams that have a source.")
	descUpstreams    = desc("upstreams", "Edge upstream connections (one per pulled stream).")
	descPlayers      = desc("players", "Players connected, by vhost.", "vhost")
	descRecv         = desc("received_bytes_total", "Bytes received from client connections, by vhost.", "vhost")
	descSent         = desc("sent_bytes_total", "Bytes sent to client connections, by vhost.", "vhost")
	descOriginConn   = desc("upstream_connects_total", "Connections opened to an origin (pulls and forwarded publishes).", "origin")
	descOriginFail   = desc("upstream_failures_total", "Origin connections that failed or broke (each one a failover).", "origin")
	descOriginDead   = desc("origin_dead_marks_total", "Times an origin was marked dead (tried last for dead_origin_ttl).", "origin")
	descOriginAlive  = desc("origin_up", "1 while an edge vhost's origin is not marked dead.", "vhost", "origin")
	descHookCalls    = desc("hook_calls_total", "Deciding hook calls (on_connect, on_publish, on_play).", "action")
	descHookRefused  = desc("hook_refusals_total", "Hook calls answered with a refusal.", "action")
	descHookFailed   = desc("hook_failures_total", "Hook calls that got no valid answer (unreachable, timeout), which refuse too.", "action")
	descHookLatency  = desc("hook_duration_seconds", "Time a deciding hook took to answer.", "action")
	descNotify       = desc("notifications_total", "Notification hooks (on_unpublish, on_stop, on_close) by outcome.", "result")
	descSkips        = desc("player_skips_total", "Players skipped ahead to a keyframe for falling behind player_backlog.")
	descLagDrops     = desc("player_lag_disconnects_total", "Players disconnected for staying behind for player_lag_timeout.")
	descRefused      = desc("plays_refused_total", "Plays refused or redirected by a capacity limit.")
	descFlush        = desc("flush_duration_seconds", "Time one merged write to a stream's players on an event loop took.")
	descAcceptErrors = desc("accept_errors_total", "Connections that could not be accepted (out of file descriptors, say).")
	descKicks        = desc("kicks_total", "Clients closed through the API.")
	descReloads      = desc("config_reloads_total", "Configuration reloads by result.", "result")
	descLastReload   = desc("config_last_reload_timestamp_seconds", "When the configuration was last reloaded (0: never).")
	descInflight     = desc("inflight_bytes", "Bytes held in partly received messages (bounded by max_inflight_bytes).")
	descRegistryUp   = desc("registry_enabled", "1 when a stream registry (cluster.registry) is configured.")
	descRegistryReq  = desc("registry_events_total", "Stream registry events: errors (requests failed or timed out), lookups, found, claims, conflicts, takeovers, reclaims, lost.", "event")
	descRegistryHeld = desc("registry_claims_held", "Stream claims this server holds in the registry.")
	descPlayRedirect = desc("cluster_play_redirects_total", "Players redirected to the origin that has their stream.")
	descPubConflict  = desc("cluster_publish_conflicts_total", "Publishes refused or redirected because another origin has the stream.")
)

// collector reads a server at each scrape.
type collector struct {
	srv     *loop.Server
	version string
}

// Handler returns the /metrics handler of srv: its counters, the Go
// runtime's and the process's.
// The registry and its collectors are built at the first scrape, so a
// server nobody scrapes does not pay for them.
func Handler(srv *loop.Server, version string) http.Handler {
	var (
		once sync.Once
		h    http.Handler
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			reg := prometheus.NewRegistry()
			reg.MustRegister(
				&collector{srv: srv, version: version},
				collectors.NewGoCollector(),
				collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			)
			h = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
		})
		h.ServeHTTP(w, r)
	})
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descBuild, descStart, descConnections, descStreams, descPublishing, descUpstreams, descPlayers,
		descRecv, descSent, descOriginConn, descOriginFail, descOriginDead, descOriginAlive,
		descHookCalls, descHookRefused, descHookFailed, descHookLatency, descNotify, descSkips, descLagDrops,
		descRefused, descFlush, descAcceptErrors, descKicks, descReloads, descLastReload, descInflight,
		descRegistryUp, descRegistryReq, descRegistryHeld, descPlayRedirect, descPubConflict,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	cnt := c.srv.Counters()
	gauge(descBuild, 1, c.version)
	gauge(descStart, float64(cnt.Started.UnixNano())/1e9)
	gauge(descUpstreams, float64(cnt.Upstreams))
	gauge(descInflight, float64(cnt.InflightBytes))
	counter(descAcceptErrors, float64(cnt.AcceptErrors))
	counter(descKicks, float64(cnt.Kicks))
	counter(descRefused, float64(cnt.RefusedPlays))
	counter(descReloads, float64(cnt.Reloads), "ok")
	counter(descReloads, float64(cnt.ReloadFailures), "failed")
	last := 0.0
	if !cnt.LastReload.IsZero() {
		last = float64(cnt.LastReload.UnixNano()) / 1e9
	}
	gauge(descLastReload, last)
	counter(descNotify, float64(cnt.NotifySent), "sent")
	counter(descNotify, float64(cnt.NotifyFailed), "failed")
	counter(descNotify, float64(cnt.NotifyDropped), "dropped")

	// One reading of the clients, streams and vhosts for the whole scrape.
	snap := c.srv.Snapshot()

	// Connections by protocol and role, players by vhost.
	type pr struct{ protocol, role string }
	conns := map[pr]int{}
	for _, p := range []string{"rtmp", "http-flv", "ws-flv"} {
		for _, r := range []string{"publisher", "player", "none"} {
			conns[pr{p, r}] = 0
		}
	}
	players := map[string]int{}
	for _, v := range snap.Vhosts {
		players[v.Name] = 0
	}
	for _, cl := range snap.Clients {
		role := "none"
		switch {
		case cl.Publish:
			role = "publisher"
		case cl.Stream != "":
			role = "player"
			players[cl.Vhost]++
		}
		conns[pr{cl.Protocol, role}]++
	}
	for k, n := range conns {
		gauge(descConnections, float64(n), k.protocol, k.role)
	}
	for v, n := range players {
		gauge(descPlayers, float64(n), v)
	}

	streams, publishing := 0, 0
	for _, s := range snap.Streams {
		streams++
		if s.Publishing {
			publishing++
		}
	}
	gauge(descStreams, float64(streams))
	gauge(descPublishing, float64(publishing))

	for v, b := range c.srv.ClientBytes() {
		counter(descRecv, float64(b[0]), v)
		counter(descSent, float64(b[1]), v)
	}

	names, origins := c.srv.Telemetry().Origins()
	for i, o := range origins {
		counter(descOriginConn, float64(o.Connects.Load()), names[i])
		counter(descOriginFail, float64(o.Failures.Load()), names[i])
		counter(descOriginDead, float64(o.DeadMarks.Load()), names[i])
	}
	for _, v := range snap.Vhosts {
		for _, o := range v.Origins {
			up := 0.0
			if o.DeadUntil.IsZero() {
				up = 1
			}
			gauge(descOriginAlive, up, v.Name, o.Addr)
		}
	}

	t := c.srv.Telemetry()
	actions, hooks := t.Hooks()
	for i, h := range hooks {
		counter(descHookCalls, float64(h.Calls.Load()), actions[i])
		counter(descHookRefused, float64(h.Refusals.Load()), actions[i])
		counter(descHookFailed, float64(h.Failures.Load()), actions[i])
		ch <- histogram(descHookLatency, &h.Latency, actions[i])
	}
	cs := c.srv.ClusterStats()
	enabled := 0.0
	if cs.Enabled {
		enabled = 1
	}
	gauge(descRegistryUp, enabled)
	for _, e := range []struct {
		name string
		v    int64
	}{
		{"errors", cs.Errors}, {"lookups", cs.Lookups}, {"found", cs.Found}, {"claims", cs.Claims},
		{"conflicts", cs.Conflicts}, {"takeovers", cs.Takeovers}, {"reclaims", cs.Reclaims}, {"lost", cs.Lost},
	} {
		counter(descRegistryReq, float64(e.v), e.name)
	}
	gauge(descRegistryHeld, float64(cs.Held))
	counter(descPlayRedirect, float64(cs.PlayRedirects))
	counter(descPubConflict, float64(cs.PublishConflicts))

	counter(descSkips, float64(t.PlayerSkips.Load()))
	counter(descLagDrops, float64(t.LagDisconnects.Load()))
	ch <- histogram(descFlush, &t.Flush)
}

// histogram turns a server histogram into a Prometheus one.
func histogram(d *prometheus.Desc, h *loop.DurationHistogram, labels ...string) prometheus.Metric {
	count, sum, buckets := h.Snapshot()
	return prometheus.MustNewConstHistogram(d, count, sum, buckets, labels...)
}
