package conf

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits checked by validation.
const (
	minChunkSize      = 128
	maxChunkSize      = 65536
	minMessageSize    = 1 * KiB
	maxMessageSize    = 64 * MiB
	maxMergedWrite    = 5 * time.Second
	minPlayerBacklog  = time.Second
	maxPlayerBacklog  = time.Minute
	minBacklogBytes   = 64 * KiB
	defaultOriginPort = "1935"
)

var (
	logLevels    = []string{"debug", "info", "warn", "error"}
	logFormats   = []string{"text", "json"}
	clusterModes = []string{ModeLocal, ModeRemote}
	selections   = []string{SelectFailover, SelectHash}
	conflicts    = []string{ConflictRefuse, ConflictRedirect}
)

// Limits of the origin cluster's settings.
const (
	minClaimTTL      = time.Second
	maxLookupTimeout = 5 * time.Second
)

// validateTop checks and normalizes the top-level settings.
func validateTop(p *problems, c *Config) {
	if len(c.Listen) == 0 {
		p.add("listen", "must list at least one host:port")
	}
	for i, addr := range c.Listen {
		if err := checkListen(addr); err != nil {
			p.add(fmt.Sprintf("listen[%d]", i), "%v", err)
		}
	}
	rtmpPorts := map[string]bool{}
	for _, addr := range c.Listen {
		if _, port, err := net.SplitHostPort(addr); err == nil {
			rtmpPorts[port] = true
		}
	}
	for i, addr := range c.HTTP.Listen {
		key := fmt.Sprintf("http%slisten[%d]", keyDelim, i)
		if err := checkListen(addr); err != nil {
			p.add(key, "%v", err)
		} else if _, port, _ := net.SplitHostPort(addr); rtmpPorts[port] {
			p.add(key, "port %s is also an RTMP listen port: HTTP and RTMP need ports of their own", port)
		}
	}
	if c.HTTP.HeaderTimeout <= 0 {
		p.add("http"+keyDelim+"header_timeout", "must be positive, got %v", c.HTTP.HeaderTimeout)
	}
	if strings.ContainsAny(c.HTTP.CORSOrigin, "\r\n") {
		p.add("http"+keyDelim+"cors_origin", "must be one line, got %q", c.HTTP.CORSOrigin)
	}
	if c.API.Listen != "" {
		if err := checkListen(c.API.Listen); err != nil {
			p.add("api"+keyDelim+"listen", "%v", err)
		} else if _, port, _ := net.SplitHostPort(c.API.Listen); rtmpPorts[port] || slices.ContainsFunc(c.HTTP.Listen, func(a string) bool {
			_, hp, _ := net.SplitHostPort(a)
			return hp == port
		}) {
			p.add("api"+keyDelim+"listen", "port %s is also an RTMP or HTTP listen port: the API needs a port of its own", port)
		} else if !isLoopback(c.API.Listen) && c.API.Auth == "" {
			p.add("api"+keyDelim+"listen", "%s is reachable beyond loopback: set api%sauth (user:password) or listen on 127.0.0.1", c.API.Listen, keyDelim)
		}
	}
	if c.API.Auth != "" && !strings.Contains(c.API.Auth, ":") {
		p.add("api"+keyDelim+"auth", "must be user:password")
	}
	if c.MaxConnections < 1 {
		p.add("max_connections", "must be at least 1, got %d", c.MaxConnections)
	}
	if c.ChunkSize < minChunkSize || c.ChunkSize > maxChunkSize {
		p.add("chunk_size", "must be between %d and %d, got %d", minChunkSize, maxChunkSize, c.ChunkSize)
	}
	if c.MaxMessageSize < minMessageSize || c.MaxMessageSize > maxMessageSize {
		p.add("max_message_size", "must be between %v and %v, got %v", minMessageSize, maxMessageSize, c.MaxMessageSize)
	}
	if c.MaxCommandSize < minMessageSize || c.MaxCommandSize > maxMessageSize {
		p.add("max_command_size", "must be between %v and %v, got %v", minMessageSize, maxMessageSize, c.MaxCommandSize)
	}
	if c.MaxInflightBytes < c.MaxMessageSize {
		p.add("max_inflight_bytes", "must be at least max_message_size (%v), got %v", c.MaxMessageSize, c.MaxInflightBytes)
	}
	if c.HandshakeTimeout <= 0 {
		p.add("handshake_timeout", "must be positive, got %v", c.HandshakeTimeout)
	}
	if c.IdleTimeout <= 0 {
		p.add("idle_timeout", "must be positive, got %v", c.IdleTimeout)
	}
	if c.Capacity.MaxPlayers < 0 {
		p.add("capacity"+keyDelim+"max_players", "must not be negative (0: no limit), got %d", c.Capacity.MaxPlayers)
	}
	if c.Capacity.MaxEgress < 0 {
		p.add("capacity"+keyDelim+"max_egress", "must not be negative (0: no limit), got %v", c.Capacity.MaxEgress)
	}
	if c.Capacity.Link <= 0 {
		p.add("capacity"+keyDelim+"link", "must be positive, got %v", c.Capacity.Link)
	}
	if c.Capacity.PaceBurst < time.Millisecond || c.Capacity.PaceBurst > time.Second {
		p.add("capacity"+keyDelim+"pace_burst", "must be between 1ms and 1s, got %v", c.Capacity.PaceBurst)
	}
	if c.Capacity.BusyLoad < 0 || c.Capacity.BusyLoad > 1 {
		p.add("capacity"+keyDelim+"busy_load", "must be between 0 and 1 (a share of link; 0: never busy), got %v", c.Capacity.BusyLoad)
	}
	for i, r := range c.Capacity.Redirect {
		n, err := normalizeOrigin(r)
		if err != nil {
			p.add(fmt.Sprintf("capacity%sredirect[%d]", keyDelim, i), "%v", err)
			continue
		}
		c.Capacity.Redirect[i] = n
	}
	validateRegistry(p, &c.Cluster)
	c.Log.Level = strings.ToLower(strings.TrimSpace(c.Log.Level))
	if !slices.Contains(logLevels, c.Log.Level) {
		p.add("log"+keyDelim+"level", "must be one of %s, got %q", strings.Join(logLevels, ", "), c.Log.Level)
	}
	c.Log.Format = strings.ToLower(strings.TrimSpace(c.Log.Format))
	if !slices.Contains(logFormats, c.Log.Format) {
		p.add("log"+keyDelim+"format", "must be one of %s, got %q", strings.Join(logFormats, ", "), c.Log.Format)
	}
}

