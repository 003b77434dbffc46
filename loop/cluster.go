package loop

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/cluster"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// The origin cluster: origins claim the streams published to them in the
// stream registry, refuse (or redirect) publishes of streams claimed by
// another live origin, and redirect players of streams published elsewhere;
// edges ask the registry where a stream is before they open an upstream or
// forward a publish. Every registry request runs on a goroutine of its own
// and comes back to the connection's event loop; a registry that fails or
// is slow costs at most its lookup timeout and leaves local knowledge and
// the configured origin order in charge.

// clusterCounters are the server's own origin cluster counters.
type clusterCounters struct {
	playRedirects    atomic.Int64 // players sent to the origin that has their stream
	publishConflicts atomic.Int64 // publishes refused or redirected: claimed by another origin
}

// ClusterStats are the origin cluster's counters, for metrics: the
// registry's own (all zero without a registry) and the server's.
type ClusterStats struct {
	cluster.Stats
	Enabled          bool  // a registry is configured
	PlayRedirects    int64 // players redirected to the origin that has their stream
	PublishConflicts int64 // publishes refused or redirected: the stream is claimed by another origin
}

// ClusterStats returns the origin cluster's counters. Stats.Errors counts
// the registry requests that failed or timed out.
func (s *Server) ClusterStats() ClusterStats {
	st := ClusterStats{PlayRedirects: s.cluster.playRedirects.Load(), PublishConflicts: s.cluster.publishConflicts.Load()}
	if loc := s.locator(); loc != nil {
		st.Stats, st.Enabled = loc.Stats(), true
	}
	return st
}

// locator returns the stream registry, or nil without one.
func (s *Server) locator() *cluster.Locator { return s.loc.Load() }

// openRegistry connects the stream registry when the configuration names
// one. The registry's URL is read once: changing it needs a restart; its
// timings and the advertised address are read at each use.
func (s *Server) openRegistry() error {
	c := s.config().Cluster
	if !c.Enabled() {
		return nil
	}
	loc, err := cluster.Open(c.Registry, s.registrySettings, s.log)
	if err != nil {
		return err
	}
	s.loc.Store(loc)
	s.log.Info("stream registry", "registry", redactURL(c.Registry), "advertise", c.Advertise,
		"claim_ttl", c.ClaimTTL.String(), "heartbeat", c.Heartbeat.String(), "on_conflict", c.OnConflict)
	return nil
}

// closeRegistry waits for the claims released at shutdown, then closes.
func (s *Server) closeRegistry(ctx context.Context) {
	if loc := s.loc.Swap(nil); loc != nil {
		if err := loc.Close(ctx); err != nil {
			s.log.Warn("closing the stream registry", "err", err)
		}
	}
}

func (s *Server) registrySettings() cluster.Settings {
	c := s.config().Cluster
	return cluster.Settings{Advertise: c.Advertise, ClaimTTL: c.ClaimTTL, Heartbeat: c.Heartbeat, LookupTimeout: c.LookupTimeout}
}

// redactURL hides a registry URL's password for logging.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// registryName is a stream's name in the registry: vhost/app/stream as the
// origin resolves them.
func registryName(k edge.Key) string { return k.String() }

// upstreamKey is the stream an edge asks its origins for, named as the
// origins resolve it: the vhost transform applies (cluster.vhost, else the
// client's named vhost, else the origin's default vhost).
func upstreamKey(v *conf.Vhost, k edge.Key) edge.Key {
	switch {
	case v.Cluster.Vhost != "":
		k.Vhost = strings.ToLower(v.Cluster.Vhost)
	case v.Name != conf.DefaultVhost:
		k.Vhost = v.Name
	default:
		k.Vhost = conf.DefaultVhost
	}
	return k
}

// locateOrigin asks the registry, on a goroutine of its own, which origin
// has stream k, and calls then on that goroutine with its address, or ""
// when the registry has nothing, fails or is slow. Without a registry it
// returns false and does nothing.
func (s *Server) locateOrigin(k edge.Key, then func(addr string)) bool {
	loc := s.locator()
	if loc == nil {
		return false
	}
	go func() {
		h, found, err := loc.Lookup(context.Background(), registryName(k))
		if err != nil || !found {
			then("")
			return
		}
		then(h.Addr)
	}()
	return true
}

