package conf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. In configuration files it is written as an
// integer or a string: "512", "64KB"/"64KiB" (×1024), "8MB"/"8MiB" (×1024²),
// "1GB"/"1GiB" (×1024³); units are binary and case-insensitive.
type ByteSize int64

// Binary size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var byteUnits = map[string]ByteSize{
	"": 1, "b": 1,
	"k": KiB, "kb": KiB, "kib": KiB,
	"m": MiB, "mb": MiB, "mib": MiB,
	"g": GiB, "gb": GiB, "gib": GiB,
	"t": TiB, "tb": TiB, "tib": TiB,
}

// ParseByteSize parses a size such as "512", "64KiB", "8MB" or "1 GiB".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	if i < len(t) && (t[i] == '-' || t[i] == '+') {
		i++
	}
	j := i
	for j < len(t) && t[j] >= '0' && t[j] <= '9' {
		j++
	}
	if j == i {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, e.g. 512, 64KiB, 8MiB", s)
	}
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(t[j:]))]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KB/KiB, MB/MiB, GB/GiB)", s, strings.TrimSpace(t[j:]))
	}
	n, err := strconv.ParseInt(t[:j], 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, fmt.Errorf("invalid size %q: out of range", s)
	}
	return ByteSize(n) * unit, nil
}

// String prints the size with the largest binary unit that divides it
// exactly, e.g. "8MiB", "64KiB", "1500B"; ParseByteSize reads it back.
func (b ByteSize) String() string {
	for _, u := range [...]struct {
		size ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler using String.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
