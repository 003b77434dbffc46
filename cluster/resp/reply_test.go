package resp

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func parse(s string) (any, error) {
	return readReply(bufio.NewReader(strings.NewReader(s)))
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"+OK\r\n", "OK"},
		{"+\r\n", ""},
		{"-NOSCRIPT No matching script\r\n", &Error{Msg: "NOSCRIPT No matching script"}},
		{":42\r\n", int64(42)},
		{":-1\r\n", int64(-1)},
		{"$5\r\nhello\r\n", "hello"},
		{"$0\r\n\r\n", ""},
		{"$4\r\na\r\nb\r\n", "a\r\nb"},
		{"*0\r\n", []any{}},
		{"*3\r\n:1\r\n$-1\r\n+x\r\n", []any{int64(1), nil, "x"}},
		{"*2\r\n*1\r\n:1\r\n*-1\r\n", []any{[]any{int64(1)}, nil}},
		{"*1\r\n-ERR inside\r\n", []any{&Error{Msg: "ERR inside"}}},
	} {
		got, err := parse(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

func TestReadReplyNil(t *testing.T) {
	for _, in := range []string{"$-1\r\n", "*-1\r\n"} {
		if v, err := parse(in); !errors.Is(err, ErrNil) || v != nil {
			t.Errorf("%q: %#v, %v; want ErrNil", in, v, err)
		}
	}
}

func TestReadReplyRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"?1\r\n", "unknown reply type"},
		{"+OK\n", "without CRLF"},
		{"\r\n", "without CRLF"},
		{":x\r\n", "bad integer"},
		{":99999999999999999999\r\n", "bad integer"},
		{"$-2\r\n", "bad bulk string length"},
		{"$x\r\n", "bad bulk string length"},
		{"$" + strconv.Itoa(MaxBulk+1) + "\r\n", "bulk string length 1048577 is over the limit of 1048576"},
		{"*" + strconv.Itoa(MaxArray+1) + "\r\n", "array length 65537 is over the limit of 65536"},
		{"$3\r\nabcde", "bulk string without CRLF"},
		{strings.Repeat("*1\r\n", maxDepth+1) + ":1\r\n", "nested deeper"},
		{"+" + strings.Repeat("a", 5000) + "\r\n", "reply line longer than"},
	} {
		_, err := parse(tc.in)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v; want a protocol error with %q", tc.in, err, tc.want)
		}
	}
}

func TestReadReplyTruncated(t *testing.T) {
	for _, in := range []string{"", "+OK", "$5\r\nhel", "*2\r\n:1\r\n"} {
		if _, err := parse(in); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v; want EOF", in, err)
		}
	}
}

func TestAppendCommand(t *testing.T) {
	got := string(appendCommand(nil, []string{"SET", "k", "", "a\r\nb"}))
	want := "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$4\r\na\r\nb\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// appendValue encodes v as a reply, for the fuzz round trip.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "$-1\r\n"...)
	case string:
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, "\r\n"...)
		b = append(b, v...)
		return append(b, "\r\n"...)
	case int64:
		b = append(b, ':')
		b = strconv.AppendInt(b, v, 10)
		return append(b, "\r\n"...)
	case *Error:
		return append(append(append(b, '-'), v.Msg...), "\r\n"...)
	case []any:
		b = append(b, '*')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, "\r\n"...)
		for _, e := range v {
			b = appendValue(b, e)
		}
		return b
	}
	panic("unknown reply value")
}

// FuzzReply checks that no input panics the parser or makes it read past
// its bounds, and that what it accepts reads back the same once encoded.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n",
		"*3\r\n:1\r\n$-1\r\n+x\r\n", "*1\r\n*1\r\n*0\r\n", "$1048577\r\n", "*65537\r\n",
		"$2\r\nab\r\n+tail\r\n", ":+5\r\n", "$00\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(strings.NewReader(string(in)))
		v, err := readReply(r)
		if err != nil {
			return
		}
		if s, ok := v.(string); ok && len(s) > MaxBulk {
			t.Fatalf("a string of %d bytes", len(s))
		}
		again, err := parse(string(appendValue(nil, v)))
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("%q read %#v, encoded and read again %#v, %v", in, v, again, err)
		}
	})
}