// claimPublish claims the stream the session just became the local
// publisher of, off the loop, then starts the publish or refuses it. The
// session reads nothing meanwhile; closed meanwhile, it gives the claim up.
func (ss *session) claimPublish(loc *cluster.Locator, name string) {
	ss.claiming = true
	ss.suspend()
	key := ss.key
	go func() {
		c := loc.Claim(context.Background(), registryName(key), ss.id)
		ss.resumeOr(func() { ss.claimed(c, name) }, func() { loc.Release(registryName(key), ss.id) })
	}()
}

// claimed finishes a publish once the registry answered (on the loop).
func (ss *session) claimed(c cluster.Claim, name string) {
	ss.claiming = false
	switch c.Outcome {
	case cluster.Conflict:
		ss.dropPendingPublish()
		ss.srv.cluster.publishConflicts.Add(1)
		if ss.srv.config().Cluster.OnConflict == conf.ConflictRedirect {
			ss.log.Info("publish redirected: the stream is claimed by another origin", "stream", name, "to", c.Holder.Addr)
			ss.redirect(c.Holder.Addr, name, "stream is published on origin "+c.Holder.Addr)
			return
		}
		desc := fmt.Sprintf("Stream %s is already publishing on origin %s.", name, c.Holder.Addr)
		ss.sendStatus("error", "NetStream.Publish.BadName", desc)
		ss.log.Warn("publish refused: the stream is claimed by another origin", "stream", name, "holder", c.Holder.Addr)
		ss.fail("publish refused: " + desc)
		return
	case cluster.Unavailable:
		ss.log.Info("publish without a claim: the registry is unreachable; the heartbeat claims it when it is back", "stream", name)
	}
	ss.beginPublish(name)
}

// dropPendingPublish gives up the hub a publish held while its claim was
// decided.
func (ss *session) dropPendingPublish() {
	ss.claiming = false
	ss.hub.Unpublish(ss)
	ss.srv.hubs.Release(ss.hub)
	ss.hub = nil
}

// unclaim gives up a local publisher's claim.
func (ss *session) unclaim() {
	if loc := ss.srv.locator(); loc != nil {
		loc.Release(registryName(ss.key), ss.id)
	}
}

// locatePlay decides, off the loop, whether a play of a stream this origin
// does not have goes to the origin the registry places it on; then plays
// here (waiting for a publisher) or redirects. It returns false, doing
// nothing, when there is nothing to ask: no registry, or the stream is here.
func (ss *session) locatePlay(k edge.Key, play func()) bool {
	loc := ss.srv.locator()
	if loc == nil || ss.srv.hubs.Publishing(k) {
		return false
	}
	ss.suspend()
	go func() {
		ctx := context.Background()
		h, found, err := loc.Lookup(ctx, registryName(k))
		elsewhere := err == nil && found && loc.Elsewhere(ctx, h)
		ss.resume(func() {
			if !elsewhere || ss.srv.hubs.Publishing(k) {
				play()
				return
			}
			ss.srv.cluster.playRedirects.Add(1)
			ss.log.Info("play redirected: the stream is published on another origin", "stream", k.Stream, "to", h.Addr)
			ss.redirect(h.Addr, k.Stream, "stream is published on origin "+h.Addr)
		})
	}()
	return true
}

// redirect answers the client with an RTMP redirect to the server at addr,
// as SRS does (the caller logs why): onStatus with NetConnection.Connect.Rejected and ex.code 302,
// ex.redirect the tcUrl to connect to (the same app, parameters and vhost)
// and ex.redirect2 the stream's URL. Our edges and SRS edges follow it. The
// connection is closed once the answer is written.
func (ss *session) redirect(addr, stream, why string) {
	q, _ := url.ParseQuery(ss.tcQuery)
	if _, appQuery := splitQuery(ss.appRaw); appQuery != "" {
		if aq, err := url.ParseQuery(appQuery); err == nil {
			maps.Copy(q, aq)
		}
	}
	if ss.key.Vhost != conf.DefaultVhost && q.Get("vhost") == "" {
		q.Set("vhost", ss.key.Vhost)
	}
	base, params := "rtmp://"+addr+"/"+ss.app, queryParam(q.Encode())
	st := statusObject("error", "NetConnection.Connect.Rejected", "RTMP 302 Redirect: "+why)
	st = append(st, amf.Property{Key: "ex", Value: amf.Object{
		{Key: "code", Value: 302.0},
		{Key: "redirect", Value: base + params},
		{Key: "redirect2", Value: base + "/" + stream + params},
	}})
	ss.sendCommand(0, "onStatus", 0.0, nil, st)
	ss.fail("redirected to " + addr + ": " + why)
}
