package conf_test

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
)

func mustParse(t *testing.T, format, data string) *conf.Config {
	t.Helper()
	c, err := conf.Parse([]byte(data), format)
	if err != nil {
		t.Fatalf("Parse(%s): %v\n%s", format, err, data)
	}
	return c
}

func parseErr(t *testing.T, format, data string) error {
	t.Helper()
	_, err := conf.Parse([]byte(data), format)
	if err == nil {
		t.Fatalf("Parse(%s) succeeded, want an error\n%s", format, data)
	}
	return err
}

// wantDefaultVhost is vhost_defaults of the embedded file.
func wantDefaultVhost(name string) conf.Vhost {
	return conf.Vhost{
		Name:               name,
		Enabled:            true,
		GopCache:           true,
		GopCacheMaxBytes:   16 * conf.MiB,
		MergedWrite:        350 * time.Millisecond,
		PlayerBacklog:      5 * time.Second,
		PlayerBacklogBytes: 8 * conf.MiB,
		PlayerLagTimeout:   10 * time.Second,
		PublishIdleTimeout: 20 * time.Second,
		PlayWaitTimeout:    0,
		Cluster:            wantCluster(conf.ModeLocal, []string{}),
		Hooks:              conf.Hooks{Timeout: 3 * time.Second},
	}
}

// wantCluster is the default cluster section with mode and origins set.
func wantCluster(mode string, origins []string) conf.Cluster {
	return conf.Cluster{
		Mode: mode, Origin: origins, Select: conf.SelectFailover, DebugUpnode: true,
		ConnectTimeout: 2 * time.Second, CommandTimeout: 5 * time.Second, NoDataTimeout: 3 * time.Second,
		RetryMin: 200 * time.Millisecond, RetryMax: 3 * time.Second, DeadOriginTTL: 10 * time.Second,
		Linger: 3 * time.Second, PublishTimeout: 10 * time.Second, PublishBuffer: 8 * conf.MiB,
	}
}

func TestDefault(t *testing.T) {
	c, err := conf.Default()
	if err != nil {
		t.Fatal(err)
	}
	want := &conf.Config{
		Listen:           []string{"0.0.0.0:1935"},
		MaxConnections:   10000,
		ChunkSize:        4096,
		MaxMessageSize:   8 * conf.MiB,
		MaxCommandSize:   64 * conf.KiB,
		MaxInflightBytes: 16 * conf.MiB,
		HandshakeTimeout: 10 * time.Second,
		IdleTimeout:      30 * time.Second,
		Capacity:         conf.Capacity{Redirect: []string{}, Link: 1_000_000_000, PaceBurst: 80 * time.Millisecond, BusyLoad: 0.8},
		HTTP:             conf.HTTP{Listen: []string{}, HeaderTimeout: 10 * time.Second, CORSOrigin: "*"},
		Log:              conf.Log{Level: "info", Format: "text"},
		Cluster:          conf.OriginCluster{ClaimTTL: 10 * time.Second, Heartbeat: 3 * time.Second, LookupTimeout: 200 * time.Millisecond, OnConflict: conf.ConflictRefuse},
		Vhosts:           map[string]*conf.Vhost{conf.DefaultVhost: ptr(wantDefaultVhost(conf.DefaultVhost))},
		Source:           "embedded default",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() =\n%s\nwant\n%s", dump(c), dump(want))
	}
	if c.Log.SlogLevel() != slog.LevelInfo {
		t.Errorf("SlogLevel = %v", c.Log.SlogLevel())
	}

	l, err := conf.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l, c) {
		t.Errorf("Load(\"\") differs from Default()")
	}
	// Each call builds a fresh Config: changing one does not affect another.
	l.Listen[0] = "changed:1"
	l.Vhosts[conf.DefaultVhost].MergedWrite = 0
	if c2, _ := conf.Default(); !reflect.DeepEqual(c2, c) {
		t.Errorf("Default() shares state between calls")
	}
}

// TestDefaultFileDocumented checks that default.yaml names every key of the
// schema and comments every key.
func TestDefaultFileDocumented(t *testing.T) {
	data := conf.DefaultYAML()
	keyRE := regexp.MustCompile(`^\s*([A-Za-z_]+):`)
	found := map[string]bool{}
	prevComment := false
	for i, line := range strings.Split(string(data), "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case trim == "":
			prevComment = false
			continue
		case strings.HasPrefix(trim, "#"):
			prevComment = true
			continue
		}
		m := keyRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d: unexpected line %q", i+1, line)
			continue
		}
		found[strings.ToLower(m[1])] = true
		if !prevComment && !strings.Contains(line, "#") {
			// Section keys of vhosts are documented by the section comment.
			if m[1] != "__defaultVhost__" {
				t.Errorf("line %d: key %q has no comment", i+1, m[1])
			}
		}
		prevComment = false
	}
	var want []string
	for _, typ := range []reflect.Type{reflect.TypeFor[conf.Config](), reflect.TypeFor[conf.Log](), reflect.TypeFor[conf.Vhost](), reflect.TypeFor[conf.Cluster](), reflect.TypeFor[conf.OriginCluster]()} {
		for f := range typ.Fields() {
			if tag := f.Tag.Get("mapstructure"); tag != "-" {
				want = append(want, tag)
			}
		}
	}
	want = append(want, "vhost_defaults", "vhosts", conf.DefaultVhost)
	for _, k := range want {
		if !found[k] {
			t.Errorf("default.yaml does not document key %q", k)
		}
	}
}

