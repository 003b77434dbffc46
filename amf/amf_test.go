package amf

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// cat concatenates byte slices and strings into one encoding.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch x := p.(type) {
		case []byte:
			b = append(b, x...)
		case string:
			b = append(b, x...)
		case byte:
			b = append(b, x)
		default:
			panic("cat: bad part")
		}
	}
	return b
}

// objEnd is the AMF0 object end sequence: empty key, object-end marker.
var objEnd = []byte{0x00, 0x00, 0x09}

// connectBody is the body of the connect command ffmpeg sends when
// publishing, built by hand from the AMF0 specification.
var connectBody = cat(
	[]byte{0x02, 0x00, 0x07}, "connect", // string marker, u16 length 7
	[]byte{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}, // number 1.0
	[]byte{0x03}, // object marker
	[]byte{0x00, 0x03}, "app", []byte{0x02, 0x00, 0x04}, "live",
	[]byte{0x00, 0x04}, "type", []byte{0x02, 0x00, 0x0A}, "nonprivate",
	[]byte{0x00, 0x08}, "flashVer", []byte{0x02, 0x00, 0x1F}, "FMLE/3.0 (compatible; FMSc/1.0)",
	[]byte{0x00, 0x05}, "tcUrl", []byte{0x02, 0x00, 0x1A}, "rtmp://127.0.0.1:1935/live",
	objEnd,
)

var connectValues = []any{
	"connect",
	1.0,
	Object{
		{"app", "live"},
		{"type", "nonprivate"},
		{"flashVer", "FMLE/3.0 (compatible; FMSc/1.0)"},
		{"tcUrl", "rtmp://127.0.0.1:1935/live"},
	},
}

func TestConnectVector(t *testing.T) {
	got, err := DecodeAll(connectBody)
	if err != nil {
		t.Fatalf("DecodeAll: %v", err)
	}
	if !reflect.DeepEqual(got, connectValues) {
		t.Fatalf("DecodeAll = %#v\nwant %#v", got, connectValues)
	}
	enc, err := AppendAll(nil, connectValues...)
	if err != nil {
		t.Fatalf("AppendAll: %v", err)
	}
	if !bytes.Equal(enc, connectBody) {
		t.Fatalf("AppendAll = % x\nwant      % x", enc, connectBody)
	}
	obj := got[2].(Object)
	if s := obj.String("tcUrl"); s != "rtmp://127.0.0.1:1935/live" {
		t.Errorf("String(tcUrl) = %q", s)
	}
	if s := obj.String("missing"); s != "" {
		t.Errorf("String(missing) = %q", s)
	}
	if _, ok := obj.Number("app"); ok {
		t.Error("Number(app) ok for a string")
	}
}

