package amf

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Append encodes v as AMF0 and appends it to dst.
//
// Accepted types: float64, float32, every int and uint type (as numbers),
// bool, string (long string when longer than 65535 bytes), nil, Undefined,
// Object, ECMAArray, StrictArray, []any, Date, TypedObject, XMLDocument and
// map[string]any (encoded as an object with sorted keys), nested to at most
// 64 levels. Any other type is an error naming the type and wrapping
// ErrUnsupported. On error the returned slice is dst unchanged.
func Append(dst []byte, v any) ([]byte, error) {
	out, err := appendValue(dst, v, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// AppendAll encodes each value in order, as in an RTMP command body. On
// error the returned slice is dst unchanged.
func AppendAll(dst []byte, vs ...any) ([]byte, error) {
	out := dst
	for i, v := range vs {
		var err error
		out, err = appendValue(out, v, 0)
		if err != nil {
			return dst, fmt.Errorf("value %d: %w", i, err)
		}
	}
	return out, nil
}

func appendNumber(dst []byte, f float64) []byte {
	dst = append(dst, markerNumber)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

// appendValue encodes v; depth is the number of enclosing complex values.
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, markerNull), nil
	case float64:
		return appendNumber(dst, x), nil
	case string:
		return appendString(dst, x)
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		return append(dst, markerBoolean, b), nil
	case Object:
		if depth >= maxDepth {
			return dst, errTooDeep()
		}
		return appendProps(append(dst, markerObject), x, depth+1)
	case ECMAArray:
		if depth >= maxDepth {
			return dst, errTooDeep()
		}
		if uint64(len(x)) > math.MaxUint32 {
			return dst, fmt.Errorf("amf0: ECMA array of %d properties: %w", len(x), ErrInvalid)
		}
		dst = append(dst, markerECMAArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		return appendProps(dst, x, depth+1)
	case StrictArray:
		return appendArray(dst, x, depth)
	case []any:
		return appendArray(dst, x, depth)
	case map[string]any:
		return appendMap(dst, x, depth)
	case TypedObject:
		if depth >= maxDepth {
			return dst, errTooDeep()
		}
		if len(x.Class) > math.MaxUint16 {
			return dst, fmt.Errorf("amf0: typed object class name of %d bytes: %w", len(x.Class), ErrInvalid)
		}
		dst = append(dst, markerTypedObject)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(x.Class)))
		dst = append(dst, x.Class...)
		return appendProps(dst, x.Props, depth+1)
	case Undefined:
		return append(dst, markerUndefined), nil
	case Date:
		dst = append(dst, markerDate)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(x.Millis))
		return binary.BigEndian.AppendUint16(dst, uint16(x.TimeZone)), nil
	case XMLDocument:
		if uint64(len(x)) > math.MaxUint32 {
			return dst, fmt.Errorf("amf0: XML document of %d bytes: %w", len(x), ErrInvalid)
		}
		dst = append(dst, markerXMLDocument)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		return append(dst, x...), nil
	case float32:
		return appendNumber(dst, float64(x)), nil
	case int:
		return appendNumber(dst, float64(x)), nil
	case int8:
		return appendNumber(dst, float64(x)), nil
	case int16:
		return appendNumber(dst, float64(x)), nil
	case int32:
		return appendNumber(dst, float64(x)), nil
	case int64:
		return appendNumber(dst, float64(x)), nil
	case uint:
		return appendNumber(dst, float64(x)), nil
	case uint8:
		return appendNumber(dst, float64(x)), nil
	case uint16:
		return appendNumber(dst, float64(x)), nil
	case uint32:
		return appendNumber(dst, float64(x)), nil
	case uint64:
		return appendNumber(dst, float64(x)), nil
	case uintptr:
		return appendNumber(dst, float64(x)), nil
	default:
		return dst, fmt.Errorf("amf0: cannot encode value of type %T: %w", v, ErrUnsupported)
	}
}

func errTooDeep() error {
	return fmt.Errorf("amf0: encoding more than %d nested values: %w", maxDepth, ErrTooDeep)
}

func appendString(dst []byte, s string) ([]byte, error) {
	if len(s) <= math.MaxUint16 {
		dst = append(dst, markerString)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
		return append(dst, s...), nil
	}
	if uint64(len(s)) > math.MaxUint32 {
		return dst, fmt.Errorf("amf0: string of %d bytes: %w", len(s), ErrInvalid)
	}
	dst = append(dst, markerLongString)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...), nil
}

func appendKey(dst []byte, k string) ([]byte, error) {
	if len(k) > math.MaxUint16 {
		return dst, fmt.Errorf("amf0: property key of %d bytes: %w", len(k), ErrInvalid)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
	return append(dst, k...), nil
}

// appendProps encodes properties and the object end marker; depth already
// counts the enclosing object.
func appendProps(dst []byte, ps []Property, depth int) ([]byte, error) {
	var err error
	for i := range ps {
		if dst, err = appendKey(dst, ps[i].Key); err != nil {
			return dst, err
		}
		if dst, err = appendValue(dst, ps[i].Value, depth); err != nil {
			return dst, err
		}
	}
	return append(dst, 0, 0, markerObjectEnd), nil
}

func appendArray(dst []byte, a []any, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return dst, errTooDeep()
	}
	if uint64(len(a)) > math.MaxUint32 {
		return dst, fmt.Errorf("amf0: strict array of %d elements: %w", len(a), ErrInvalid)
	}
	dst = append(dst, markerStrictArray)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(a)))
	var err error
	for _, v := range a {
		if dst, err = appendValue(dst, v, depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendMap(dst []byte, m map[string]any, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return dst, errTooDeep()
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, markerObject)
	var err error
	for _, k := range keys {
		if dst, err = appendKey(dst, k); err != nil {
			return dst, err
		}
		if dst, err = appendValue(dst, m[k], depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, 0, 0, markerObjectEnd), nil
}