const sameYAML = `
listen: ["127.0.0.1:1935", "[::1]:1936"]
max_connections: 50
chunk_size: 60000
max_message_size: 16MiB
handshake_timeout: 5s
idle_timeout: 1m
log: {level: DEBUG, format: json}
vhost_defaults:
  gop_cache_max_bytes: 1048576
  player_backlog: 2s
  cluster:
    origin: ["o1.example.com", "10.0.0.2:1940"]
vhosts:
  __defaultVhost__: {}
  Live.Example.com:
    merged_write: 0s
    play_wait_timeout: 2s
  edge.example.com:
    gop_cache: false
    cluster:
      mode: remote
      origin: ["origin.example.com"]
  off.example.com:
    enabled: false
`

const sameJSON = `{
  "listen": ["127.0.0.1:1935", "[::1]:1936"],
  "max_connections": 50,
  "chunk_size": 60000,
  "max_message_size": "16MiB",
  "handshake_timeout": "5s",
  "idle_timeout": "1m",
  "log": {"level": "DEBUG", "format": "json"},
  "vhost_defaults": {
    "gop_cache_max_bytes": 1048576,
    "player_backlog": "2s",
    "cluster": {"origin": ["o1.example.com", "10.0.0.2:1940"]}
  },
  "vhosts": {
    "__defaultVhost__": {},
    "Live.Example.com": {"merged_write": "0s", "play_wait_timeout": "2s"},
    "edge.example.com": {"gop_cache": false, "cluster": {"mode": "remote", "origin": ["origin.example.com"]}},
    "off.example.com": {"enabled": false}
  }
}`

const sameTOML = `
listen = ["127.0.0.1:1935", "[::1]:1936"]
max_connections = 50
chunk_size = 60000
max_message_size = "16MiB"
handshake_timeout = "5s"
idle_timeout = "1m"

[log]
level = "DEBUG"
format = "json"

[vhost_defaults]
gop_cache_max_bytes = 1048576
player_backlog = "2s"

[vhost_defaults.cluster]
origin = ["o1.example.com", "10.0.0.2:1940"]

[vhosts.__defaultVhost__]

[vhosts."Live.Example.com"]
merged_write = "0s"
play_wait_timeout = "2s"

[vhosts."edge.example.com"]
gop_cache = false

[vhosts."edge.example.com".cluster]
mode = "remote"
origin = ["origin.example.com"]

[vhosts."off.example.com"]
enabled = false
`