// vectors are single values with their exact AMF0 encoding.
var vectors = []struct {
	name string
	v    any
	b    []byte
}{
	{"number 1", 1.0, []byte{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}},
	{"number 0", 0.0, []byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0}},
	{"number -2.5", -2.5, []byte{0x00, 0xC0, 0x04, 0, 0, 0, 0, 0, 0}},
	{"number 1e300", 1e300, []byte{0x00, 0x7E, 0x37, 0xE4, 0x3C, 0x88, 0x00, 0x75, 0x9C}},
	{"true", true, []byte{0x01, 0x01}},
	{"false", false, []byte{0x01, 0x00}},
	{"string", "abc", []byte{0x02, 0x00, 0x03, 'a', 'b', 'c'}},
	{"empty string", "", []byte{0x02, 0x00, 0x00}},
	{"null", nil, []byte{0x05}},
	{"undefined", Undefined{}, []byte{0x06}},
	{"empty object", Object{}, []byte{0x03, 0x00, 0x00, 0x09}},
	{"object", Object{{"a", 1.0}}, cat([]byte{0x03, 0x00, 0x01}, "a", []byte{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}, objEnd)},
	{"object empty key", Object{{"", true}}, cat([]byte{0x03, 0x00, 0x00, 0x01, 0x01}, objEnd)},
	{"ECMA array", ECMAArray{{"duration", 0.0}, {"stereo", true}}, cat(
		[]byte{0x08, 0x00, 0x00, 0x00, 0x02},
		[]byte{0x00, 0x08}, "duration", []byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0},
		[]byte{0x00, 0x06}, "stereo", []byte{0x01, 0x01},
		objEnd)},
	{"empty ECMA array", ECMAArray{}, cat([]byte{0x08, 0, 0, 0, 0}, objEnd)},
	{"strict array", StrictArray{1.0, "x", nil}, cat(
		[]byte{0x0A, 0x00, 0x00, 0x00, 0x03},
		[]byte{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0},
		[]byte{0x02, 0x00, 0x01}, "x",
		[]byte{0x05})},
	{"empty strict array", StrictArray{}, []byte{0x0A, 0, 0, 0, 0}},
	{"date", Date{Millis: 1.0, TimeZone: -60}, []byte{0x0B, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0xFF, 0xC4}},
	{"XML document", XMLDocument("<a/>"), cat([]byte{0x0F, 0, 0, 0, 4}, "<a/>")},
	{"typed object", TypedObject{Class: "Pt", Props: Object{{"x", false}}}, cat(
		[]byte{0x10, 0x00, 0x02}, "Pt",
		[]byte{0x00, 0x01}, "x", []byte{0x01, 0x00},
		objEnd)},
	{"nested", Object{{"o", Object{{"a", StrictArray{Object{}}}}}}, cat(
		[]byte{0x03, 0x00, 0x01}, "o",
		[]byte{0x03, 0x00, 0x01}, "a",
		[]byte{0x0A, 0, 0, 0, 1}, []byte{0x03}, objEnd,
		objEnd, objEnd)},
}

