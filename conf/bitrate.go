package conf

import (
	"fmt"
	"strconv"
	"strings"
)

// BitRate is a rate in bits per second. In configuration files it is written
// as an integer or a string with a decimal unit: "900000", "500kbit",
// "900Mbit", "1.5Gbit" ("bps"/"bit/s" spellings are accepted too: "900Mbps").
type BitRate int64

var bitUnits = map[string]float64{
	"": 1, "bit": 1, "bps": 1, "bit/s": 1,
	"k": 1e3, "kbit": 1e3, "kbps": 1e3, "kbit/s": 1e3,
	"m": 1e6, "mbit": 1e6, "mbps": 1e6, "mbit/s": 1e6,
	"g": 1e9, "gbit": 1e9, "gbps": 1e9, "gbit/s": 1e9,
}

// ParseBitRate parses a rate such as "900Mbit", "1.5Gbit" or "64000".
func ParseBitRate(s string) (BitRate, error) {
	t := strings.TrimSpace(s)
	j := 0
	for j < len(t) && (t[j] >= '0' && t[j] <= '9' || t[j] == '.') {
		j++
	}
	if j == 0 {
		return 0, fmt.Errorf("invalid bit rate %q: want bits per second with an optional unit, e.g. 900Mbit, 1Gbit, 500kbit", s)
	}
	unit, ok := bitUnits[strings.ToLower(strings.TrimSpace(t[j:]))]
	if !ok {
		return 0, fmt.Errorf("invalid bit rate %q: unknown unit %q (use bit, kbit, Mbit, Gbit)", s, strings.TrimSpace(t[j:]))
	}
	f, err := strconv.ParseFloat(t[:j], 64)
	if err != nil || f*unit > 1e15 {
		return 0, fmt.Errorf("invalid bit rate %q: out of range", s)
	}
	return BitRate(f * unit), nil
}

// String prints the rate with the largest decimal unit that divides it
// exactly, e.g. "900Mbit", "1Gbit", "64kbit", "1500bit".
func (r BitRate) String() string {
	for _, u := range [...]struct {
		size BitRate
		name string
	}{{1e9, "Gbit"}, {1e6, "Mbit"}, {1e3, "kbit"}} {
		if r != 0 && r%u.size == 0 {
			return strconv.FormatInt(int64(r/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(r), 10) + "bit"
}

// MarshalText implements encoding.TextMarshaler using String.
func (r BitRate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseBitRate.
func (r *BitRate) UnmarshalText(text []byte) error {
	v, err := ParseBitRate(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