func TestFormatsIdentical(t *testing.T) {
	y := mustParse(t, "yaml", sameYAML)
	j := mustParse(t, "json", sameJSON)
	tm := mustParse(t, "toml", sameTOML)
	if !reflect.DeepEqual(y, j) {
		t.Errorf("YAML and JSON differ:\n%s\n%s", dump(y), dump(j))
	}
	if !reflect.DeepEqual(y, tm) {
		t.Errorf("YAML and TOML differ:\n%s\n%s", dump(y), dump(tm))
	}

	// Spot-check the result.
	if y.MaxMessageSize != 16*conf.MiB || y.IdleTimeout != time.Minute || y.Log.Level != "debug" || y.Log.SlogLevel() != slog.LevelDebug {
		t.Errorf("top level: %s", dump(y))
	}
	if got := slices.Sorted(maps.Keys(y.Vhosts)); !slices.Equal(got, []string{conf.DefaultVhost, "edge.example.com", "live.example.com", "off.example.com"}) {
		t.Errorf("vhost names = %v", got)
	}
	live := y.Vhosts["live.example.com"]
	wantLive := wantDefaultVhost("live.example.com")
	wantLive.GopCacheMaxBytes = conf.MiB
	wantLive.PlayerBacklog = 2 * time.Second
	wantLive.MergedWrite = 0
	wantLive.PlayWaitTimeout = 2 * time.Second
	wantLive.Cluster.Origin = []string{"o1.example.com:1935", "10.0.0.2:1940"}
	if !reflect.DeepEqual(*live, wantLive) {
		t.Errorf("live vhost = %+v\nwant %+v", *live, wantLive)
	}
	edge := y.Vhosts["edge.example.com"]
	if edge.GopCache || edge.Cluster.Mode != conf.ModeRemote || !slices.Equal(edge.Cluster.Origin, []string{"origin.example.com:1935"}) || edge.PlayerBacklog != 2*time.Second {
		t.Errorf("edge vhost = %+v", *edge)
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	want := mustParse(t, "yaml", sameYAML)
	for name, data := range map[string]string{"a.yaml": sameYAML, "b.YML": sameYAML, "c.json": sameJSON, "d.toml": sameTOML} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := conf.Load(path)
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		if c.Source != path {
			t.Errorf("Source = %q, want %q", c.Source, path)
		}
		c.Source = ""
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Load(%s) differs from Parse", name)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.yaml")
	_, err := conf.Load(missing)
	if err == nil || !strings.HasPrefix(err.Error(), "conf: read "+missing+": ") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}

	for name, data := range map[string]string{
		"bad.yaml": "listen: [\n  - x: : :",
		"bad.json": `{"listen": [}`,
		"bad.toml": "listen = [",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := conf.Load(path)
		if err == nil || !strings.HasPrefix(err.Error(), "conf: parse "+path+": ") {
			t.Errorf("%s: %v", name, err)
		}
	}

	ini := filepath.Join(dir, "x.ini")
	if err := os.WriteFile(ini, []byte("a=1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := conf.Load(ini); err == nil || !strings.Contains(err.Error(), ini) || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("ini: %v", err)
	}
	if _, err := conf.Parse([]byte("{}"), "xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("Parse xml: %v", err)
	}

	// Validation errors from a file name the file, the key and the problem.
	path := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(path, []byte("chunk_size: 70000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = conf.Load(path)
	if want := "conf: " + path + ": chunk_size: must be between 128 and 65536, got 70000"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestVhostResolution(t *testing.T) {
	c := mustParse(t, "yaml", `
vhosts:
  __defaultVhost__: {merged_write: 100ms}
  Live.Example.COM: {merged_write: 0s}
  off.example.com: {enabled: false}
`)
	for _, tc := range []struct{ name, want string }{
		{"live.example.com", "live.example.com"},
		{"LIVE.example.com", "live.example.com"},
		{"Live.Example.Com", "live.example.com"},
		{"other.example.com", conf.DefaultVhost},
		{"", conf.DefaultVhost},
		{"__defaultVhost__", conf.DefaultVhost},
		{"example.com", conf.DefaultVhost},
	} {
		v := c.Vhost(tc.name)
		if v == nil || v.Name != tc.want {
			t.Errorf("Vhost(%q) = %+v, want %s", tc.name, v, tc.want)
		}
	}
	if v := c.Vhost("off.example.com"); v != nil {
		t.Errorf("disabled vhost resolved to %+v", v)
	}
	if v := c.Vhost("OFF.example.com"); v != nil {
		t.Errorf("disabled vhost resolved to %+v", v)
	}
	if c.Vhosts["off.example.com"] == nil || c.Vhosts["off.example.com"].Enabled {
		t.Errorf("disabled vhost missing from Vhosts")
	}

	// No default vhost: only named vhosts resolve.
	c = mustParse(t, "yaml", "vhosts: {live.example.com: {}}")
	if c.Vhost("live.example.com") == nil {
		t.Error("named vhost not found")
	}
	if v := c.Vhost("other"); v != nil {
		t.Errorf("Vhost(other) = %+v, want nil without a default vhost", v)
	}
	if _, ok := c.Vhosts[conf.DefaultVhost]; ok {
		t.Error("default vhost added although the file defines vhosts without it")
	}

	// Disabled default vhost: unknown names resolve to nil.
	c = mustParse(t, "yaml", "vhosts: {__defaultVhost__: {enabled: false}, a.b: {}}")
	if c.Vhost("x") != nil || c.Vhost("a.b") == nil {
		t.Error("disabled default vhost")
	}
	// Disabled by vhost_defaults, enabled by a vhost.
	c = mustParse(t, "yaml", "vhost_defaults: {enabled: false}\nvhosts: {__defaultVhost__: ~, a.b: {enabled: true}}")
	if c.Vhost("x") != nil || c.Vhost("a.b") == nil {
		t.Error("vhost_defaults enabled: false")
	}

	var nilConfig *conf.Config
	if nilConfig.Vhost("x") != nil {
		t.Error("nil Config")
	}
}

func TestVhostLayering(t *testing.T) {
	c := mustParse(t, "yaml", `
vhost_defaults:
  player_backlog: 3s
  cluster:
    mode: remote
    origin: [a.example.com, b.example.com:1940]
vhosts:
  one.example.com:
    merged_write: 0s
  two.example.com:
    cluster:
      origin: [c.example.com]
  three.example.com:
    cluster:
      mode: local
      origin: []
  empty.example.com: {}
  null.example.com:
  null-cluster.example.com:
    cluster:
`)
	def := wantDefaultVhost("")
	def.PlayerBacklog = 3 * time.Second
	def.Cluster = wantCluster(conf.ModeRemote, []string{"a.example.com:1935", "b.example.com:1940"})

	want := map[string]func(v *conf.Vhost){
		"one.example.com":          func(v *conf.Vhost) { v.MergedWrite = 0 },
		"two.example.com":          func(v *conf.Vhost) { v.Cluster.Origin = []string{"c.example.com:1935"} },
		"three.example.com":        func(v *conf.Vhost) { v.Cluster = wantCluster(conf.ModeLocal, []string{}) },
		"empty.example.com":        func(v *conf.Vhost) {},
		"null.example.com":         func(v *conf.Vhost) {},
		"null-cluster.example.com": func(v *conf.Vhost) {},
	}
	if len(c.Vhosts) != len(want) {
		t.Errorf("got %d vhosts, want %d", len(c.Vhosts), len(want))
	}
	for name, change := range want {
		w := def
		w.Name = name
		w.Cluster.Origin = slices.Clone(def.Cluster.Origin)
		change(&w)
		got := c.Vhosts[name]
		if got == nil || !reflect.DeepEqual(*got, w) {
			t.Errorf("%s = %+v\nwant %+v", name, got, w)
		}
	}
}

func TestTopLevelLayering(t *testing.T) {
	c := mustParse(t, "yaml", "log: {level: warn}\nchunk_size: 128\n")
	d, _ := conf.Default()
	d.Log.Level = "warn"
	d.ChunkSize = 128
	d.Source = ""
	if !reflect.DeepEqual(c, d) {
		t.Errorf("got\n%s\nwant\n%s", dump(c), dump(d))
	}
	// An empty document is the default configuration.
	for _, f := range []string{"yaml", "json", "toml"} {
		data := ""
		if f == "json" {
			data = "{}"
		}
		c := mustParse(t, f, data)
		if !reflect.DeepEqual(c, &conf.Config{Listen: d.Listen, MaxConnections: d.MaxConnections, ChunkSize: 4096, MaxMessageSize: d.MaxMessageSize,
			MaxCommandSize: d.MaxCommandSize, MaxInflightBytes: d.MaxInflightBytes,
			HandshakeTimeout: d.HandshakeTimeout, IdleTimeout: d.IdleTimeout, Capacity: d.Capacity, HTTP: d.HTTP, Log: conf.Log{Level: "info", Format: "text"}, Cluster: d.Cluster, Vhosts: d.Vhosts}) {
			t.Errorf("%s: empty document: %s", f, dump(c))
		}
	}
	// A single listen string, a list shorter than the default's.
	c = mustParse(t, "yaml", "listen: 127.0.0.1:1\n")
	if !slices.Equal(c.Listen, []string{"127.0.0.1:1"}) {
		t.Errorf("listen = %v", c.Listen)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"listen empty", "listen: []", "listen: must list at least one host:port"},
		{"listen no port", "listen: [example.com]", `listen[0]: "example.com" is not a valid host:port: missing port in address`},
		{"listen port 0", `listen: ["0.0.0.0:1935", ":0"]`, `listen[1]: ":0": port must be a number between 1 and 65535, got "0"`},
		{"listen port big", `listen: ["127.0.0.1:65536"]`, `listen[0]: "127.0.0.1:65536": port must be a number between 1 and 65535`},
		{"listen bad host", `listen: ["bad host:1935"]`, `listen[0]: "bad host:1935": invalid host`},
		{"max_connections", "max_connections: 0", "max_connections: must be at least 1, got 0"},
		{"chunk_size low", "chunk_size: 127", "chunk_size: must be between 128 and 65536, got 127"},
		{"chunk_size high", "chunk_size: 70000", "chunk_size: must be between 128 and 65536, got 70000"},
		{"max_message_size low", "max_message_size: 1000", "max_message_size: must be between 1KiB and 64MiB, got 1000B"},
		{"max_message_size high", "max_message_size: 65MiB", "max_message_size: must be between 1KiB and 64MiB, got 65MiB"},
		{"max_message_size unit", "max_message_size: 8XB", `max_message_size: invalid size "8XB"`},
		{"max_command_size low", "max_command_size: 100", "max_command_size: must be between 1KiB and 64MiB, got 100B"},
		{"max_inflight_bytes low", "max_inflight_bytes: 1MiB", "max_inflight_bytes: must be at least max_message_size (8MiB), got 1MiB"},
		{"handshake_timeout zero", "handshake_timeout: 0s", "handshake_timeout: must be positive, got 0s"},
		{"handshake_timeout negative", "handshake_timeout: -1s", "handshake_timeout: must be positive, got -1s"},
		{"handshake_timeout no unit", "handshake_timeout: 10", "handshake_timeout: must be a duration with a unit"},
		{"idle_timeout", "idle_timeout: 0s", "idle_timeout: must be positive, got 0s"},
		{"idle_timeout garbage", "idle_timeout: soon", `idle_timeout: must be a duration such as 10s or 350ms, got "soon"`},
		{"log level", "log: {level: verbose}", `log::level: must be one of debug, info, warn, error, got "verbose"`},
		{"log format", "log: {format: xml}", `log::format: must be one of text, json, got "xml"`},
		{"chunk_size type", "chunk_size: big", "chunk_size: cannot parse value as 'int'"},
		{"vhost merged_write negative", "vhosts: {live.example.com: {merged_write: -1s}}", "vhosts::live.example.com::merged_write: must not be negative, got -1s"},
		{"vhost merged_write high", "vhosts: {live.example.com: {merged_write: 6s}}", "vhosts::live.example.com::merged_write: must be at most 5s, got 6s"},
		{"vhost player_lag_timeout", "vhosts: {a: {player_lag_timeout: -1s}}", "vhosts::a::player_lag_timeout: must not be negative, got -1s"},
		{"vhost publish_idle_timeout", "vhosts: {a: {publish_idle_timeout: -2m}}", "vhosts::a::publish_idle_timeout: must not be negative, got -2m0s"},
		{"vhost play_wait_timeout", "vhosts: {a: {play_wait_timeout: -1ms}}", "vhosts::a::play_wait_timeout: must not be negative, got -1ms"},
		{"vhost player_backlog", "vhosts: {a: {player_backlog: 500ms}}", "vhosts::a::player_backlog: must be between 1s and 1m0s of media, got 500ms"},
		{"vhost player_backlog as bytes", "vhosts: {a: {player_backlog: 4MiB}}", "vhosts::a::player_backlog: must be a duration such as 10s or 350ms, got \"4MiB\""},
		{"max_egress unit", "capacity: {max_egress: 9Tbit}", "capacity::max_egress"},
		{"link zero", "capacity: {link: 0}", "capacity::link: must be positive"},
		{"http listen", "http: {listen: [\"127.0.0.1\"]}", "http::listen[0]: \"127.0.0.1\" is not a valid host:port"},
		{"http port clash", "listen: [\"127.0.0.1:1935\"]\nhttp: {listen: [\"127.0.0.1:1935\"]}", "http::listen[0]: port 1935 is also an RTMP listen port"},
		{"http header_timeout", "http: {header_timeout: 0s}", "http::header_timeout: must be positive"},
		{"api beyond loopback", "api: {listen: \"0.0.0.0:1985\"}", "api::listen: 0.0.0.0:1985 is reachable beyond loopback: set api::auth"},
		{"api all interfaces", "api: {listen: \":1985\"}", "api::listen: :1985 is reachable beyond loopback"},
		{"api port clash", "listen: [\"127.0.0.1:1935\"]\napi: {listen: \"127.0.0.1:1935\"}", "api::listen: port 1935 is also an RTMP or HTTP listen port"},
		{"api auth form", "api: {listen: \"127.0.0.1:1985\", auth: nopassword}", "api::auth: must be user:password"},
		{"pace_burst short", "capacity: {pace_burst: 100us}", "capacity::pace_burst: must be between 1ms and 1s, got 100µs"},
		{"pace_burst long", "capacity: {pace_burst: 2s}", "capacity::pace_burst: must be between 1ms and 1s, got 2s"},
		{"busy_load over 1", "capacity: {busy_load: 1.5}", "capacity::busy_load: must be between 0 and 1 (a share of link; 0: never busy), got 1.5"},
		{"busy_load negative", "capacity: {busy_load: -0.1}", "capacity::busy_load: must be between 0 and 1 (a share of link; 0: never busy), got -0.1"},
		{"max_players", "capacity: {max_players: -1}", "capacity::max_players: must not be negative"},
		{"vhost gop_cache_max_bytes", "vhosts: {a: {gop_cache_max_bytes: -1}}", "vhosts::a::gop_cache_max_bytes: must not be negative, got -1B"},
		{"vhost cluster mode", "vhosts: {a: {cluster: {mode: proxy}}}", `vhosts::a::cluster::mode: must be one of local, remote, got "proxy"`},
		{"vhost cluster select", "vhosts: {a: {cluster: {select: random}}}", `vhosts::a::cluster::select: must be one of failover, hash, got "random"`},
		{"vhost connect timeout", "vhosts: {a: {cluster: {connect_timeout: 0s}}}", "vhosts::a::cluster::connect_timeout: must be positive, got 0s"},
		{"vhost retry order", "vhosts: {a: {cluster: {retry_min: 5s, retry_max: 1s}}}", "vhosts::a::cluster::retry_max: must not be less than retry_min 5s, got 1s"},
		{"vhost linger negative", "vhosts: {a: {cluster: {linger: -1s}}}", "vhosts::a::cluster::linger: must not be negative, got -1s"},
		{"vhost publish buffer", "vhosts: {a: {cluster: {publish_buffer: 1KiB}}}", "vhosts::a::cluster::publish_buffer: must be at least 64KiB, got 1KiB"},
		{"vhost hook url", "vhosts: {a: {hooks: {on_play: 'ftp://x'}}}", `vhosts::a::hooks::on_play: must be an http:// URL (for https, put a local TLS proxy in front), got "ftp://x"`},
		{"vhost remote without origin", "vhosts: {edge.example.com: {cluster: {mode: remote}}}", "vhosts::edge.example.com::cluster::origin: must list at least one origin when cluster::mode is remote"},
		{"vhost origin bad host", "vhosts: {a: {cluster: {origin: [ok.example.com, 'bad host']}}}", `vhosts::a::cluster::origin[1]: "bad host" is not a valid host or host:port`},
		{"vhost origin bad port", "vhosts: {a: {cluster: {origin: ['o.example.com:99999']}}}", `vhosts::a::cluster::origin[0]: "o.example.com:99999": port must be a number between 1 and 65535`},
		{"vhost origin empty", "vhosts: {a: {cluster: {origin: ['']}}}", "vhosts::a::cluster::origin[0]: must not be empty"},
		{"vhost origin url", "vhosts: {a: {cluster: {origin: ['rtmp://o.example.com']}}}", `vhosts::a::cluster::origin[0]: "rtmp://o.example.com"`},
		{"vhost name empty", `vhosts: {"": {}}`, "vhosts: vhost name must not be empty"},
		{"vhost not a map", "vhosts: {a: 3}", "vhosts::a: must be a map of vhost settings, got 3"},
		{"vhost bool type", "vhosts: {a: {gop_cache: maybe}}", "vhosts::a::gop_cache: cannot parse value as 'bool'"},
		{"vhosts empty", "vhosts: {}", "vhosts: must define at least one vhost"},
		{"vhosts not a map", "vhosts: [a, b]", "vhosts: must be a map of vhost names to settings, got a list"},
		{"vhost_defaults not a map", "vhost_defaults: 1", "vhost_defaults: must be a map of vhost settings, got 1"},
		{"vhost_defaults merged_write", "vhost_defaults: {merged_write: -1s}", "vhost_defaults::merged_write: must not be negative, got -1s"},
		{"vhost_defaults player_backlog_max_bytes", "vhost_defaults: {player_backlog_max_bytes: 1KiB}", "vhost_defaults::player_backlog_max_bytes: must be at least 64KiB, got 1KiB"},
		{"vhost_defaults mode", "vhost_defaults: {cluster: {mode: x}}", `vhost_defaults::cluster::mode: must be one of local, remote, got "x"`},
		{"registry scheme", "cluster: {registry: 'http://127.0.0.1:6379'}", `cluster::registry: must be a redis:// or rediss:// URL, got "http://127.0.0.1:6379"`},
		{"registry no port", "cluster: {registry: 'redis://127.0.0.1'}", `cluster::registry: must name host:port, got "redis://127.0.0.1"`},
		{"registry bad port", "cluster: {registry: 'redis://127.0.0.1:0'}", `cluster::registry: "redis://127.0.0.1:0": port must be a number between 1 and 65535`},
		{"registry db", "cluster: {registry: 'redis://127.0.0.1:6379/x'}", `cluster::registry: the path must be a database number`},
		{"registry query", "cluster: {registry: 'redis://127.0.0.1:6379/0?dial_timeout=1s'}", `cluster::registry: "redis://127.0.0.1:6379/0?dial_timeout=1s": query parameters are not supported`},
		{"registry password hidden", "cluster: {registry: 'redis://u:secret@127.0.0.1:6379/x'}", `cluster::registry: the path must be a database number (redis://host:port/0), got "redis://u:xxxxx@127.0.0.1:6379/x"`},
		{"claim_ttl", "cluster: {claim_ttl: 500ms}", "cluster::claim_ttl: must be at least 1s, got 500ms"},
		{"heartbeat over half", "cluster: {claim_ttl: 4s, heartbeat: 3s}", "cluster::heartbeat: must be positive and at most half of claim_ttl (2s), got 3s"},
		{"heartbeat zero", "cluster: {heartbeat: 0s}", "cluster::heartbeat: must be positive"},
		{"lookup_timeout", "cluster: {lookup_timeout: 10s}", "cluster::lookup_timeout: must be between 1ms and 5s, got 10s"},
		{"on_conflict", "cluster: {on_conflict: steal}", `cluster::on_conflict: must be one of refuse, redirect, got "steal"`},
		{"advertise wildcard", "cluster: {advertise: '0.0.0.0:1935'}", `cluster::advertise: "0.0.0.0:1935": other servers cannot dial a wildcard address`},
		{"advertise no port", "cluster: {advertise: 'o1.example.com'}", `cluster::advertise: "o1.example.com" is not a valid host:port`},
		{"advertise needed", "listen: ['0.0.0.0:1935']\ncluster: {registry: 'redis://127.0.0.1:6379'}", "cluster::advertise: must be set: this server claims streams"},
		{"advertise needed empty host", "listen: [':1935']\ncluster: {registry: 'redis://127.0.0.1:6379'}", `cluster::advertise: must be set: this server claims streams (it has a registry and an origin vhost) and its first listen address ":1935" names no host`},
		{"vhost_defaults remote inherited", "vhost_defaults: {cluster: {mode: remote}}", "vhosts::__defaultvhost__::cluster::origin: must list at least one origin when cluster::mode is remote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parseErr(t, "yaml", tc.yaml)
			if !strings.Contains(err.Error(), "conf: "+tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, "conf: "+tc.want)
			}
		})
	}
}