// validateRegistry checks the origin cluster's settings that stand alone;
// validateAdvertise, run once the vhosts are known, completes them.
func validateRegistry(p *problems, c *OriginCluster) {
	key := func(k string) string { return "cluster" + keyDelim + k }
	c.Registry = strings.TrimSpace(c.Registry)
	if c.Registry != "" {
		if err := checkRegistryURL(c.Registry); err != nil {
			p.add(key("registry"), "%v", err)
		}
	}
	if c.ClaimTTL < minClaimTTL {
		p.add(key("claim_ttl"), "must be at least %v, got %v", minClaimTTL, c.ClaimTTL)
	}
	if c.Heartbeat <= 0 || c.Heartbeat > c.ClaimTTL/2 {
		p.add(key("heartbeat"), "must be positive and at most half of claim_ttl (%v), got %v", c.ClaimTTL/2, c.Heartbeat)
	}
	if c.LookupTimeout < time.Millisecond || c.LookupTimeout > maxLookupTimeout {
		p.add(key("lookup_timeout"), "must be between 1ms and %v, got %v", maxLookupTimeout, c.LookupTimeout)
	}
	c.OnConflict = strings.ToLower(strings.TrimSpace(c.OnConflict))
	if !slices.Contains(conflicts, c.OnConflict) {
		p.add(key("on_conflict"), "must be one of %s, got %q", strings.Join(conflicts, ", "), c.OnConflict)
	}
	if c.Advertise = strings.TrimSpace(c.Advertise); c.Advertise != "" {
		if err := checkAdvertise(c.Advertise); err != nil {
			p.add(key("advertise"), "%v", err)
		}
	}
}

