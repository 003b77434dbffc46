package amf

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
)

// Decode decodes one AMF0 value from b and returns it with the number of
// bytes used. Bytes after the value are ignored. On error n is 0.
func Decode(b []byte) (v any, n int, err error) {
	var d decoder
	d.init(b)
	v, err = d.value()
	d.release()
	if err != nil {
		return nil, 0, err
	}
	return v, d.off, nil
}

// DecodeAll decodes consecutive AMF0 values until b is exhausted, as in an
// RTMP command or data message body. References and the AMF3 string table
// span all values. An empty b yields no values and no error.
func DecodeAll(b []byte) ([]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var d decoder
	d.init(b)
	d.acquire()
	defer d.release()
	for d.off < len(d.b) {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.elems = append(d.elems, v)
	}
	out := make([]any, len(d.elems))
	copy(out, d.elems)
	return out, nil
}

// refEntry is one entry of the AMF0 complex-value reference table.
type refEntry struct {
	v      any
	size   int // expanded encoded size in bytes; -1 while being decoded
	height int // nesting levels inside the value, counting itself
}

// decoder holds the state of one Decode or DecodeAll call.
type decoder struct {
	b     []byte
	off   int
	depth int // complex values currently open
	deep  int // deepest depth reached, for reference heights
	extra int // bytes that references have added to the expanded value
	limit int // maximum for extra

	strs []string // AMF3 string reference table

	// Buffers borrowed from sc; nil until the first complex value.
	sc    *scratch
	refs  []refEntry // AMF0 reference table
	props []Property // stack of properties being decoded
	elems []any      // stack of array elements and top-level values
}

// scratch holds reusable decoder buffers. It lives on the heap (pooled) so
// that the decoder itself, which must not point into itself to stay on the
// stack, needs no allocation.
type scratch struct {
	refs     []refEntry
	props    []Property
	elems    []any
	refsBuf  [8]refEntry
	propsBuf [16]Property
	elemsBuf [16]any
}

// maxPooled is the largest buffer capacity kept in the pool.
const maxPooled = 256

var scratchPool = sync.Pool{New: func() any {
	s := new(scratch)
	s.refs = s.refsBuf[:0]
	s.props = s.propsBuf[:0]
	s.elems = s.elemsBuf[:0]
	return s
}}

// acquire makes the scratch buffers available.
func (d *decoder) acquire() {
	if d.sc != nil {
		return
	}
	d.sc = scratchPool.Get().(*scratch)
	d.refs = d.sc.refs[:0]
	d.props = d.sc.props[:0]
	d.elems = d.sc.elems[:0]
}

// release clears the scratch buffers, so the pool retains no decoded
// values, and returns them to the pool.
func (d *decoder) release() {
	sc := d.sc
	if sc == nil {
		return
	}
	clear(d.refs)
	clear(d.props)
	clear(d.elems)
	if cap(d.refs) <= maxPooled {
		sc.refs = d.refs[:0]
	}
	if cap(d.props) <= maxPooled {
		sc.props = d.props[:0]
	}
	if cap(d.elems) <= maxPooled {
		sc.elems = d.elems[:0]
	}
	d.sc, d.refs, d.props, d.elems = nil, nil, nil, nil
	scratchPool.Put(sc)
}

func (d *decoder) init(b []byte) {
	d.b = b
	// References may expand the decoded value to a constant multiple of the
	// input size, never more.
	if len(b) < math.MaxInt32/32 {
		d.limit = 16*len(b) + 4096
	} else {
		d.limit = math.MaxInt
	}
}

// remain reports whether at least n more bytes are available.
func (d *decoder) remain(n uint64) bool {
	return uint64(len(d.b)-d.off) >= n
}

func errAt(what string, off int, err error) error {
	return fmt.Errorf("amf0 %s at offset %d: %w", what, off, err)
}

