// Package conf holds the rtmpedge configuration: its schema, the embedded
// default (default.yaml, also the operator's reference), loading from YAML,
// JSON or TOML through viper, validation, and per-vhost resolution with each
// vhost's settings laid over vhost_defaults.
//
// A *Config is immutable once built: share it freely between goroutines and
// load a new one to change settings.
package conf

import (
	_ "embed"
	"log/slog"
	"strings"
	"time"
)

// DefaultVhost is the name of the vhost used by clients that name no vhost
// with a section of its own (written __defaultVhost__; names are lowercased).
const DefaultVhost = "__defaultvhost__"

// DefaultSource is Config.Source for the embedded default.
const DefaultSource = "embedded default"

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns a copy of the embedded default configuration file.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Config is a loaded, validated configuration. Treat it as read-only.
type Config struct {
	Listen           []string      `mapstructure:"listen"`
	MaxConnections   int           `mapstructure:"max_connections"`
	ChunkSize        int           `mapstructure:"chunk_size"`
	MaxMessageSize   ByteSize      `mapstructure:"max_message_size"`
	MaxCommandSize   ByteSize      `mapstructure:"max_command_size"`   // limit before a connection publishes
	MaxInflightBytes ByteSize      `mapstructure:"max_inflight_bytes"` // reassembly memory of all client connections
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`
	IdleTimeout      time.Duration `mapstructure:"idle_timeout"`
	Capacity         Capacity      `mapstructure:"capacity"`
	HTTP             HTTP          `mapstructure:"http"`
	API              API           `mapstructure:"api"`
	Log              Log           `mapstructure:"log"`
	// Cluster is the origin cluster's stream registry (not a vhost's
	// cluster section, which says how that vhost sources its streams).
	Cluster OriginCluster `mapstructure:"cluster"`
	// Vhosts is keyed by lowercased name; it contains DefaultVhost when the
	// file (or the embedded default) defines it.
	Vhosts map[string]*Vhost `mapstructure:"-"`
	// Source is the file path, "embedded default", or "" for Parse.
	Source string `mapstructure:"-"`
}

// Capacity limits what the server takes on, so that the viewers it already
// serves keep their stream when more ask than the box or its link can carry.
type Capacity struct {
	MaxPlayers int      `mapstructure:"max_players"` // 0: no limit
	MaxEgress  BitRate  `mapstructure:"max_egress"`  // 0: no limit
	Redirect   []string `mapstructure:"redirect"`    // sibling edges (host:port) refused players are sent to
	// Link is the rate of the box's uplink, which paced merged writes are
	// sized for; PaceBurst is the link time one slot's burst may take.
	Link      BitRate       `mapstructure:"link"`
	PaceBurst time.Duration `mapstructure:"pace_burst"`
	// BusyLoad is the share of Link (0 to 1) from which the box counts as
	// busy: its players' merged writes then use half their window. 0: never.
	BusyLoad float64 `mapstructure:"busy_load"`
}

// HTTP configures HTTP-FLV and WebSocket-FLV players, served on the same
// event loops as RTMP.
type HTTP struct {
	Listen        []string      `mapstructure:"listen"`         // host:port list; empty: no HTTP
	HeaderTimeout time.Duration `mapstructure:"header_timeout"` // the request head must arrive within it
	CORSOrigin    string        `mapstructure:"cors_origin"`    // Access-Control-Allow-Origin; empty: no CORS headers
}

// API configures the HTTP API (SRS-compatible /api/v1, Prometheus
// /metrics, health and reload), served by its own listener.
type API struct {
	Listen string `mapstructure:"listen"` // host:port; empty: no API
	// Auth is "user:password" for HTTP basic authentication of every path
	// except the health check; empty: none (allowed on loopback only).
	Auth string `mapstructure:"auth"`
}

// OriginCluster configures the stream registry that keeps one source per
// stream across many origins and edges: origins claim the streams published
// to them in Redis, edges and origins look streams up there.
type OriginCluster struct {
	// Registry is redis://[user:password@]host:port[/db] (rediss:// for
	// TLS); empty: no registry.
	Registry string `mapstructure:"registry"`
	// Advertise is the host:port other servers reach this one's RTMP on,
	// written into its claims. Validation fills it from the first listen
	// address when that names a host.
	Advertise     string        `mapstructure:"advertise"`
	ClaimTTL      time.Duration `mapstructure:"claim_ttl"`      // a claim not renewed this long expires
	Heartbeat     time.Duration `mapstructure:"heartbeat"`      // claims are renewed this often
	LookupTimeout time.Duration `mapstructure:"lookup_timeout"` // one registry request (and a liveness probe)
	OnConflict    string        `mapstructure:"on_conflict"`    // "refuse" or "redirect"
}

// Enabled reports whether a stream registry is configured.
func (c OriginCluster) Enabled() bool { return c.Registry != "" }

// What an origin does with a publish of a stream claimed by another origin.
const (
	ConflictRefuse   = "refuse"
	ConflictRedirect = "redirect"
)

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn or error
	Format string `mapstructure:"format"` // text or json
}

// Vhost is the resolved configuration of one virtual host.
type Vhost struct {
	Name               string        `mapstructure:"-"` // lowercased name
	Enabled            bool          `mapstructure:"enabled"`
	GopCache           bool          `mapstructure:"gop_cache"`
	GopCacheMaxBytes   ByteSize      `mapstructure:"gop_cache_max_bytes"`
	MergedWrite        time.Duration `mapstructure:"merged_write"`
	PlayerBacklog      time.Duration `mapstructure:"player_backlog"`
	PlayerBacklogBytes ByteSize      `mapstructure:"player_backlog_max_bytes"`
	PlayerLagTimeout   time.Duration `mapstructure:"player_lag_timeout"`
	PublishIdleTimeout time.Duration `mapstructure:"publish_idle_timeout"`
	PlayWaitTimeout    time.Duration `mapstructure:"play_wait_timeout"`
	Cluster            Cluster       `mapstructure:"cluster"`
	Hooks              Hooks         `mapstructure:"hooks"`
}

// Cluster says whether a vhost serves its own publishes or works as an edge,
// and how an edge uses its origins.
type Cluster struct {
	Mode           string        `mapstructure:"mode"`            // "local" or "remote"
	Origin         []string      `mapstructure:"origin"`          // host:port (":1935" added when the port is missing)
	Select         string        `mapstructure:"select"`          // "failover" (list order) or "hash" (per-stream order)
	Vhost          string        `mapstructure:"vhost"`           // vhost named upstream ("": the client's)
	DebugUpnode    bool          `mapstructure:"debug_upnode"`    // send our server info in the upstream connect
	TokenTraverse  bool          `mapstructure:"token_traverse"`  // let the origin decide each client's connect
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"` // TCP connect to an origin
	CommandTimeout time.Duration `mapstructure:"command_timeout"` // handshake, connect and play/publish answered
	NoDataTimeout  time.Duration `mapstructure:"no_data_timeout"` // an upstream player receiving nothing this long fails over
	RetryMin       time.Duration `mapstructure:"retry_min"`       // first wait after every origin failed
	RetryMax       time.Duration `mapstructure:"retry_max"`       // longest wait between rounds
	DeadOriginTTL  time.Duration `mapstructure:"dead_origin_ttl"` // an origin that failed is tried last this long
	Linger         time.Duration `mapstructure:"linger"`          // an upstream without players stays this long
	PublishTimeout time.Duration `mapstructure:"publish_timeout"` // a forwarded publisher waits this long for an origin
	PublishBuffer  ByteSize      `mapstructure:"publish_buffer"`  // media held for the origin while reconnecting
}