// checkRegistryURL checks a redis:// or rediss:// URL: a host and port,
// a database number as its path if any, and nothing more (the registry's
// client refuses query parameters). Messages never show its password.
func checkRegistryURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL and its password
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	shown := u.Redacted()
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("must be a redis:// or rediss:// URL, got %q", shown)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || u.Hostname() == "" {
		return fmt.Errorf("must name host:port, got %q", shown)
	} else if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %v", shown, err)
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return fmt.Errorf("the path must be a database number (redis://host:port/0), got %q", shown)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: query parameters are not supported (the timeouts are cluster.lookup_timeout and the like)", shown)
	}
	return nil
}

// checkAdvertise checks an address other servers dial: host:port with a
// host that is not a wildcard.
func checkAdvertise(addr string) error {
	if err := checkListen(addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		return fmt.Errorf("%q: other servers cannot dial a wildcard address; name this server's host or IP address", addr)
	}
	return nil
}

// validateAdvertise fills cluster.advertise from the first listen address
// when it is empty, for a server that claims streams (a registry and an
// origin vhost); a wildcard listen address cannot stand in for it.
func validateAdvertise(p *problems, c *Config) {
	if !c.Cluster.Enabled() || c.Cluster.Advertise != "" || len(c.Listen) == 0 {
		return
	}
	origin := false
	for _, v := range c.Vhosts {
		origin = origin || v.Cluster.Mode == ModeLocal
	}
	if checkAdvertise(c.Listen[0]) == nil {
		c.Cluster.Advertise = c.Listen[0]
		return
	}
	if origin {
		p.add("cluster"+keyDelim+"advertise", "must be set: this server claims streams (it has a registry and an origin vhost) "+
			"and its first listen address %q names no host other servers can dial (e.g. advertise: 10.0.0.5:1935)", c.Listen[0])
	}
}

