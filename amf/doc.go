// Package amf encodes and decodes Action Message Format values as carried
// in RTMP command and data messages.
//
// AMF0 is supported completely. The AVM+ marker (0x11) switches a single
// value to AMF3; of AMF3 only the scalar types RTMP clients actually send are
// decoded (undefined, null, booleans, integers, doubles and strings).
// Encoding always produces AMF0.
//
// Decoded values use these Go types:
//
//	number                 float64
//	boolean                bool
//	string, long string    string
//	null                   nil
//	undefined, unsupported Undefined
//	object                 Object
//	ECMA array             ECMAArray
//	strict array           StrictArray
//	date                   Date
//	typed object           TypedObject
//	XML document           XMLDocument
//
// The decoder is written for hostile network input: it never panics, checks
// every length before slicing, never allocates more than a constant factor of
// the input length, limits nesting to 64 levels (ErrTooDeep) and bounds how
// far AMF0 object references and AMF3 string references can expand the
// decoded value. Decoded strings never alias the input buffer.
package amf
