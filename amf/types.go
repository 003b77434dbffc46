package amf

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them with
// context (value type and byte offset); test with errors.Is.
var (
	// ErrTruncated reports that the input ended inside a value.
	ErrTruncated = errors.New("amf: truncated input")
	// ErrUnsupported reports a marker or Go type this package cannot handle.
	ErrUnsupported = errors.New("amf: unsupported type")
	// ErrTooDeep reports nesting deeper than 64 complex values.
	ErrTooDeep = errors.New("amf: nesting too deep")
	// ErrInvalid reports malformed input or an unencodable value, such as a
	// bad reference, a stray object-end marker or an over-long key.
	ErrInvalid = errors.New("amf: invalid data")
)

// maxDepth is the maximum number of nested complex values (objects, arrays,
// typed objects), both when decoding and when encoding.
const maxDepth = 64

// AMF0 type markers.
const (
	markerNumber      = 0x00
	markerBoolean     = 0x01
	markerString      = 0x02
	markerObject      = 0x03
	markerMovieClip   = 0x04
	markerNull        = 0x05
	markerUndefined   = 0x06
	markerReference   = 0x07
	markerECMAArray   = 0x08
	markerObjectEnd   = 0x09
	markerStrictArray = 0x0A
	markerDate        = 0x0B
	markerLongString  = 0x0C
	markerUnsupported = 0x0D
	markerRecordSet   = 0x0E
	markerXMLDocument = 0x0F
	markerTypedObject = 0x10
	markerAVMPlus     = 0x11
)

// AMF3 type markers.
const (
	amf3Undefined = 0x00
	amf3Null      = 0x01
	amf3False     = 0x02
	amf3True      = 0x03
	amf3Integer   = 0x04
	amf3Double    = 0x05
	amf3String    = 0x06
)

// Property is one key/value pair of an Object, ECMAArray or TypedObject.
type Property struct {
	Key   string
	Value any
}

// Object is an AMF0 anonymous object: properties in wire order.
type Object []Property

// ECMAArray is an AMF0 ECMA (associative) array: properties in wire order.
type ECMAArray []Property

// StrictArray is an AMF0 strict (dense) array.
type StrictArray []any

// Date is an AMF0 date: milliseconds since the Unix epoch (UTC) and a time
// zone offset that encoders are expected to leave zero.
type Date struct {
	Millis   float64
	TimeZone int16
}

// Undefined is the AMF undefined value (also used for the AMF0 unsupported
// marker).
type Undefined struct{}

// TypedObject is an AMF0 object with a registered class name.
type TypedObject struct {
	Class string
	Props Object
}

// XMLDocument is an AMF0 XML document, kept as its raw text.
type XMLDocument string

func propGet(ps []Property, key string) (any, bool) {
	for i := range ps {
		if ps[i].Key == key {
			return ps[i].Value, true
		}
	}
	return nil, false
}

// Get returns the value of the first property named key.
func (o Object) Get(key string) (any, bool) { return propGet(o, key) }

// String returns the string value of property key, or "" if it is missing
// or not a string.
func (o Object) String(key string) string {
	v, _ := propGet(o, key)
	s, _ := v.(string)
	return s
}

// Number returns the number value of property key; ok is false if it is
// missing or not a number.
func (o Object) Number(key string) (float64, bool) {
	v, _ := propGet(o, key)
	f, ok := v.(float64)
	return f, ok
}

// Bool returns the boolean value of property key; ok is false if it is
// missing or not a boolean.
func (o Object) Bool(key string) (bool, bool) {
	v, _ := propGet(o, key)
	b, ok := v.(bool)
	return b, ok
}

// Get returns the value of the first property named key.
func (a ECMAArray) Get(key string) (any, bool) { return propGet(a, key) }

// String returns the string value of property key, or "" if it is missing
// or not a string.
func (a ECMAArray) String(key string) string { return Object(a).String(key) }

// Number returns the number value of property key; ok is false if it is
// missing or not a number.
func (a ECMAArray) Number(key string) (float64, bool) { return Object(a).Number(key) }

// Bool returns the boolean value of property key; ok is false if it is
// missing or not a boolean.
func (a ECMAArray) Bool(key string) (bool, bool) { return Object(a).Bool(key) }
