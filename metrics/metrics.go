// Package metrics exposes a server's counters to Prometheus. Everything is
// read from the server when scraped, so counting costs the event loops
// nothing beyond the atomics they already keep.
//
// It writes the text exposition format (version 0.0.4) itself, with the Go
// runtime's and the process's metrics under client_golang's names, because
// every library's code pages are resident: prometheus/client_golang (with
// protobuf, expfmt, procfs, client_model) made the static binary 2.3 MB
// larger and an idle server's RSS 2.4 MB larger. VictoriaMetrics/metrics
// is small but writes HELP lines without text, which `promtool check
// metrics` refuses, and histograms in its own vmrange form rather than the
// `le` buckets dashboards expect.
package metrics

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rtmpedge/rtmpedge/loop"
)

const ns = "rtmpedge_"

// Handler returns the /metrics handler of srv: its counters, the Go
// runtime's and the process's, in the Prometheus text format.
func Handler(srv *loop.Server, version string) http.Handler {
	c := &collector{srv: srv, version: version}
	c.scrapes.New = func() any { return &scrape{goStats: newGoReader()} }
	return c
}

// collector reads a server at each scrape.
type collector struct {
	srv     *loop.Server
	version string
	scrapes sync.Pool // of *scrape, so concurrent scrapes do not wait for each other
}

// scrape is what one scrape renders with, reused by later ones.
type scrape struct {
	out     expo
	goStats *goReader
}

func (c *collector) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s := c.scrapes.Get().(*scrape)
	defer c.scrapes.Put(s)
	s.out.b = s.out.b[:0]
	c.write(&s.out)
	s.goStats.write(&s.out)
	writeProcess(&s.out)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(s.out.b)))
	_, _ = w.Write(s.out.b)
}

