package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Top-level sections handled separately from the Config fields.
const (
	keyVhostDefaults = "vhost_defaults"
	keyVhosts        = "vhosts"
)

// keyDelim separates nested keys for viper and in error messages; vhost names
// contain dots, so "." cannot be used.
const keyDelim = "::"

// Load reads path (YAML, JSON or TOML by extension; "" means the embedded
// default), lays it over the embedded defaults for missing keys, validates
// it and returns an immutable Config.
func Load(path string) (*Config, error) {
	if path == "" {
		return Default()
	}
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	format, ok := formatName(ext)
	if !ok {
		return nil, fmt.Errorf("conf: %s: unsupported file extension %q (use .yaml, .yml, .json or .toml)", path, filepath.Ext(path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("conf: read %s: %w", path, err)
	}
	return parse(data, format, path)
}

// Parse is Load from bytes with an explicit format: "yaml" (or "yml"),
// "json" or "toml".
func Parse(data []byte, format string) (*Config, error) {
	f, ok := formatName(format)
	if !ok {
		return nil, fmt.Errorf("conf: unsupported config format %q (use yaml, json or toml)", format)
	}
	return parse(data, f, "")
}

func formatName(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "yaml", "yml":
		return "yaml", true
	case "json":
		return "json", true
	case "toml":
		return "toml", true
	}
	return "", false
}

// document is a configuration file read by viper: keys lowercased, nested
// maps as map[string]any.
type document struct {
	top      map[string]any // top-level keys except vhost_defaults and vhosts
	defaults map[string]any // vhost_defaults section (nil if absent)
	vhosts   any            // vhosts section as written
	hasVh    bool           // the file has a (non-null) vhosts section
	bad      []problem      // sections of the wrong type
}

// read parses data with a fresh viper that is dropped afterwards.
func read(data []byte, format string) (*document, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	v.SetConfigType(format)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	d := &document{top: map[string]any{}}
	seen := map[string]bool{}
	for _, k := range v.AllKeys() {
		seen[strings.SplitN(k, keyDelim, 2)[0]] = true
	}
	for _, k := range []string{keyVhostDefaults, keyVhosts} {
		if v.InConfig(k) { // also true for empty maps, which AllKeys omits
			seen[k] = true
		}
	}
	for k := range seen {
		val := v.Get(k)
		switch k {
		case keyVhostDefaults:
			if val == nil {
				continue
			}
			m, ok := asMap(val)
			if !ok {
				d.bad = append(d.bad, problem{k, "must be a map of vhost settings, got " + describe(val)})
				continue
			}
			d.defaults = m
		case keyVhosts:
			d.vhosts, d.hasVh = val, val != nil
		default:
			d.top[k] = val
		}
	}
	return d, nil
}

// problem is one configuration error: the key path and what is wrong.
type problem struct{ key, msg string }

type problems []problem

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, problem{key, fmt.Sprintf(format, args...)})
}

func (p problems) err(source string) error {
	if len(p) == 0 {
		return nil
	}
	prefix := "conf: "
	if source != "" {
		prefix += source + ": "
	}
	errs := make([]error, len(p))
	for i, q := range p {
		if q.key == "" {
			errs[i] = errors.New(prefix + q.msg)
		} else {
			errs[i] = errors.New(prefix + q.key + ": " + q.msg)
		}
	}
	return errors.Join(errs...)
}

// parse builds a Config from data laid over the embedded default.
func parse(data []byte, format, source string) (*Config, error) {
	base, err := read(defaultYAML, "yaml")
	if err != nil {
		return nil, fmt.Errorf("conf: embedded default: %w", err)
	}
	doc := base
	if source != DefaultSource {
		if doc, err = read(data, format); err != nil {
			where := source
			if where == "" {
				where = format + " data"
			}
			return nil, fmt.Errorf("conf: parse %s: %w", where, err)
		}
	}

	var p problems
	p = append(p, doc.bad...)

	// Top level: embedded values, then the file's over them.
	cfg := &Config{Source: source}
	decode(&p, "", base.top, cfg, true)
	n := len(p)
	checkKeys(&p, "", doc.top, reflect.TypeFor[Config](), keyVhostDefaults, keyVhosts)
	decode(&p, "", doc.top, cfg, len(p) == n)
	validateTop(&p, cfg)

	// vhost_defaults: embedded values, then the file's over them.
	var def Vhost
	decode(&p, keyVhostDefaults, base.defaults, &def, true)
	n = len(p)
	checkKeys(&p, keyVhostDefaults, doc.defaults, reflect.TypeFor[Vhost]())
	decode(&p, keyVhostDefaults, doc.defaults, &def, len(p) == n)
	validateVhost(&p, keyVhostDefaults, &def, nil, true)

	// vhosts: the file's section replaces the embedded one as a whole.
	vhosts := base.vhosts
	if doc.hasVh {
		vhosts = doc.vhosts
	}
	cfg.Vhosts = map[string]*Vhost{}
	if m, ok := asMap(vhosts); !ok {
		p.add(keyVhosts, "must be a map of vhost names to settings, got %s", describe(vhosts))
	} else if len(m) == 0 {
		p.add(keyVhosts, "must define at least one vhost (e.g. __defaultVhost__: {}), or be left out to use the default vhost")
	} else {
		for _, name := range sortedKeys(m) {
			key := keyVhosts + keyDelim + name
			if strings.TrimSpace(name) == "" {
				p.add(keyVhosts, "vhost name must not be empty")
				continue
			}
			own, ok := asMap(m[name])
			if m[name] != nil && !ok {
				p.add(key, "must be a map of vhost settings, got %s", describe(m[name]))
				continue
			}
			vh := def
			vh.Name = name
			vh.Cluster.Origin = slices.Clone(def.Cluster.Origin)
			n = len(p)
			checkKeys(&p, key, own, reflect.TypeFor[Vhost]())
			decode(&p, key, own, &vh, len(p) == n)
			validateVhost(&p, key, &vh, own, false)
			cfg.Vhosts[name] = &vh
		}
	}

	validateAdvertise(&p, cfg)

	if err := p.err(source); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decode decodes in (a map from viper, or nil) over out, recording errors
// under prefix. With strict, keys out does not have are errors.
func decode(p *problems, prefix string, in any, out any, strict bool) {
	if in == nil {
		return
	}
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       decodeHook,
		ErrorUnused:      strict,
		WeaklyTypedInput: true,
		Result:           out,
	})
	if err != nil {
		p.add(prefix, "%v", err)
		return
	}
	if err := d.Decode(in); err != nil {
		addDecodeErrors(p, prefix, err)
	}
}

