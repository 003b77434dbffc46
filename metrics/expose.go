package metrics

import (
	"maps"
	"math"
	"slices"
	"strconv"
)

// ContentType is the media type of the text exposition format written here.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Metric types, as the TYPE line spells them.
const (
	counter   = "counter"
	gauge     = "gauge"
	histogram = "histogram"
	summary   = "summary"
)

// expo appends metric families to a buffer in the Prometheus text
// exposition format, version 0.0.4. The caller starts each family once
// and gives its series in a stable order; samples belong to the family
// last started.
type expo struct {
	b               []byte
	name, typ, help string // the current family
	started         bool   // its HELP and TYPE are written
}

// family starts the family name. Its HELP and TYPE lines come with its
// first sample: a family without samples is left out, as client_golang
// leaves it out.
func (e *expo) family(name, typ, help string) *expo {
	e.name, e.typ, e.help, e.started = name, typ, help, false
	return e
}

// sample appends a sample of the current family; labels alternate label
// names and values.
func (e *expo) sample(v float64, labels ...string) {
	e.series("", labels, v)
}

// histogram appends a histogram of the current family (of type histogram):
// the cumulative count of each bucket by its upper bound, then the +Inf
// bucket, _sum and _count.
func (e *expo) histogram(count uint64, sum float64, cumulative map[float64]uint64, labels ...string) {
	le := append(slices.Clip(labels), "le", "")
	var last uint64
	for _, ub := range slices.Sorted(maps.Keys(cumulative)) {
		if math.IsInf(ub, 1) { // +Inf comes last, from count
			continue
		}
		last = cumulative[ub]
		le[len(le)-1] = string(appendFloat(nil, ub))
		e.series("_bucket", le, float64(last))
	}
	// The buckets and the count are read one after the other while
	// observations go on: never let +Inf fall below a bucket.
	count = max(count, last)
	le[len(le)-1] = "+Inf"
	e.series("_bucket", le, float64(count))
	e.series("_sum", labels, sum)
	e.series("_count", labels, float64(count))
}

// series appends one line: the family's name with suffix, labels, value.
func (e *expo) series(suffix string, labels []string, v float64) {
	if !e.started {
		e.started = true
		e.b = append(e.b, "# HELP "...)
		e.b = append(e.b, e.name...)
		e.b = append(e.b, ' ')
		e.b = appendEscaped(e.b, e.help, false)
		e.b = append(e.b, "\n# TYPE "...)
		e.b = append(e.b, e.name...)
		e.b = append(e.b, ' ')
		e.b = append(e.b, e.typ...)
		e.b = append(e.b, '\n')
	}
	e.b = append(e.b, e.name...)
	e.b = append(e.b, suffix...)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			e.b = append(e.b, '{')
		} else {
			e.b = append(e.b, ',')
		}
		e.b = append(e.b, labels[i]...)
		e.b = append(e.b, '=', '"')
		e.b = appendEscaped(e.b, labels[i+1], true)
		e.b = append(e.b, '"')
	}
	if len(labels) > 1 {
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
	e.b = appendFloat(e.b, v)
	e.b = append(e.b, '\n')
}

// appendEscaped appends s with backslashes and newlines escaped, and
// double quotes too in a label value.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends v as Prometheus writes it: the shortest 'g' form,
// +Inf, -Inf, NaN, and 0 for negative zero.
func appendFloat(b []byte, v float64) []byte {
	if v == 0 {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
