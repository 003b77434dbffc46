package loop

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
)

// ReloadReport says what a reload changed.
type ReloadReport struct {
	Source         string   `json:"source"`
	ListenOpened   []string `json:"listen_opened"`
	ListenClosed   []string `json:"listen_closed"`
	VhostsAdded    []string `json:"vhosts_added"`
	VhostsRemoved  []string `json:"vhosts_removed"` // removed or disabled: their clients were closed
	VhostsChanged  []string `json:"vhosts_changed"`
	ClientsClosed  int      `json:"clients_closed"`
	RestartNeeded  []string `json:"restart_needed"` // settings that changed but apply only at the next start
	LogLevel       string   `json:"log_level"`
	UnchangedFully bool     `json:"unchanged"`
}

// ReloadFile loads the configuration again from the file the one in force
// came from (the embedded default if none) and applies it with Reload. An
// invalid file changes nothing and its error is returned.
func (s *Server) ReloadFile() (*ReloadReport, error) {
	old := s.config()
	path := old.Source
	if path == conf.DefaultSource {
		path = ""
	}
	cfg, err := conf.Load(path)
	if err != nil {
		s.reloadFailures.Add(1)
		s.log.Error("reload refused: the configuration is invalid; the old one stays in force", "err", err)
		return nil, fmt.Errorf("reload: %w", err)
	}
	return s.Reload(cfg)
}

// Reload puts cfg (loaded and validated) in force without disturbing
// established connections: listeners added or removed are opened or closed
// (if one cannot open, nothing changes); new sessions take cfg at once;
// running ones take their vhost's new settings where they can (hooks at the
// next call, merged_write and player_backlog at the next flush, an edge's
// origins and timeouts at its next connect); clients of a vhost that was
// removed or disabled are closed.
func (s *Server) Reload(cfg *conf.Config) (*ReloadReport, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.config()
	rep := &ReloadReport{Source: cfg.Source}
	opened, closed, err := s.reconcileListeners(cfg.Listen, cfg.HTTP.Listen)
	if err != nil {
		s.reloadFailures.Add(1)
		s.log.Error("reload refused: a listener could not open; the old configuration stays in force", "err", err)
		return nil, fmt.Errorf("reload: %w", err)
	}
	rep.ListenOpened, rep.ListenClosed = orEmpty(opened), orEmpty(closed)

	s.cfg.Store(cfg)
	s.paceBurst.Store(paceBurst(cfg, s.loops))
	if s.LogLevel != nil {
		s.LogLevel.Set(cfg.Log.SlogLevel())
	}
	rep.LogLevel = cfg.Log.SlogLevel().String()

	rep.VhostsAdded, rep.VhostsRemoved, rep.VhostsChanged = diffVhosts(old, cfg)
	s.updateOrigins(cfg)
	rep.ClientsClosed = s.refreshSessions(cfg)
	if old.Log.Format != cfg.Log.Format {
		rep.RestartNeeded = append(rep.RestartNeeded, "log.format")
	}
	if old.Cluster.Registry != cfg.Cluster.Registry {
		rep.RestartNeeded = append(rep.RestartNeeded, "cluster.registry")
	}
	for _, h := range s.reloadHooks {
		if err := h(old, cfg); err != nil {
			rep.RestartNeeded = append(rep.RestartNeeded, err.Error())
			s.log.Error("reload: a setting could not be applied; it takes effect at the next start", "err", err)
		}
	}
	rep.RestartNeeded = orEmpty(rep.RestartNeeded)
	rep.UnchangedFully = len(opened)+len(closed)+len(rep.VhostsAdded)+len(rep.VhostsRemoved)+len(rep.VhostsChanged) == 0 &&
		reflect.DeepEqual(withoutVhosts(old), withoutVhosts(cfg))
	s.reloads.Add(1)
	s.lastReload.Store(time.Now().UnixNano())
	s.log.Info("configuration reloaded", "source", cfg.Source, "listen_opened", opened, "listen_closed", closed,
		"vhosts_added", rep.VhostsAdded, "vhosts_removed", rep.VhostsRemoved, "vhosts_changed", rep.VhostsChanged,
		"clients_closed", rep.ClientsClosed, "restart_needed", rep.RestartNeeded)
	return rep, nil
}

// OnReload registers f to be called by every successful Reload with the
// old and the new configuration (the API server follows its settings this
// way). An error is reported as a setting that needs a restart.
func (s *Server) OnReload(f func(old, cfg *conf.Config) error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.reloadHooks = append(s.reloadHooks, f)
}

// updateOrigins gives every edge vhost's origin set its new list and policy.
func (s *Server) updateOrigins(cfg *conf.Config) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	for name, o := range s.origins {
		if v := cfg.Vhosts[name]; v != nil {
			o.Update(v.Cluster.Origin, v.Cluster.Select == conf.SelectHash, v.Cluster.DeadOriginTTL)
		}
	}
}

// refreshSessions points every connected session at its vhost's new
// settings and closes those whose vhost is gone or disabled. It returns
// how many it closed.
func (s *Server) refreshSessions(cfg *conf.Config) int {
	closed := 0
	s.sessions.Range(func(k, _ any) bool {
		ss, ok := k.(*session)
		if !ok {
			return true
		}
		v := ss.vhostPtr.Load()
		if v == nil {
			return true
		}
		nv := cfg.Vhosts[v.Name]
		if nv == nil || !nv.Enabled {
			ss.setReason(fmt.Sprintf("vhost %q removed or disabled by a configuration reload", v.Name))
			_ = ss.c.Close()
			closed++
			return true
		}
		ss.vhostPtr.Store(nv)
		return true
	})
	return closed
}

// diffVhosts compares the vhost sets of two configurations (a disabled
// vhost counts as removed).
func diffVhosts(old, cfg *conf.Config) (added, removed, changed []string) {
	enabled := func(c *conf.Config, name string) *conf.Vhost {
		if v := c.Vhosts[name]; v != nil && v.Enabled {
			return v
		}
		return nil
	}
	names := slices.Sorted(maps.Keys(old.Vhosts))
	for _, n := range slices.Sorted(maps.Keys(cfg.Vhosts)) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		ov, nv := enabled(old, n), enabled(cfg, n)
		switch {
		case ov == nil && nv != nil:
			added = append(added, n)
		case ov != nil && nv == nil:
			removed = append(removed, n)
		case ov != nil && !reflect.DeepEqual(ov, nv):
			changed = append(changed, n)
		}
	}
	return orEmpty(added), orEmpty(removed), orEmpty(changed)
}

// withoutVhosts is cfg's top-level settings, for comparison.
func withoutVhosts(cfg *conf.Config) conf.Config {
	c := *cfg
	c.Vhosts, c.Source = nil, ""
	return c
}

// orEmpty makes a nil list an empty one (JSON [] rather than null).
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