// write appends the server's families.
func (c *collector) write(e *expo) {
	cnt := c.srv.Counters()
	e.family(ns+"build_info", gauge, "The running version (value 1).").sample(1, "version", c.version)
	e.family(ns+"start_time_seconds", gauge, "When the server started, in Unix seconds.").sample(float64(cnt.Started.UnixNano()) / 1e9)
	e.family(ns+"upstreams", gauge, "Edge upstream connections (one per pulled stream).").sample(float64(cnt.Upstreams))
	e.family(ns+"inflight_bytes", gauge, "Bytes held in partly received messages (bounded by max_inflight_bytes).").sample(float64(cnt.InflightBytes))
	e.family(ns+"egress_estimate_bytes_per_second", gauge, "Egress on the wire as capacity sees it: players x their stream's bit rate with RTMP and TCP/IP headers, in bytes per second.").sample(float64(cnt.EgressEstimate) / 8)
	busy := 0.0
	if cnt.LinkBusy {
		busy = 1
	}
	e.family(ns+"link_busy", gauge, "1 while the box is busy (capacity.busy_load reached and writes stalled by its own queue): players' merged windows are halved.").sample(busy)
	e.family(ns+"accept_errors_total", counter, "Connections that could not be accepted (out of file descriptors, say).").sample(float64(cnt.AcceptErrors))
	e.family(ns+"kicks_total", counter, "Clients closed through the API.").sample(float64(cnt.Kicks))
	e.family(ns+"plays_refused_total", counter, "Plays refused or redirected by a capacity limit.").sample(float64(cnt.RefusedPlays))
	e.family(ns+"config_reloads_total", counter, "Configuration reloads by result.")
	e.sample(float64(cnt.ReloadFailures), "result", "failed")
	e.sample(float64(cnt.Reloads), "result", "ok")
	last := 0.0
	if !cnt.LastReload.IsZero() {
		last = float64(cnt.LastReload.UnixNano()) / 1e9
	}
	e.family(ns+"config_last_reload_timestamp_seconds", gauge, "When the configuration was last reloaded (0: never).").sample(last)
	e.family(ns+"notifications_total", counter, "Notification hooks (on_unpublish, on_stop, on_close) by outcome.")
	e.sample(float64(cnt.NotifyDropped), "result", "dropped")
	e.sample(float64(cnt.NotifyFailed), "result", "failed")
	e.sample(float64(cnt.NotifySent), "result", "sent")

	// One reading of the clients, streams and vhosts for the whole scrape.
	snap := c.srv.Snapshot()

	// Connections by protocol and role, players by vhost.
	conns := map[[2]string]int{}
	for _, p := range []string{"rtmp", "http-flv", "ws-flv"} {
		for _, r := range []string{"publisher", "player", "none"} {
			conns[[2]string{p, r}] = 0
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
		conns[[2]string{cl.Protocol, role}]++
	}
	e.family(ns+"connections", gauge, "Client connections open, by protocol and role.")
	for _, k := range sortedPairs(conns) {
		e.sample(float64(conns[k]), "protocol", k[0], "role", k[1])
	}
	e.family(ns+"players", gauge, "Players connected, by vhost.")
	for _, v := range slices.Sorted(maps.Keys(players)) {
		e.sample(float64(players[v]), "vhost", v)
	}

	streams, publishing := 0, 0
	for _, s := range snap.Streams {
		streams++
		if s.Publishing {
			publishing++
		}
	}
	e.family(ns+"streams", gauge, "Live streams (published, pulled from an origin, or awaited by players).").sample(float64(streams))
	e.family(ns+"streams_publishing", gauge, "Streams that have a source.").sample(float64(publishing))

	traffic := c.srv.ClientBytes()
	vhosts := slices.Sorted(maps.Keys(traffic))
	e.family(ns+"received_bytes_total", counter, "Bytes received from client connections, by vhost.")
	for _, v := range vhosts {
		e.sample(float64(traffic[v][0]), "vhost", v)
	}
	e.family(ns+"sent_bytes_total", counter, "Bytes sent to client connections, by vhost.")
	for _, v := range vhosts {
		e.sample(float64(traffic[v][1]), "vhost", v)
	}

	// Origins and hooks come sorted by name.
	t := c.srv.Telemetry()
	names, origins := t.Origins()
	counters(e, ns+"upstream_connects_total", "Connections opened to an origin (pulls and forwarded publishes).",
		"origin", names, origins, func(o *loop.OriginCounters) uint64 { return o.Connects.Load() })
	counters(e, ns+"upstream_failures_total", "Origin connections that failed or broke (each one a failover).",
		"origin", names, origins, func(o *loop.OriginCounters) uint64 { return o.Failures.Load() })
	counters(e, ns+"origin_dead_marks_total", "Times an origin was marked dead (tried last for dead_origin_ttl).",
		"origin", names, origins, func(o *loop.OriginCounters) uint64 { return o.DeadMarks.Load() })
	up := map[[2]string]float64{}
	for _, v := range snap.Vhosts {
		for _, o := range v.Origins {
			alive := 0.0
			if o.DeadUntil.IsZero() {
				alive = 1
			}
			up[[2]string{v.Name, o.Addr}] = alive
		}
	}
	e.family(ns+"origin_up", gauge, "1 while an edge vhost's origin is not marked dead.")
	for _, k := range sortedPairs(up) {
		e.sample(up[k], "vhost", k[0], "origin", k[1])
	}

	actions, hooks := t.Hooks()
	counters(e, ns+"hook_calls_total", "Deciding hook calls (on_connect, on_publish, on_play).",
		"action", actions, hooks, func(h *loop.HookStats) uint64 { return h.Calls.Load() })
	counters(e, ns+"hook_refusals_total", "Hook calls answered with a refusal.",
		"action", actions, hooks, func(h *loop.HookStats) uint64 { return h.Refusals.Load() })
	counters(e, ns+"hook_failures_total", "Hook calls that got no valid answer (unreachable, timeout), which refuse too.",
		"action", actions, hooks, func(h *loop.HookStats) uint64 { return h.Failures.Load() })
	e.family(ns+"hook_duration_seconds", histogram, "Time a deciding hook took to answer.")
	for i, h := range hooks {
		count, sum, buckets := h.Latency.Snapshot()
		e.histogram(count, sum, buckets, "action", actions[i])
	}

	cs := c.srv.ClusterStats()
	enabled := 0.0
	if cs.Enabled {
		enabled = 1
	}
	e.family(ns+"registry_enabled", gauge, "1 when a stream registry (cluster.registry) is configured.").sample(enabled)
	e.family(ns+"registry_events_total", counter, "Stream registry events: errors (requests failed or timed out), lookups, found, claims, conflicts, takeovers, reclaims, lost.")
	for _, ev := range []struct {
		name string
		v    int64
	}{ // sorted by name
		{"claims", cs.Claims}, {"conflicts", cs.Conflicts}, {"errors", cs.Errors}, {"found", cs.Found},
		{"lookups", cs.Lookups}, {"lost", cs.Lost}, {"reclaims", cs.Reclaims}, {"takeovers", cs.Takeovers},
	} {
		e.sample(float64(ev.v), "event", ev.name)
	}
	e.family(ns+"registry_claims_held", gauge, "Stream claims this server holds in the registry.").sample(float64(cs.Held))
	e.family(ns+"cluster_play_redirects_total", counter, "Players redirected to the origin that has their stream.").sample(float64(cs.PlayRedirects))
	e.family(ns+"cluster_publish_conflicts_total", counter, "Publishes refused or redirected because another origin has the stream.").sample(float64(cs.PublishConflicts))

	e.family(ns+"player_skips_total", counter, "Players skipped ahead to a keyframe for falling behind player_backlog.").sample(float64(t.PlayerSkips.Load()))
	e.family(ns+"player_stalled_sends_total", counter, "Player writes TCP kept unsent with nothing in flight: the box's own queue dropped their first segment (a shaper's queue full), so they wait for TCP's probe timer.").sample(float64(t.StalledSends.Load()))
	e.family(ns+"player_lag_disconnects_total", counter, "Players disconnected for staying behind for player_lag_timeout.").sample(float64(t.LagDisconnects.Load()))
	count, sum, buckets := t.Flush.Snapshot()
	e.family(ns+"flush_duration_seconds", histogram, "Time one merged write to a stream's players on an event loop took.").histogram(count, sum, buckets)

	b := c.srv.BlockStats()
	e.family(ns+"media_blocks_made_total", counter, "Media blocks allocated because none of the size asked for was free.").sample(float64(b.Allocated))
	e.family(ns+"media_blocks_reused_total", counter, "Media blocks carved again after their stream was done with them.").sample(float64(b.Reused))
	e.family(ns+"media_blocks_dropped_total", counter, "Media blocks left to the garbage collector (more free than the pool keeps).").sample(float64(b.Dropped))
	e.family(ns+"media_blocks_free_bytes", gauge, "Bytes of media blocks free for reuse.").sample(float64(b.FreeBytes))
	e.family(ns+"media_blocks_waiting", gauge, "Retired media blocks waiting for a flush to end or a player's partly sent packet.").sample(float64(b.Limbo))
}

// counters appends a counter family with a sample per name, labelled with
// it: count of the matching item.
func counters[T any](e *expo, name, help, label string, names []string, items []*T, count func(*T) uint64) {
	e.family(name, counter, help)
	for i, it := range items {
		e.sample(float64(count(it)), label, names[i])
	}
}

// sortedPairs returns the keys of m in order.
func sortedPairs[V any](m map[[2]string]V) [][2]string {
	return slices.SortedFunc(maps.Keys(m), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
}