// Hooks are HTTP callbacks that decide connects, publishes and plays
// (SRS-compatible JSON bodies; HTTP 200 with code 0 allows).
type Hooks struct {
	OnConnect string        `mapstructure:"on_connect"`
	OnPublish string        `mapstructure:"on_publish"`
	OnPlay    string        `mapstructure:"on_play"`
	Timeout   time.Duration `mapstructure:"timeout"`
	// Notifications, posted in the background after the fact; their
	// answers are not read for a verdict.
	OnUnpublish string `mapstructure:"on_unpublish"`
	OnStop      string `mapstructure:"on_stop"`
	OnClose     string `mapstructure:"on_close"`
}

// Origin selection policies.
const (
	SelectFailover = "failover"
	SelectHash     = "hash"
)

// Cluster modes.
const (
	ModeLocal  = "local"
	ModeRemote = "remote"
)

// Default returns the embedded default configuration.
func Default() (*Config, error) {
	return parse(defaultYAML, "yaml", DefaultSource)
}

// Vhost resolves a vhost name from a client's tcUrl host or ?vhost=
// parameter: an exact case-insensitive match, else the default vhost, else
// nil. A vhost with enabled: false is returned as nil too (a disabled named
// vhost does not fall back to the default vhost).
func (c *Config) Vhost(name string) *Vhost {
	if c == nil {
		return nil
	}
	v, ok := c.Vhosts[strings.ToLower(name)]
	if !ok {
		v = c.Vhosts[DefaultVhost]
	}
	if v == nil || !v.Enabled {
		return nil
	}
	return v
}

// SlogLevel returns the slog.Level for Log.Level (info when unknown).
func (l Log) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