func TestVectors(t *testing.T) {
	for _, tc := range vectors {
		t.Run(tc.name, func(t *testing.T) {
			v, n, err := Decode(tc.b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n != len(tc.b) {
				t.Errorf("Decode used %d bytes, want %d", n, len(tc.b))
			}
			if !reflect.DeepEqual(v, tc.v) {
				t.Errorf("Decode = %#v, want %#v", v, tc.v)
			}
			enc, err := Append([]byte{0xEE}, tc.v)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if enc[0] != 0xEE || !bytes.Equal(enc[1:], tc.b) {
				t.Errorf("Append = % x, want ee % x", enc, tc.b)
			}
			// Trailing bytes are left alone by Decode.
			_, n, err = Decode(append(bytes.Clone(tc.b), 0x05, 0x05))
			if err != nil || n != len(tc.b) {
				t.Errorf("Decode with trailing bytes: n=%d err=%v", n, err)
			}
		})
	}
}

func TestDecodeOnly(t *testing.T) {
	long := strings.Repeat("z", 70000)
	tests := []struct {
		name string
		b    []byte
		want any
	}{
		{"long string", cat([]byte{0x0C, 0, 0, 0, 3}, "abc"), "abc"},
		{"unsupported marker", []byte{0x0D}, Undefined{}},
		{"boolean nonzero", []byte{0x01, 0x7F}, true},
		{"ECMA count 0 with props", cat([]byte{0x08, 0, 0, 0, 0}, []byte{0x00, 0x01}, "k", []byte{0x05}, objEnd),
			ECMAArray{{"k", nil}}},
		{"ECMA count too large", cat([]byte{0x08, 0, 0, 0, 9}, []byte{0x00, 0x01}, "k", []byte{0x05}, objEnd),
			ECMAArray{{"k", nil}}},
		{"long string 70000", cat([]byte{0x0C, 0x00, 0x01, 0x11, 0x70}, long), long},
		{"amf3 undefined", []byte{0x11, 0x00}, Undefined{}},
		{"amf3 null", []byte{0x11, 0x01}, nil},
		{"amf3 false", []byte{0x11, 0x02}, false},
		{"amf3 true", []byte{0x11, 0x03}, true},
		{"amf3 int 0", []byte{0x11, 0x04, 0x00}, 0.0},
		{"amf3 int 127", []byte{0x11, 0x04, 0x7F}, 127.0},
		{"amf3 int 128", []byte{0x11, 0x04, 0x81, 0x00}, 128.0},
		{"amf3 int 16384", []byte{0x11, 0x04, 0x81, 0x80, 0x00}, 16384.0},
		{"amf3 int max", []byte{0x11, 0x04, 0xBF, 0xFF, 0xFF, 0xFF}, float64(1<<28 - 1)},
		{"amf3 int -1", []byte{0x11, 0x04, 0xFF, 0xFF, 0xFF, 0xFF}, -1.0},
		{"amf3 int min", []byte{0x11, 0x04, 0xC0, 0x80, 0x80, 0x00}, float64(-(1 << 28))},
		{"amf3 double", []byte{0x11, 0x05, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}, 1.0},
		{"amf3 string", cat([]byte{0x11, 0x06, 0x07}, "abc"), "abc"},
		{"amf3 empty string", []byte{0x11, 0x06, 0x01}, ""},
		{"amf3 in object", cat([]byte{0x03, 0x00, 0x01}, "n", []byte{0x11, 0x04, 0x05}, objEnd), Object{{"n", 5.0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, n, err := Decode(tc.b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n != len(tc.b) {
				t.Errorf("used %d bytes, want %d", n, len(tc.b))
			}
			if !reflect.DeepEqual(v, tc.want) {
				t.Errorf("got %#v, want %#v", v, tc.want)
			}
		})
	}
}

func TestAMF3StringReferences(t *testing.T) {
	b := cat(
		[]byte{0x11, 0x06, 0x07}, "abc", // inline "abc" -> table[0]
		[]byte{0x11, 0x06, 0x01},       // empty string, not added
		[]byte{0x11, 0x06, 0x05}, "de", // inline "de" -> table[1]
		[]byte{0x11, 0x06, 0x02}, // reference 1 -> "de"
		[]byte{0x11, 0x06, 0x00}, // reference 0 -> "abc"
	)
	got, err := DecodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"abc", "", "de", "de", "abc"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	// Reference 2 is out of range (the empty string was not added).
	_, err = DecodeAll(cat(b, []byte{0x11, 0x06, 0x04}))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad string reference: err = %v", err)
	}
}

func TestAMF0References(t *testing.T) {
	obj := Object{{"a", 1.0}}
	objBytes := cat([]byte{0x03, 0x00, 0x01}, "a", []byte{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}, objEnd)

	// Reference across values of one body: value 0 is table entry 0.
	got, err := DecodeAll(cat(objBytes, []byte{0x07, 0x00, 0x00}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []any{obj, obj}) {
		t.Fatalf("got %#v", got)
	}

	// Strict array (entry 0) holding an object (entry 1) and a reference to it,
	// then an ECMA array (entry 2) and a typed object (entry 3) referencing
	// the earlier entries.
	b := cat(
		[]byte{0x0A, 0, 0, 0, 2}, objBytes, []byte{0x07, 0x00, 0x01},
		[]byte{0x08, 0, 0, 0, 1}, []byte{0x00, 0x01}, "r", []byte{0x07, 0x00, 0x00}, objEnd,
		[]byte{0x10, 0x00, 0x01}, "T", []byte{0x00, 0x01}, "e", []byte{0x07, 0x00, 0x02}, objEnd,
		[]byte{0x07, 0x00, 0x03},
	)
	got, err = DecodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	arr := StrictArray{obj, obj}
	ecma := ECMAArray{{"r", arr}}
	typed := TypedObject{Class: "T", Props: Object{{"e", ecma}}}
	if want := []any{arr, ecma, typed, typed}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}

	// Decode of a reference alone: table is empty.
	if _, _, err := Decode([]byte{0x07, 0x00, 0x00}); !errors.Is(err, ErrInvalid) {
		t.Errorf("reference with empty table: err = %v", err)
	}
	// Out of range index.
	if _, err := DecodeAll(cat(objBytes, []byte{0x07, 0x00, 0x01})); !errors.Is(err, ErrInvalid) {
		t.Errorf("out of range reference: err = %v", err)
	}
	// Reference to the enclosing object (a cycle).
	if _, err := DecodeAll(cat([]byte{0x03, 0x00, 0x01}, "s", []byte{0x07, 0x00, 0x00}, objEnd)); !errors.Is(err, ErrInvalid) {
		t.Errorf("cyclic reference: err = %v", err)
	}
}

func TestReferenceExpansionLimit(t *testing.T) {
	// Each strict array holds two references to the previous one, doubling
	// the expanded size at a cost of 11 input bytes.
	b := cat([]byte{0x0A, 0, 0, 0, 1}, []byte{0x02, 0x00, 0x10}, strings.Repeat("x", 16))
	for i := 0; i < 40; i++ {
		b = cat(b, []byte{0x0A, 0, 0, 0, 2, 0x07, 0x00, byte(i), 0x07, 0x00, byte(i)})
	}
	_, err := DecodeAll(b)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("exponential references: err = %v", err)
	}

	// AMF3 string references are bounded too.
	s := strings.Repeat("y", 1000)
	b = cat([]byte{0x11, 0x06, 0x8F, 0x51}, s) // U29 (1000<<1)|1 = 2001
	for i := 0; i < 100; i++ {
		b = cat(b, []byte{0x11, 0x06, 0x00})
	}
	if _, err := DecodeAll(b); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AMF3 string reference bomb: err = %v", err)
	}
	// A handful of references is fine.
	b = cat([]byte{0x11, 0x06, 0x8F, 0x51}, s, []byte{0x11, 0x06, 0x00}, []byte{0x11, 0x06, 0x00})
	if vs, err := DecodeAll(b); err != nil || len(vs) != 3 || vs[2] != s {
		t.Fatalf("few AMF3 references: %v", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"object end outside object", []byte{0x09}, ErrInvalid},
		{"object end in array", []byte{0x0A, 0, 0, 0, 1, 0x09}, ErrInvalid},
		{"object end as property value", cat([]byte{0x03, 0x00, 0x01}, "a", []byte{0x09}), ErrInvalid},
		{"movieclip", []byte{0x04}, ErrUnsupported},
		{"recordset", []byte{0x0E}, ErrUnsupported},
		{"unknown marker 0x12", []byte{0x12}, ErrUnsupported},
		{"unknown marker 0xff", []byte{0xFF}, ErrUnsupported},
		{"amf3 object", []byte{0x11, 0x0A, 0x0B, 0x01, 0x01}, ErrUnsupported},
		{"amf3 array", []byte{0x11, 0x09, 0x01, 0x01}, ErrUnsupported},
		{"amf3 bytearray", []byte{0x11, 0x0C, 0x01}, ErrUnsupported},
		{"huge strict array count", []byte{0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05}, ErrTruncated},
		{"huge long string", []byte{0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 'a'}, ErrTruncated},
		{"huge XML", []byte{0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 'a'}, ErrTruncated},
		{"huge amf3 string", []byte{0x11, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 'a'}, ErrTruncated},
		{"missing object end", cat([]byte{0x03, 0x00, 0x01}, "a", []byte{0x05}), ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, n, err := Decode(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode err = %v, want %v", err, tc.want)
			}
			if v != nil || n != 0 {
				t.Errorf("Decode on error returned v=%v n=%d", v, n)
			}
			if _, err := DecodeAll(tc.b); len(tc.b) > 0 && !errors.Is(err, tc.want) {
				t.Errorf("DecodeAll err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestErrorContext(t *testing.T) {
	_, _, err := Decode([]byte{0x03, 0x00, 0x01, 'a', 0x02, 0x00, 0x05, 'x'})
	if err == nil || !strings.Contains(err.Error(), "string at offset 4") {
		t.Fatalf("err = %v, want offset context", err)
	}
	_, err = Append(nil, struct{}{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "struct {}") {
		t.Fatalf("Append(struct{}{}) err = %v", err)
	}
}

// validEncodings returns single-value encodings covering every type.
func validEncodings() [][]byte {
	var out [][]byte
	for _, tc := range vectors {
		out = append(out, tc.b)
	}
	long, _ := Append(nil, strings.Repeat("L", 70000))
	out = append(out,
		long,
		[]byte{0x11, 0x04, 0xFF, 0xFF, 0xFF, 0xFF},
		cat([]byte{0x11, 0x06, 0x07}, "abc"),
		[]byte{0x11, 0x05, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0},
		cat([]byte{0x0A, 0, 0, 0, 2}, []byte{0x03}, objEnd, []byte{0x07, 0x00, 0x01}),
		cat([]byte{0x08, 0, 0, 0, 0}, []byte{0x00, 0x01}, "k", []byte{0x05}, objEnd),
	)
	return out
}

func TestTruncatedPrefixes(t *testing.T) {
	for _, b := range validEncodings() {
		if _, n, err := Decode(b); err != nil || n != len(b) {
			t.Fatalf("valid encoding % x: n=%d err=%v", b[:min(len(b), 32)], n, err)
		}
		step := 1
		if len(b) > 1000 {
			step = 997 // sample the long string
		}
		for i := 0; i < len(b); i += step {
			v, n, err := Decode(b[:i])
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("Decode(% x[:%d]) = %v, %d, %v; want ErrTruncated", b[:min(len(b), 32)], i, v, n, err)
			}
		}
	}
	// Cut inside the last value of a full command body.
	for i := 1; i < len(connectBody); i++ {
		vs, err := DecodeAll(connectBody[:i])
		// Value boundaries: after "connect" and after 1.0.
		if want, boundary := map[int]int{10: 1, 19: 2}[i]; boundary {
			if err != nil || len(vs) != want {
				t.Errorf("DecodeAll(prefix %d) = %v, %v", i, vs, err)
			}
		} else if !errors.Is(err, ErrTruncated) {
			t.Errorf("DecodeAll(prefix %d): err = %v, want ErrTruncated", i, err)
		}
	}
}

// nestedObjects returns n objects nested through key "a".
func nestedObjects(n int) []byte {
	var b []byte
	for i := 0; i < n-1; i++ {
		b = append(b, 0x03, 0x00, 0x01, 'a')
	}
	b = append(b, 0x03, 0x00, 0x00, 0x09)
	for i := 0; i < n-1; i++ {
		b = append(b, objEnd...)
	}
	return b
}

func nestedArrays(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, 0x0A, 0, 0, 0, 1)
	}
	return append(b, 0x05)
}

func TestDepth(t *testing.T) {
	if _, _, err := Decode(nestedObjects(64)); err != nil {
		t.Fatalf("depth 64 objects: %v", err)
	}
	if _, _, err := Decode(nestedObjects(65)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth 65 objects: err = %v", err)
	}
	if _, _, err := Decode(nestedArrays(64)); err != nil {
		t.Fatalf("depth 64 arrays: %v", err)
	}
	if _, _, err := Decode(nestedArrays(65)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth 65 arrays: err = %v", err)
	}
	// Deep hostile input fails fast, without recursing further.
	if _, _, err := Decode(bytes.Repeat([]byte{0x0A, 0, 0, 0, 1}, 100000)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("very deep arrays: err = %v", err)
	}

	// A reference must not produce a value deeper than the limit: value 0 is
	// 60 levels deep, value 1 nests it 5 more levels down.
	b := nestedArrays(60)
	b = append(b, nestedArrays(5)[:25]...)
	b = append(b, 0x07, 0x00, 0x00)
	if _, err := DecodeAll(b); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("deep reference: err = %v", err)
	}
	b = append(nestedArrays(60), nestedArrays(4)[:20]...)
	b = append(b, 0x07, 0x00, 0x00)
	if _, err := DecodeAll(b); err != nil {
		t.Fatalf("reference at depth 64: %v", err)
	}

	// Encoding is limited the same way.
	v, _, _ := Decode(nestedObjects(64))
	if _, err := Append(nil, v); err != nil {
		t.Fatalf("encode depth 64: %v", err)
	}
	if _, err := Append(nil, Object{{"a", v}}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("encode depth 65: err = %v", err)
	}
	// A cyclic Go value fails instead of recursing forever.
	cyc := Object{{"self", nil}}
	cyc[0].Value = cyc
	if _, err := Append(nil, cyc); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("encode cycle: err = %v", err)
	}
	arr := make([]any, 1)
	arr[0] = arr
	if _, err := Append(nil, arr); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("encode cyclic slice: err = %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("0123456789", 7000) // 70000 bytes
	values := []any{
		0.0, 1.0, -1.5, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1),
		true, false,
		"", "hello", "ünïcødé", strings.Repeat("a", 65535), long,
		nil, Undefined{},
		Object{}, ECMAArray{}, StrictArray{},
		Object{{"a", 1.0}, {"b", "x"}, {"c", nil}, {"d", Undefined{}}, {"", "empty key"}},
		ECMAArray{{"0", "zero"}, {"length", 1.0}},
		StrictArray{1.0, "two", nil, StrictArray{}, Object{{"k", long}}},
		Date{Millis: 1700000000000, TimeZone: 0},
		Date{Millis: -1, TimeZone: math.MinInt16},
		TypedObject{Class: "flex.messaging.io.ArrayCollection", Props: Object{{"source", StrictArray{1.0}}}},
		TypedObject{Class: "", Props: Object{}},
		XMLDocument("<x>1</x>"), XMLDocument(""),
		Object{{"nested", Object{{"deeper", ECMAArray{{"deepest", StrictArray{
			TypedObject{Class: "C", Props: Object{{"d", Date{Millis: 5}}}}}}}}}}},
	}
	for i, v := range values {
		enc, err := Append(nil, v)
		if err != nil {
			t.Fatalf("value %d: Append: %v", i, err)
		}
		got, n, err := Decode(enc)
		if err != nil {
			t.Fatalf("value %d: Decode: %v", i, err)
		}
		if n != len(enc) {
			t.Errorf("value %d: used %d of %d bytes", i, n, len(enc))
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("value %d: round trip = %#v, want %#v", i, got, v)
		}
	}

	// All together as one body.
	enc, err := AppendAll(nil, values...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAll(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, values) {
		t.Error("AppendAll/DecodeAll round trip differs")
	}

	// NaN keeps its bits.
	enc, _ = Append(nil, math.NaN())
	v, _, err := Decode(enc)
	if f, ok := v.(float64); err != nil || !ok || math.Float64bits(f) != math.Float64bits(math.NaN()) {
		t.Errorf("NaN round trip: %v %v", v, err)
	}
	// Negative zero keeps its sign.
	enc, _ = Append(nil, math.Copysign(0, -1))
	v, _, _ = Decode(enc)
	if f, _ := v.(float64); !math.Signbit(f) {
		t.Error("-0 lost its sign")
	}
}

func TestLongStringMarker(t *testing.T) {
	enc, _ := Append(nil, strings.Repeat("a", 65535))
	if enc[0] != 0x02 || len(enc) != 3+65535 {
		t.Errorf("65535-byte string: marker 0x%02x len %d", enc[0], len(enc))
	}
	enc, _ = Append(nil, strings.Repeat("a", 65536))
	if !bytes.Equal(enc[:5], []byte{0x0C, 0x00, 0x01, 0x00, 0x00}) || len(enc) != 5+65536 {
		t.Errorf("65536-byte string header % x len %d", enc[:5], len(enc))
	}
}

func TestAppendNumbers(t *testing.T) {
	one := []byte{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}
	for _, v := range []any{
		1.0, float32(1), int(1), int8(1), int16(1), int32(1), int64(1),
		uint(1), uint8(1), uint16(1), uint32(1), uint64(1), uintptr(1),
	} {
		enc, err := Append(nil, v)
		if err != nil || !bytes.Equal(enc, one) {
			t.Errorf("Append(%T 1) = % x, %v", v, enc, err)
		}
	}
	enc, _ := Append(nil, int64(-3))
	if v, _, _ := Decode(enc); v != -3.0 {
		t.Errorf("int64(-3) decoded as %v", v)
	}
}

func TestAppendMap(t *testing.T) {
	m := map[string]any{"z": 1, "a": "x", "m": map[string]any{"k2": nil, "k1": true}}
	enc, err := Append(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Append(nil, Object{
		{"a", "x"},
		{"m", Object{{"k1", true}, {"k2", nil}}},
		{"z", 1.0},
	})
	if !bytes.Equal(enc, want) {
		t.Fatalf("map encoding = % x\nwant % x", enc, want)
	}
	// Deterministic across calls.
	for i := 0; i < 20; i++ {
		again, _ := Append(nil, m)
		if !bytes.Equal(again, enc) {
			t.Fatal("map encoding is not deterministic")
		}
	}
	enc, _ = Append(nil, []any{map[string]any{}})
	if !bytes.Equal(enc, cat([]byte{0x0A, 0, 0, 0, 1, 0x03}, objEnd)) {
		t.Errorf("[]any{empty map} = % x", enc)
	}
}

func TestAppendErrors(t *testing.T) {
	type myString string
	for _, v := range []any{
		struct{}{}, myString("x"), []string{"a"}, map[string]string{}, &Object{}, complex(1, 2),
		Object{{"ok", 1.0}, {"bad", make(chan int)}},
		StrictArray{1.0, []int{1}},
		map[string]any{"f": func() {}},
	} {
		dst := []byte{1, 2, 3}
		out, err := Append(dst, v)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("Append(%T): err = %v", v, err)
		}
		if !bytes.Equal(out, []byte{1, 2, 3}) {
			t.Errorf("Append(%T) on error returned % x", v, out)
		}
	}
	if _, err := Append(nil, Object{{strings.Repeat("k", 65536), 1.0}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("long key: err = %v", err)
	}
	if _, err := Append(nil, TypedObject{Class: strings.Repeat("k", 65536)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("long class: err = %v", err)
	}
	out, err := AppendAll([]byte{9}, "a", struct{}{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "value 1") || !bytes.Equal(out, []byte{9}) {
		t.Errorf("AppendAll error: % x %v", out, err)
	}
}

func TestAccessors(t *testing.T) {
	o := Object{{"s", "str"}, {"n", 2.5}, {"b", true}, {"x", XMLDocument("<x/>")}, {"s", "dup"}}
	if v, ok := o.Get("n"); !ok || v != 2.5 {
		t.Errorf("Get(n) = %v %v", v, ok)
	}
	if _, ok := o.Get("none"); ok {
		t.Error("Get(none) ok")
	}
	if o.String("s") != "str" || o.String("n") != "" || o.String("x") != "" {
		t.Error("String")
	}
	if n, ok := o.Number("n"); !ok || n != 2.5 {
		t.Error("Number(n)")
	}
	if _, ok := o.Number("s"); ok {
		t.Error("Number(s)")
	}
	if b, ok := o.Bool("b"); !ok || !b {
		t.Error("Bool(b)")
	}
	if _, ok := o.Bool("n"); ok {
		t.Error("Bool(n)")
	}
	a := ECMAArray(o)
	if v, ok := a.Get("b"); !ok || v != true {
		t.Error("ECMAArray.Get")
	}
	if a.String("s") != "str" {
		t.Error("ECMAArray.String")
	}
	if n, ok := a.Number("n"); !ok || n != 2.5 {
		t.Error("ECMAArray.Number")
	}
	if b, ok := a.Bool("b"); !ok || !b {
		t.Error("ECMAArray.Bool")
	}
	var empty Object
	if _, ok := empty.Get("a"); ok || empty.String("a") != "" {
		t.Error("nil Object accessors")
	}
}

func TestNoAliasing(t *testing.T) {
	buf := bytes.Clone(connectBody)
	vs, err := DecodeAll(buf)
	if err != nil {
		t.Fatal(err)
	}
	xml := cat([]byte{0x0F, 0, 0, 0, 3}, "<a>", []byte{0x11, 0x06, 0x0B}, "hello", []byte{0x0C, 0, 0, 0, 2}, "zz")
	vs2, err := DecodeAll(xml)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	for i := range xml {
		xml[i] = 'X'
	}
	if !reflect.DeepEqual(vs, connectValues) {
		t.Errorf("decoded values alias the input: %#v", vs)
	}
	if want := []any{XMLDocument("<a>"), "hello", "zz"}; !reflect.DeepEqual(vs2, want) {
		t.Errorf("decoded values alias the input: %#v", vs2)
	}
}

func TestDecodeAllEmpty(t *testing.T) {
	vs, err := DecodeAll(nil)
	if err != nil || len(vs) != 0 {
		t.Fatalf("DecodeAll(nil) = %v, %v", vs, err)
	}
	out, err := AppendAll(nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("AppendAll() = %v, %v", out, err)
	}
}

func TestDecodeAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	// Numbers and interned strings decode without allocating.
	b := cat([]byte{0x02, 0x00, 0x08}, "onStatus", []byte{0x00, 0x40, 0x00, 0, 0, 0, 0, 0, 0})
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode(interned string) allocates %v times", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, _, err := Decode(b[11:]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode(2.0) allocates %v times", allocs)
	}
}