// value decodes one AMF0 value starting at d.off.
func (d *decoder) value() (any, error) {
	start := d.off
	if !d.remain(1) {
		return nil, errAt("value marker", start, ErrTruncated)
	}
	m := d.b[d.off]
	d.off++
	switch m {
	case markerNumber:
		if !d.remain(8) {
			return nil, errAt("number", start, ErrTruncated)
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
		d.off += 8
		return boxNumber(f), nil
	case markerBoolean:
		if !d.remain(1) {
			return nil, errAt("boolean", start, ErrTruncated)
		}
		v := d.b[d.off] != 0
		d.off++
		return v, nil
	case markerString:
		if !d.remain(2) {
			return nil, errAt("string", start, ErrTruncated)
		}
		n := uint64(binary.BigEndian.Uint16(d.b[d.off:]))
		d.off += 2
		if !d.remain(n) {
			return nil, errAt("string", start, ErrTruncated)
		}
		v := internValue(d.b[d.off : d.off+int(n)])
		d.off += int(n)
		return v, nil
	case markerLongString, markerXMLDocument:
		what := "long string"
		if m == markerXMLDocument {
			what = "XML document"
		}
		if !d.remain(4) {
			return nil, errAt(what, start, ErrTruncated)
		}
		n := uint64(binary.BigEndian.Uint32(d.b[d.off:]))
		d.off += 4
		if !d.remain(n) {
			return nil, errAt(what, start, ErrTruncated)
		}
		raw := d.b[d.off : d.off+int(n)]
		d.off += int(n)
		if m == markerXMLDocument {
			return XMLDocument(raw), nil
		}
		return internValue(raw), nil
	case markerNull:
		return nil, nil
	case markerUndefined, markerUnsupported:
		return Undefined{}, nil
	case markerDate:
		if !d.remain(10) {
			return nil, errAt("date", start, ErrTruncated)
		}
		ms := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
		tz := int16(binary.BigEndian.Uint16(d.b[d.off+8:]))
		d.off += 10
		return Date{Millis: ms, TimeZone: tz}, nil
	case markerObject, markerECMAArray, markerStrictArray, markerTypedObject:
		return d.complex(m, start)
	case markerReference:
		return d.reference(start)
	case markerAVMPlus:
		return d.amf3()
	case markerObjectEnd:
		return nil, errAt("object end marker outside an object", start, ErrInvalid)
	case markerMovieClip:
		return nil, errAt("movieclip marker 0x04", start, ErrUnsupported)
	case markerRecordSet:
		return nil, errAt("recordset marker 0x0e", start, ErrUnsupported)
	default:
		return nil, fmt.Errorf("amf0 unknown marker 0x%02x at offset %d: %w", m, start, ErrUnsupported)
	}
}

// complex decodes an object, ECMA array, strict array or typed object whose
// marker (at offset start) has been consumed, registering it in the
// reference table.
func (d *decoder) complex(m byte, start int) (any, error) {
	d.acquire()
	d.depth++
	if d.depth > maxDepth {
		return nil, fmt.Errorf("amf0 value at offset %d: more than %d levels: %w", start, maxDepth, ErrTooDeep)
	}
	idx := len(d.refs)
	d.refs = append(d.refs, refEntry{size: -1})
	startExtra := d.extra
	outerDeep := d.deep
	d.deep = d.depth

	var v any
	var err error
	switch m {
	case markerObject:
		var ps []Property
		ps, err = d.properties("object", start)
		v = Object(ps)
	case markerECMAArray:
		// The count is advisory: real encoders get it wrong, so properties
		// are read up to the end marker whatever it says.
		if !d.remain(4) {
			return nil, errAt("ECMA array", start, ErrTruncated)
		}
		d.off += 4
		var ps []Property
		ps, err = d.properties("ECMA array", start)
		v = ECMAArray(ps)
	case markerStrictArray:
		var a []any
		a, err = d.strictArray(start)
		v = StrictArray(a)
	case markerTypedObject:
		if !d.remain(2) {
			return nil, errAt("typed object", start, ErrTruncated)
		}
		n := uint64(binary.BigEndian.Uint16(d.b[d.off:]))
		d.off += 2
		if !d.remain(n) {
			return nil, errAt("typed object class name", start, ErrTruncated)
		}
		class := internString(d.b[d.off : d.off+int(n)])
		d.off += int(n)
		var ps []Property
		ps, err = d.properties("typed object", start)
		v = TypedObject{Class: class, Props: Object(ps)}
	}
	if err != nil {
		return nil, err
	}
	d.refs[idx] = refEntry{
		v:      v,
		size:   d.off - start + d.extra - startExtra,
		height: d.deep - d.depth + 1,
	}
	d.deep = max(d.deep, outerDeep)
	d.depth--
	return v, nil
}

// properties decodes key/value pairs up to and including the object end
// marker (an empty key followed by 0x09). An empty key followed by any other
// marker is an ordinary property with an empty name.
func (d *decoder) properties(what string, start int) ([]Property, error) {
	base := len(d.props)
	for {
		if !d.remain(2) {
			return nil, errAt(what+" key", d.off, ErrTruncated)
		}
		n := uint64(binary.BigEndian.Uint16(d.b[d.off:]))
		d.off += 2
		if n == 0 {
			if !d.remain(1) {
				return nil, errAt(what, start, ErrTruncated)
			}
			if d.b[d.off] == markerObjectEnd {
				d.off++
				break
			}
		}
		if !d.remain(n) {
			return nil, errAt(what+" key", d.off-2, ErrTruncated)
		}
		key := internString(d.b[d.off : d.off+int(n)])
		d.off += int(n)
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.props = append(d.props, Property{Key: key, Value: v})
	}
	out := make([]Property, len(d.props)-base)
	copy(out, d.props[base:])
	clear(d.props[base:])
	d.props = d.props[:base]
	return out, nil
}

// strictArray decodes the count and elements of a strict array.
func (d *decoder) strictArray(start int) ([]any, error) {
	if !d.remain(4) {
		return nil, errAt("strict array", start, ErrTruncated)
	}
	count := uint64(binary.BigEndian.Uint32(d.b[d.off:]))
	d.off += 4
	// Every element takes at least one byte.
	if !d.remain(count) {
		return nil, errAt("strict array", start, ErrTruncated)
	}
	base := len(d.elems)
	for i := uint64(0); i < count; i++ {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.elems = append(d.elems, v)
	}
	out := make([]any, len(d.elems)-base)
	copy(out, d.elems[base:])
	clear(d.elems[base:])
	d.elems = d.elems[:base]
	return out, nil
}

// reference resolves an AMF0 reference (marker at offset start consumed).
func (d *decoder) reference(start int) (any, error) {
	if !d.remain(2) {
		return nil, errAt("reference", start, ErrTruncated)
	}
	idx := int(binary.BigEndian.Uint16(d.b[d.off:]))
	d.off += 2
	if idx >= len(d.refs) {
		return nil, fmt.Errorf("amf0 reference at offset %d: index %d out of range (%d complex values): %w",
			start, idx, len(d.refs), ErrInvalid)
	}
	e := &d.refs[idx]
	if e.size < 0 {
		return nil, fmt.Errorf("amf0 reference at offset %d: index %d refers to an enclosing value (cycle): %w",
			start, idx, ErrInvalid)
	}
	if d.depth+e.height > maxDepth {
		return nil, fmt.Errorf("amf0 reference at offset %d: more than %d levels: %w", start, maxDepth, ErrTooDeep)
	}
	if err := d.expand(start, e.size-3); err != nil {
		return nil, err
	}
	d.deep = max(d.deep, d.depth+e.height)
	return e.v, nil
}

// expand accounts for n bytes a reference adds to the expanded value.
func (d *decoder) expand(start, n int) error {
	d.extra += n
	if d.extra > d.limit {
		return fmt.Errorf("amf reference at offset %d: expanded value exceeds %d bytes: %w", start, d.limit, ErrInvalid)
	}
	return nil
}

// amf3 decodes one AMF3 value following an AVM+ marker.
func (d *decoder) amf3() (any, error) {
	start := d.off
	if !d.remain(1) {
		return nil, fmt.Errorf("amf3 marker at offset %d: %w", start, ErrTruncated)
	}
	m := d.b[d.off]
	d.off++
	switch m {
	case amf3Undefined:
		return Undefined{}, nil
	case amf3Null:
		return nil, nil
	case amf3False:
		return false, nil
	case amf3True:
		return true, nil
	case amf3Integer:
		u, err := d.u29(start)
		if err != nil {
			return nil, err
		}
		i := int32(u)
		if u&(1<<28) != 0 {
			i -= 1 << 29
		}
		return boxNumber(float64(i)), nil
	case amf3Double:
		if !d.remain(8) {
			return nil, fmt.Errorf("amf3 double at offset %d: %w", start, ErrTruncated)
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
		d.off += 8
		return boxNumber(f), nil
	case amf3String:
		h, err := d.u29(start)
		if err != nil {
			return nil, err
		}
		if h&1 == 0 {
			idx := int(h >> 1)
			if idx >= len(d.strs) {
				return nil, fmt.Errorf("amf3 string at offset %d: reference %d out of range (%d strings): %w",
					start, idx, len(d.strs), ErrInvalid)
			}
			s := d.strs[idx]
			if err := d.expand(start, len(s)); err != nil {
				return nil, err
			}
			return s, nil
		}
		n := uint64(h >> 1)
		if !d.remain(n) {
			return nil, fmt.Errorf("amf3 string at offset %d: %w", start, ErrTruncated)
		}
		s := internString(d.b[d.off : d.off+int(n)])
		d.off += int(n)
		if n > 0 {
			d.strs = append(d.strs, s)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("amf3 marker 0x%02x at offset %d: %w", m, start, ErrUnsupported)
	}
}

// u29 reads an AMF3 variable-length 29-bit unsigned integer.
func (d *decoder) u29(start int) (uint32, error) {
	var v uint32
	for i := 0; i < 4; i++ {
		if !d.remain(1) {
			return 0, fmt.Errorf("amf3 integer at offset %d: %w", start, ErrTruncated)
		}
		c := d.b[d.off]
		d.off++
		if i == 3 {
			return v<<8 | uint32(c), nil
		}
		v = v<<7 | uint32(c&0x7f)
		if c&0x80 == 0 {
			break
		}
	}
	return v, nil
}
