package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bounds on what a reply may hold. A reply past them is refused, and the
// connection that carried it closed.
const (
	MaxBulk  = 1 << 20 // bytes of one bulk string
	MaxArray = 1 << 16 // elements of one array
	maxDepth = 8       // arrays within arrays
)

// ErrNil is the reply of a command that found nothing: a null bulk string
// or a null array (GET of a missing key, SET NX of a key that exists).
var ErrNil = errors.New("resp: nil reply")

// ErrProtocol is wrapped by the errors of a reply that is not RESP2 or is
// past the bounds.
var ErrProtocol = errors.New("resp: protocol error")

// Error is an error reply: the server's message, such as "NOSCRIPT No
// matching script" or "WRONGPASS invalid username-password pair".
type Error struct{ Msg string }

func (e *Error) Error() string { return "redis: " + e.Msg }

// Code returns the message's first word, such as NOSCRIPT or ERR.
func (e *Error) Code() string {
	code, _, _ := strings.Cut(e.Msg, " ")
	return code
}

// readReply reads one reply: a string (simple or bulk), an int64, an
// []any (whose null elements are nil), or an *Error as the value, with a
// nil error; ErrNil for a null reply; any other error when the reply could
// not be read, after which the connection is unusable.
func readReply(r *bufio.Reader) (any, error) {
	v, err := readValue(r, 0)
	if err == nil && v == nil {
		return nil, ErrNil
	}
	return v, err
}

func readValue(r *bufio.Reader, depth int) (any, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: a reply line longer than %d bytes", ErrProtocol, r.Size())
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: a reply line without CRLF: %q", ErrProtocol, line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return string(body), nil
	case '-':
		return &Error{Msg: string(body)}, nil
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: bad integer %q", ErrProtocol, body)
		}
		return n, nil
	case '$':
		n, err := length(body, MaxBulk, "bulk string")
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		if b[n] != '\r' || b[n+1] != '\n' {
			return nil, fmt.Errorf("%w: a bulk string without CRLF", ErrProtocol)
		}
		return string(b[:n]), nil
	case '*':
		n, err := length(body, MaxArray, "array")
		if err != nil || n < 0 {
			return nil, err
		}
		if depth >= maxDepth {
			return nil, fmt.Errorf("%w: arrays nested deeper than %d", ErrProtocol, maxDepth)
		}
		a := make([]any, 0, min(n, 16)) // grows with what really arrives
		for range n {
			v, err := readValue(r, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w: unknown reply type %q", ErrProtocol, kind)
}

// length reads the length of a bulk string or an array: -1 (null) up to
// limit.
func length(body []byte, limit int, what string) (int, error) {
	n, err := strconv.Atoi(string(body))
	switch {
	case err != nil || n < -1:
		return 0, fmt.Errorf("%w: bad %s length %q", ErrProtocol, what, body)
	case n > limit:
		return 0, fmt.Errorf("%w: %s length %d is over the limit of %d", ErrProtocol, what, n, limit)
	}
	return n, nil
}

// appendCommand appends args as a RESP2 command: an array of bulk strings.
func appendCommand(b []byte, args []string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
