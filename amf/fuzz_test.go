package amf

import (
	"bytes"
	"math"
	"reflect"
	"testing"
)

// hasNaN reports whether v contains a NaN number anywhere.
func hasNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsNaN(x)
	case Date:
		return math.IsNaN(x.Millis)
	case Object:
		return propsHaveNaN(x)
	case ECMAArray:
		return propsHaveNaN(x)
	case TypedObject:
		return propsHaveNaN(x.Props)
	case StrictArray:
		return hasNaN([]any(x))
	case []any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	}
	return false
}

func propsHaveNaN(ps []Property) bool {
	for _, p := range ps {
		if hasNaN(p.Value) {
			return true
		}
	}
	return false
}

func FuzzDecode(f *testing.F) {
	f.Add(connectBody)
	for _, b := range validEncodings() {
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	onStatus, _ := AppendAll(nil, "onStatus", 0, nil, Object{
		{"level", "status"},
		{"code", "NetStream.Publish.Start"},
		{"description", "Start publishing"},
	})
	f.Add(onStatus)
	meta, _ := AppendAll(nil, "@setDataFrame", "onMetaData", ECMAArray{
		{"duration", 0}, {"width", 1280}, {"height", 720}, {"videocodecid", 7},
		{"encoder", "Lavf60.3.100"}, {"stereo", true},
	})
	f.Add(meta)
	f.Add(cat([]byte{0x11, 0x06, 0x07}, "abc", []byte{0x11, 0x06, 0x00, 0x11, 0x04, 0x81, 0x00}))
	f.Add(cat([]byte{0x03}, objEnd, []byte{0x0A, 0, 0, 0, 2, 0x07, 0x00, 0x00, 0x07, 0x00, 0x00}))
	f.Add(nestedObjects(64))
	f.Add([]byte{0x09})

	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		v0, n, err0 := Decode(in)
		if err0 == nil && (n <= 0 || n > len(in)) {
			t.Fatalf("Decode used %d of %d bytes", n, len(in))
		}
		vs, err := DecodeAll(in)
		if err != nil {
			return
		}
		if len(vs) > 0 {
			if err0 != nil {
				t.Fatalf("DecodeAll succeeded but Decode failed: %v", err0)
			}
			if !hasNaN(v0) && !reflect.DeepEqual(v0, vs[0]) {
				t.Fatalf("Decode = %#v, DecodeAll[0] = %#v", v0, vs[0])
			}
		}
		enc, err := AppendAll(nil, vs...)
		if err != nil {
			t.Fatalf("re-encoding decoded values: %v", err)
		}
		// Decoded values must not alias the input.
		for i := range in {
			in[i] ^= 0xFF
		}
		enc1, err := AppendAll(nil, vs...)
		if err != nil || !bytes.Equal(enc, enc1) {
			t.Fatalf("decoded values changed with the input buffer")
		}

		vs2, err := DecodeAll(enc)
		if err != nil {
			t.Fatalf("decoding re-encoded values: %v\n% x", err, enc)
		}
		enc2, err := AppendAll(nil, vs2...)
		if err != nil {
			t.Fatalf("re-encoding again: %v", err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n% x\n% x", enc, enc2)
		}
		if !hasNaN(vs) && !reflect.DeepEqual(vs, vs2) {
			t.Fatalf("round trip differs:\n%#v\n%#v", vs, vs2)
		}
	})
}