// addDecodeErrors flattens mapstructure's joined errors into problems named
// by their key path.
func addDecodeErrors(p *problems, prefix string, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			addDecodeErrors(p, prefix, e)
		}
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		name := strings.ReplaceAll(de.Name(), ".", keyDelim)
		inner := de.Unwrap()
		if _, ok := inner.(interface{ Unwrap() []error }); ok {
			addDecodeErrors(p, joinKey(prefix, name), inner)
			return
		}
		p.add(joinKey(prefix, name), "%v", inner)
		return
	}
	p.add(prefix, "%v", err)
}

func joinKey(prefix, name string) string {
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	}
	return prefix + keyDelim + name
}

var (
	byteSizeType = reflect.TypeFor[ByteSize]()
	bitRateType  = reflect.TypeFor[BitRate]()
	durationType = reflect.TypeFor[time.Duration]()
)

// decodeHook converts sizes and durations and refuses fractional integers.
func decodeHook(from, to reflect.Type, data any) (any, error) {
	switch to {
	case byteSizeType:
		switch from.Kind() {
		case reflect.String:
			return ParseByteSize(data.(string))
		case reflect.Float32, reflect.Float64:
			f := reflect.ValueOf(data).Float()
			if f != math.Trunc(f) || math.Abs(f) > 1<<62 {
				return nil, fmt.Errorf("must be a whole number of bytes, got %v", data)
			}
			return ByteSize(f), nil
		}
		return data, nil
	case bitRateType:
		switch from.Kind() {
		case reflect.String:
			return ParseBitRate(data.(string))
		case reflect.Float32, reflect.Float64:
			f := reflect.ValueOf(data).Float()
			if f != math.Trunc(f) || math.Abs(f) > 1e15 {
				return nil, fmt.Errorf("must be a whole number of bits per second, got %v", data)
			}
			return BitRate(f), nil
		}
		return data, nil
	case durationType:
		switch from.Kind() {
		case reflect.String:
			d, err := time.ParseDuration(strings.TrimSpace(data.(string)))
			if err != nil {
				return nil, fmt.Errorf("must be a duration such as 10s or 350ms, got %q", data)
			}
			return d, nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
			if reflect.ValueOf(data).IsZero() {
				return time.Duration(0), nil
			}
			return nil, fmt.Errorf("must be a duration with a unit such as 10s or 350ms, got %v", data)
		}
		return data, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if from.Kind() == reflect.Float32 || from.Kind() == reflect.Float64 {
			if f := reflect.ValueOf(data).Float(); f != math.Trunc(f) {
				return nil, fmt.Errorf("must be a whole number, got %v", data)
			}
		}
	}
	return data, nil
}

// checkKeys reports keys of m that t (a struct with mapstructure tags) does
// not have, except extra, recursing into nested structs.
func checkKeys(p *problems, prefix string, m map[string]any, t reflect.Type, extra ...string) {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if tag := f.Tag.Get("mapstructure"); tag != "" && tag != "-" {
			fields[tag] = f.Type
		}
	}
	for _, k := range sortedKeys(m) {
		if slices.Contains(extra, k) {
			continue
		}
		ft, ok := fields[k]
		if !ok {
			known := slices.Concat(slices.Collect(maps.Keys(fields)), extra)
			p.add(joinKey(prefix, k), "unknown key%s", suggest(k, known))
			continue
		}
		if sub, ok := asMap(m[k]); ok && ft.Kind() == reflect.Struct {
			checkKeys(p, joinKey(prefix, k), sub, ft)
		}
	}
}

// suggest returns ` (did you mean "x"?)` for the known key closest to k.
func suggest(k string, known []string) string {
	best, bestD := "", 3
	slices.Sort(known)
	for _, c := range known {
		if d := editDistance(k, c); d < bestD && d <= len(c)/2 {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, val := range m {
			out[strings.ToLower(fmt.Sprint(k))] = val
		}
		return out, true
	}
	return nil, false
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%v", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}