// An invalid vhost_defaults value is reported once, not again for every vhost
// that inherits it.
func TestValidationInheritedReportedOnce(t *testing.T) {
	err := parseErr(t, "yaml", "vhost_defaults: {merged_write: 10s}\nvhosts: {a: {}, b: {}}")
	if got := err.Error(); got != "conf: vhost_defaults::merged_write: must be at most 5s, got 10s" {
		t.Errorf("got %q", got)
	}
	// Every problem is reported, one a line.
	err = parseErr(t, "yaml", "chunk_size: 1\nmax_connections: 0\nvhosts: {a: {merged_write: -1s}}")
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 3 {
		t.Errorf("got %d lines: %q", len(lines), err)
	}
}

func TestUnknownKeys(t *testing.T) {
	for _, tc := range []struct {
		name, format, data, want string
	}{
		{"top level", "yaml", "chunk_sise: 4096", `chunk_sise: unknown key (did you mean "chunk_size"?)`},
		{"top level json", "json", `{"lisen": ["a:1"]}`, `lisen: unknown key (did you mean "listen"?)`},
		{"top level toml", "toml", "unknown_thing = 1", "unknown_thing: unknown key"},
		{"log", "yaml", "log: {levels: debug}", `log::levels: unknown key (did you mean "level"?)`},
		{"vhost_defaults", "yaml", "vhost_defaults: {gop_cach: true}", `vhost_defaults::gop_cach: unknown key (did you mean "gop_cache"?)`},
		{"vhost_defaults cluster", "yaml", "vhost_defaults: {cluster: {origins: []}}", `vhost_defaults::cluster::origins: unknown key (did you mean "origin"?)`},
		{"inside vhost", "yaml", "vhosts: {live.example.com: {merged_writes: 0s}}", `vhosts::live.example.com::merged_writes: unknown key (did you mean "merged_write"?)`},
		{"inside vhost toml", "toml", "[vhosts.\"live.example.com\"]\nfoo = 1", "vhosts::live.example.com::foo: unknown key"},
		{"inside vhost json", "json", `{"vhosts": {"Live.Example.com": {"Bar": 1}}}`, "vhosts::live.example.com::bar: unknown key"},
		{"inside cluster", "yaml", "vhosts: {live.example.com: {cluster: {mode: remote, orign: [o]}}}", `vhosts::live.example.com::cluster::orign: unknown key (did you mean "origin"?)`},
		{"name is not a key", "yaml", "vhosts: {a: {name: x}}", "vhosts::a::name: unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parseErr(t, tc.format, tc.data)
			if !strings.Contains(err.Error(), "conf: "+tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, "conf: "+tc.want)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want conf.ByteSize
	}{
		{"0", 0},
		{"512", 512},
		{"512B", 512},
		{"64KB", 64 << 10},
		{"64KiB", 64 << 10},
		{"64k", 64 << 10},
		{"64 kib", 64 << 10},
		{"8MB", 8 << 20},
		{"8MiB", 8 << 20},
		{"8mb", 8 << 20},
		{"1GB", 1 << 30},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{" 3 MiB ", 3 << 20},
		{"-1", -1},
		{"-2KiB", -2048},
		{"+7", 7},
	} {
		got, err := conf.ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "12XB", "1 2", "0x10", "9999999999TiB", "99999999999999999999", "-"} {
		if got, err := conf.ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
	for _, tc := range []struct {
		in   conf.ByteSize
		want string
	}{
		{0, "0B"}, {1, "1B"}, {1500, "1500B"}, {1024, "1KiB"}, {1536, "1536B"},
		{4 * conf.MiB, "4MiB"}, {16 * conf.MiB, "16MiB"}, {conf.GiB, "1GiB"}, {3 * conf.TiB, "3TiB"}, {-2048, "-2KiB"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
		if back, err := conf.ParseByteSize(tc.in.String()); err != nil || back != tc.in {
			t.Errorf("round trip of %d: %d, %v", int64(tc.in), back, err)
		}
	}
	var b conf.ByteSize
	if err := b.UnmarshalText([]byte("2MiB")); err != nil || b != 2*conf.MiB {
		t.Errorf("UnmarshalText: %d, %v", b, err)
	}
	if text, _ := b.MarshalText(); string(text) != "2MiB" {
		t.Errorf("MarshalText = %q", text)
	}

	// In configuration files: integers, strings, JSON numbers.
	c := mustParse(t, "json", `{"max_message_size": 65536, "vhost_defaults": {"player_backlog_max_bytes": "1 MiB", "gop_cache_max_bytes": 0}}`)
	if c.MaxMessageSize != 64*conf.KiB || c.Vhosts[conf.DefaultVhost].PlayerBacklogBytes != conf.MiB || c.Vhosts[conf.DefaultVhost].GopCacheMaxBytes != 0 {
		t.Errorf("sizes: %s", dump(c))
	}
	if err := parseErr(t, "json", `{"max_message_size": 65536.5}`); !strings.Contains(err.Error(), "max_message_size: must be a whole number of bytes") {
		t.Errorf("fractional size: %v", err)
	}
	if err := parseErr(t, "json", `{"chunk_size": 4096.5}`); !strings.Contains(err.Error(), "chunk_size: must be a whole number") {
		t.Errorf("fractional int: %v", err)
	}
}

func TestSlogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo} {
		if got := (conf.Log{Level: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

// The advertise address comes from the first listen address when that
// names a host, and an edge-only server needs none.
func TestClusterAdvertise(t *testing.T) {
	c := mustParse(t, "yaml", "listen: ['127.0.0.1:19360', '0.0.0.0:1936']\ncluster: {registry: 'redis://127.0.0.1:6379/2', on_conflict: REDIRECT}")
	if c.Cluster.Advertise != "127.0.0.1:19360" || c.Cluster.OnConflict != conf.ConflictRedirect || !c.Cluster.Enabled() {
		t.Errorf("cluster = %+v", c.Cluster)
	}
	c = mustParse(t, "yaml", "listen: ['0.0.0.0:1935']\ncluster: {registry: 'redis://r:6379', advertise: 'o1.example.com:1935'}")
	if c.Cluster.Advertise != "o1.example.com:1935" {
		t.Errorf("advertise = %q", c.Cluster.Advertise)
	}
	c = mustParse(t, "yaml", "listen: ['0.0.0.0:1935']\ncluster: {registry: 'redis://r:6379'}\nvhosts: {__defaultVhost__: {cluster: {mode: remote, origin: [o1]}}}")
	if c.Cluster.Advertise != "" {
		t.Errorf("edge-only advertise = %q", c.Cluster.Advertise)
	}
	if c := mustParse(t, "yaml", "listen: ['127.0.0.1:1935']"); c.Cluster.Enabled() || c.Cluster.Advertise != "" {
		t.Errorf("no registry: %+v", c.Cluster)
	}
}

func TestExampleOrigin(t *testing.T) {
	path := filepath.Join("examples", "origin.yaml")
	c, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Listen, []string{"127.0.0.1:19350"}) || c.Source != path {
		t.Errorf("listen %v, source %q", c.Listen, c.Source)
	}
	def, live := c.Vhost("anything"), c.Vhost("Live.Example.com")
	if def == nil || def.Name != conf.DefaultVhost || def.MergedWrite != 350*time.Millisecond || def.Cluster.Mode != conf.ModeLocal {
		t.Errorf("default vhost = %+v", def)
	}
	if live == nil || live.Name != "live.example.com" || live.MergedWrite != 0 || !live.GopCache || live.PlayerBacklog != 5*time.Second {
		t.Errorf("live vhost = %+v", live)
	}
}

// The example origin cluster: origins advertise their listen address, the
// edges list the three origins, all share one registry.
func TestExampleCluster(t *testing.T) {
	origins := []string{"127.0.0.1:19360", "127.0.0.1:19361", "127.0.0.1:19362"}
	for i, name := range []string{"origin1", "origin2", "origin3", "edge1", "edge2"} {
		c, err := conf.Load(filepath.Join("examples", "cluster", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Cluster.Registry != "redis://127.0.0.1:6379/0" {
			t.Errorf("%s: registry %q", name, c.Cluster.Registry)
		}
		v := c.Vhost("anything")
		if i < 3 && (c.Cluster.Advertise != origins[i] || v.Cluster.Mode != conf.ModeLocal) {
			t.Errorf("%s: advertise %q, mode %s", name, c.Cluster.Advertise, v.Cluster.Mode)
		}
		if i >= 3 && (v.Cluster.Mode != conf.ModeRemote || !slices.Equal(v.Cluster.Origin, origins)) {
			t.Errorf("%s: mode %s, origins %v", name, v.Cluster.Mode, v.Cluster.Origin)
		}
	}
}

// Parse builds its own viper each time, so concurrent loads are safe.
func TestConcurrentParse(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			format, data := "yaml", sameYAML
			if i%2 == 1 {
				format, data = "toml", sameTOML
			}
			if _, err := conf.Parse([]byte(data), format); err != nil {
				t.Error(err)
			}
			if _, err := conf.Default(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func ptr[T any](v T) *T { return &v }

func dump(c *conf.Config) string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(strings.TrimSpace(fmt.Sprintf("%+v", *c)), " Vhosts:", "\n Vhosts:"))
	for _, k := range slices.Sorted(maps.Keys(c.Vhosts)) {
		b.WriteString("\n  " + k + ": " + fmt.Sprintf("%+v", *c.Vhosts[k]))
	}
	return b.String()
}

func TestAPIListen(t *testing.T) {
	for _, y := range []string{
		`api: {listen: "127.0.0.1:1985"}`,
		`api: {listen: "localhost:1985"}`,
		`api: {listen: "[::1]:1985"}`,
		`api: {listen: "0.0.0.0:1985", auth: "ops:pw"}`,
	} {
		c, err := conf.Parse([]byte(y), "yaml")
		if err != nil {
			t.Errorf("%s: %v", y, err)
			continue
		}
		if c.API.Listen == "" {
			t.Errorf("%s: api.listen lost", y)
		}
	}
	c, err := conf.Default()
	if err != nil || c.API.Listen != "" {
		t.Errorf("the default serves no API: %q, %v", c.API.Listen, err)
	}
}