// validateVhost checks and normalizes one vhost. For a vhost section (not
// vhost_defaults) only the keys set in own are reported, since inherited
// values were checked under vhost_defaults; cross-key rules always apply.
func validateVhost(p *problems, prefix string, v *Vhost, own map[string]any, isDefaults bool) {
	report := func(key, format string, args ...any) {
		// key may end in an index ("origin[1]"), which isSet ignores.
		base, _, _ := strings.Cut(key, "[")
		if isDefaults || isSet(own, strings.Split(base, keyDelim)) {
			p.add(prefix+keyDelim+key, format, args...)
		}
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"merged_write", v.MergedWrite},
		{"player_lag_timeout", v.PlayerLagTimeout},
		{"publish_idle_timeout", v.PublishIdleTimeout},
		{"play_wait_timeout", v.PlayWaitTimeout},
		{"cluster" + keyDelim + "dead_origin_ttl", v.Cluster.DeadOriginTTL},
		{"cluster" + keyDelim + "linger", v.Cluster.Linger},
	} {
		if d.val < 0 {
			report(d.key, "must not be negative, got %v", d.val)
		}
	}
	if v.MergedWrite > maxMergedWrite {
		report("merged_write", "must be at most %v, got %v", maxMergedWrite, v.MergedWrite)
	}
	if v.PlayerBacklog < minPlayerBacklog || v.PlayerBacklog > maxPlayerBacklog {
		report("player_backlog", "must be between %v and %v of media, got %v", minPlayerBacklog, maxPlayerBacklog, v.PlayerBacklog)
	}
	if v.PlayerBacklogBytes < minBacklogBytes {
		report("player_backlog_max_bytes", "must be at least %v, got %v", minBacklogBytes, v.PlayerBacklogBytes)
	}
	if v.GopCacheMaxBytes < 0 {
		report("gop_cache_max_bytes", "must not be negative, got %v", v.GopCacheMaxBytes)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"cluster" + keyDelim + "connect_timeout", v.Cluster.ConnectTimeout},
		{"cluster" + keyDelim + "command_timeout", v.Cluster.CommandTimeout},
		{"cluster" + keyDelim + "no_data_timeout", v.Cluster.NoDataTimeout},
		{"cluster" + keyDelim + "retry_min", v.Cluster.RetryMin},
		{"cluster" + keyDelim + "retry_max", v.Cluster.RetryMax},
		{"cluster" + keyDelim + "publish_timeout", v.Cluster.PublishTimeout},
		{"hooks" + keyDelim + "timeout", v.Hooks.Timeout},
	} {
		if d.val <= 0 {
			report(d.key, "must be positive, got %v", d.val)
		}
	}
	if v.Cluster.RetryMax < v.Cluster.RetryMin {
		report("cluster"+keyDelim+"retry_max", "must not be less than retry_min %v, got %v", v.Cluster.RetryMin, v.Cluster.RetryMax)
	}
	if v.Cluster.PublishBuffer < minBacklogBytes {
		report("cluster"+keyDelim+"publish_buffer", "must be at least %v, got %v", minBacklogBytes, v.Cluster.PublishBuffer)
	}
	v.Cluster.Select = strings.ToLower(strings.TrimSpace(v.Cluster.Select))
	if !slices.Contains(selections, v.Cluster.Select) {
		report("cluster"+keyDelim+"select", "must be one of %s, got %q", strings.Join(selections, ", "), v.Cluster.Select)
	}
	for _, h := range []struct{ key, url string }{
		{"on_connect", v.Hooks.OnConnect}, {"on_publish", v.Hooks.OnPublish}, {"on_play", v.Hooks.OnPlay},
		{"on_unpublish", v.Hooks.OnUnpublish}, {"on_stop", v.Hooks.OnStop}, {"on_close", v.Hooks.OnClose},
	} {
		if h.url == "" {
			continue
		}
		if u, err := url.Parse(h.url); err != nil || u.Scheme != "http" || u.Host == "" {
			report("hooks"+keyDelim+h.key, "must be an http:// URL (for https, put a local TLS proxy in front), got %q", h.url)
		}
	}
	v.Cluster.Mode = strings.ToLower(strings.TrimSpace(v.Cluster.Mode))
	if !slices.Contains(clusterModes, v.Cluster.Mode) {
		report("cluster"+keyDelim+"mode", "must be one of %s, got %q", strings.Join(clusterModes, ", "), v.Cluster.Mode)
	}
	origins := make([]string, 0, len(v.Cluster.Origin))
	for i, o := range v.Cluster.Origin {
		n, err := normalizeOrigin(o)
		if err != nil {
			report(fmt.Sprintf("cluster%sorigin[%d]", keyDelim, i), "%v", err)
			n = o
		}
		origins = append(origins, n)
	}
	v.Cluster.Origin = origins
	if !isDefaults && v.Cluster.Mode == ModeRemote && len(v.Cluster.Origin) == 0 {
		p.add(prefix+keyDelim+"cluster"+keyDelim+"origin", "must list at least one origin when cluster%smode is remote", keyDelim)
	}
}

// isSet reports whether the nested key path is present in m.
func isSet(m map[string]any, path []string) bool {
	for i, k := range path {
		v, ok := m[k]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		if m, ok = asMap(v); !ok {
			return false
		}
	}
	return false
}

// checkListen checks a listen address: host:port, port 1..65535, the host
// empty (all interfaces), an IP address or a host name.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not a valid host:port: %v", addr, stripAddrErr(err))
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("%q: invalid host %q", addr, host)
	}
	return nil
}

// normalizeOrigin checks an origin written as host or host:port and returns
// it as host:port, adding the default port 1935 when missing.
func normalizeOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("must not be empty")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port (or an IPv6 address without brackets).
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), defaultOriginPort
	} else if err := checkPort(port); err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	if !validHost(host) {
		return "", fmt.Errorf("%q is not a valid host or host:port", s)
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port must be a number between 1 and 65535, got %q", port)
	}
	return nil
}

// validHost reports whether h is an IP address (IPv6 with an optional zone)
// or a host name of letters, digits, '-' and '_' labels separated by dots.
func validHost(h string) bool {
	if ip, _, _ := strings.Cut(h, "%"); net.ParseIP(ip) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// stripAddrErr drops the address net.SplitHostPort repeats in its error.
func stripAddrErr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

// isLoopback reports whether a host:port listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
