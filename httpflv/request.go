package httpflv

import (
	"bytes"
	"strings"
)

// Limits of a request head.
const (
	// DefaultMaxHead is the head size ParseRequest allows when maxHead <= 0.
	DefaultMaxHead = 8 << 10
	// MaxTarget is the longest request-target (and stream path) accepted;
	// a longer one is answered 414.
	MaxTarget = 4 << 10
	// maxListFields bounds how many Upgrade or Connection lines are joined.
	maxListFields = 4
)

// Request is a parsed request head. Its strings are copies: they stay valid
// after the buffer given to ParseRequest is reused.
type Request struct {
	Method string // as sent ("GET", "HEAD", "OPTIONS", ...): the server decides 405
	Target string // the request-target as sent
	// Path is the percent-decoded path (once: "%2F" is a "/", "%252e" a
	// "%2e"), starting with "/"; "" for "OPTIONS *". Do not decode it again.
	Path     string
	RawQuery string // the query after "?", not decoded; "" if none
	Proto    string // "HTTP/1.1" or "HTTP/1.0"
	// Host is the host of the Host header, or of an absolute-form target,
	// lowercased, without port and without IPv6 brackets; "" if none.
	Host string
	// Upgrade and Connection are the field values; repeated fields are
	// joined with ", ".
	Upgrade, Connection string
	// WebSocketKey, WebSocketVersion and Origin are the values of
	// Sec-WebSocket-Key, Sec-WebSocket-Version and Origin.
	WebSocketKey, WebSocketVersion, Origin string
}

// ParseRequest parses the request head at the start of buf: the request
// line, the header fields and the empty line that ends them. It returns the
// head's length and the request when the head is complete within maxHead
// bytes (DefaultMaxHead if maxHead <= 0); bytes after the head are not
// looked at. It returns 0, nil, nil when the head is incomplete and
// len(buf) < maxHead: call again with more bytes. Otherwise it returns an
// *Error whose Status the server should answer with before closing:
//
//   - 400: a malformed request line or header line (including obs-fold,
//     whitespace before a colon, control characters, NUL, a bare CR), bad
//     percent-encoding or a control character in the decoded path, a
//     target that is neither origin-form, "*" with OPTIONS, nor
//     http://host/..., a bad or repeated Host (or none in HTTP/1.1), a
//     repeated Sec-WebSocket-Key, Sec-WebSocket-Version or Origin, a bad
//     Content-Length;
//   - 414: a request-target over MaxTarget bytes;
//   - 431: no end of head within maxHead bytes;
//   - 501: Transfer-Encoding, or Content-Length > 0 (no request bodies);
//   - 505: a version other than HTTP/1.0 and HTTP/1.1.
//
// Errors in the complete lines of a partial head are reported at once, as
// are bytes that can never be valid, so garbage is refused without waiting
// for maxHead bytes.
//
// Lines may end in CRLF or in a bare LF (RFC 9112 section 2.2 allows
// recipients to accept LF): the server takes no request bodies, so a
// different reading of line ends by a proxy in front of it cannot smuggle a
// request, and hand-typed requests (nc, telnet) work. A CR anywhere else is
// an error. Empty lines before the request line are skipped (RFC 9112
// section 2.2). Header values may hold obs-text (bytes >= 0x80), and so may
// the target: some clients send UTF-8 paths unencoded.
func ParseRequest(buf []byte, maxHead int) (n int, req *Request, err error) {
	if maxHead <= 0 {
		maxHead = DefaultMaxHead
	}
	lim := buf
	if len(lim) > maxHead {
		lim = lim[:maxHead]
	}
	var h head
	off := 0
	// Empty lines before the request line.
	for off < len(lim) && (lim[off] == '\n' || lim[off] == '\r' && off+1 < len(lim) && lim[off+1] == '\n') {
		if lim[off] == '\r' {
			off++
		}
		off++
	}
	first := true
	for {
		i := bytes.IndexByte(lim[off:], '\n')
		if i < 0 {
			return h.incomplete(lim[off:], first, len(buf) >= maxHead)
		}
		line := lim[off : off+i]
		off += i + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if first {
			if e := h.requestLine(line); e != nil {
				return 0, nil, e
			}
			first = false
			continue
		}
		if len(line) == 0 {
			break
		}
		if e := h.field(line); e != nil {
			return 0, nil, e
		}
	}
	if h.proto == proto11 && !h.hostSeen {
		return 0, nil, newError(400, "HTTP/1.1 request without Host")
	}
	if h.te {
		return 0, nil, newError(501, "Transfer-Encoding: request bodies are not accepted")
	}
	if h.cl > 0 {
		return 0, nil, newError(501, "Content-Length > 0: request bodies are not accepted")
	}
	return off, h.request(), nil
}

const (
	proto10 = "HTTP/1.0"
	proto11 = "HTTP/1.1"
)

// head is the parse state: slices of the caller's buffer, valid during the
// call only. It stays on the stack.
type head struct {
	method, target []byte
	proto          string
	// Path and query as offsets into target; queryAt < 0 if no query.
	pathAt, pathEnd, queryAt int
	pathPct                  int  // how many %XX escapes the path holds
	pathRoot                 bool // absolute-form with an empty path: "/"
	asterisk                 bool
	absHost                  []byte // host of an absolute-form target

	host                []byte
	hostSeen            bool
	upgrade, connection [maxListFields][]byte
	nUpgrade, nConn     int
	key, version        []byte
	keySeen, verSeen    bool
	origin              []byte
	originSeen          bool
	cl                  int64
	clSeen, te          bool
}

// incomplete decides between "need more" and an error for a head without
// its end: rest is the unfinished line, full says no more bytes may come.
func (h *head) incomplete(rest []byte, first, full bool) (int, *Request, error) {
	for i, c := range rest {
		if c == '\r' {
			if i+1 < len(rest) {
				return 0, nil, newError(400, "bare CR in request head")
			}
			continue
		}
		if c != '\t' && (c < 0x20 || c == 0x7f) {
			return 0, nil, newError(400, "control character in request head")
		}
	}
	if first {
		if len(rest) > 0 && rest[len(rest)-1] == '\r' {
			rest = rest[:len(rest)-1]
		}
		sp := bytes.IndexByte(rest, ' ')
		method := rest
		if sp >= 0 {
			method = rest[:sp]
			target := rest[sp+1:]
			if j := bytes.IndexByte(target, ' '); j >= 0 {
				target = target[:j]
			}
			if len(target) > MaxTarget {
				return 0, nil, newError(414, "request-target over 4 KiB")
			}
		}
		if (sp == 0 || len(method) > 0) && !isToken(method) {
			return 0, nil, newError(400, "malformed method in request line")
		}
	}
	if full {
		return 0, nil, newError(431, "request head over the size limit")
	}
	return 0, nil, nil
}

// requestLine parses method SP request-target SP HTTP-version.
func (h *head) requestLine(line []byte) *Error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return newError(400, "malformed method in request line")
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return newError(400, "malformed request line: no HTTP version")
	}
	h.method, h.target = line[:sp1], rest[:sp2]
	version := rest[sp2+1:]
	switch string(version) {
	case proto11:
		h.proto = proto11
	case proto10:
		h.proto = proto10
	default:
		if len(version) > 5 && string(version[:5]) == "HTTP/" && isVersionNumber(version[5:]) {
			return newError(505, "unsupported HTTP version")
		}
		return newError(400, "malformed HTTP version in request line")
	}
	if len(h.target) > MaxTarget {
		return newError(414, "request-target over 4 KiB")
	}
	return h.parseTarget()
}

func isVersionNumber(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return len(b) > 0
}

// parseTarget splits the target into path and query (RFC 9112 section 3.2).
func (h *head) parseTarget() *Error {
	t := h.target
	if len(t) == 0 {
		return newError(400, "empty request-target")
	}
	for _, c := range t {
		if c <= ' ' || c == 0x7f || c == '#' {
			return newError(400, "invalid character in request-target")
		}
	}
	h.queryAt = -1
	switch {
	case t[0] == '/':
		h.pathAt = 0
	case len(t) == 1 && t[0] == '*':
		if string(h.method) != "OPTIONS" {
			return newError(400, "asterisk-form target without OPTIONS")
		}
		h.asterisk = true
		return nil
	case len(t) > 7 && asciiEqualFold(t[:7], "http://"):
		auth := t[7:]
		end := len(auth)
		if j := bytes.IndexAny(auth, "/?"); j >= 0 {
			end = j
		}
		if end == 0 || bytes.IndexByte(auth[:end], '@') >= 0 {
			return newError(400, "bad authority in absolute-form target")
		}
		host, ok := splitHost(auth[:end])
		if !ok {
			return newError(400, "bad authority in absolute-form target")
		}
		h.absHost = host
		h.pathAt = 7 + end
		if h.pathAt == len(t) || t[h.pathAt] == '?' {
			h.pathRoot = true
		}
	default:
		return newError(400, "request-target is not origin-form, http://host/... or * with OPTIONS")
	}
	h.pathEnd = len(t)
	if j := bytes.IndexByte(t[h.pathAt:], '?'); j >= 0 {
		h.pathEnd = h.pathAt + j
		h.queryAt = h.pathEnd + 1
	}
	p := t[h.pathAt:h.pathEnd]
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if i+2 >= len(p) || unhex(p[i+1]) < 0 || unhex(p[i+2]) < 0 {
			return newError(400, "bad percent-encoding in path")
		}
		if c := byte(unhex(p[i+1])<<4 | unhex(p[i+2])); c < 0x20 || c == 0x7f {
			return newError(400, "control character in decoded path")
		}
		h.pathPct++
		i += 2
	}
	return nil
}

// field parses one header line and keeps the fields Request has.
func (h *head) field(line []byte) *Error {
	if line[0] == ' ' || line[0] == '\t' {
		return newError(400, "obsolete line folding in header")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return newError(400, "malformed header line")
	}
	name, v := line[:colon], line[colon+1:]
	for _, c := range v {
		if c != '\t' && (c < 0x20 || c == 0x7f) {
			return newError(400, "control character in header value")
		}
	}
	v = trimOWS(v)
	switch len(name) {
	case 4:
		if asciiEqualFold(name, "host") {
			host, ok := splitHost(v)
			if !ok {
				return newError(400, "bad Host header")
			}
			return setOnce(&h.host, &h.hostSeen, host, "repeated Host header")
		}
	case 6:
		if asciiEqualFold(name, "origin") {
			return setOnce(&h.origin, &h.originSeen, v, "repeated Origin header")
		}
	case 7:
		if asciiEqualFold(name, "upgrade") {
			return addList(&h.upgrade, &h.nUpgrade, v, "too many Upgrade headers")
		}
	case 10:
		if asciiEqualFold(name, "connection") {
			return addList(&h.connection, &h.nConn, v, "too many Connection headers")
		}
	case 14:
		if asciiEqualFold(name, "content-length") {
			n, ok := parseLength(v)
			if !ok || h.clSeen && n != h.cl {
				return newError(400, "bad Content-Length header")
			}
			h.cl, h.clSeen = n, true
		}
	case 17:
		if asciiEqualFold(name, "sec-websocket-key") {
			return setOnce(&h.key, &h.keySeen, v, "repeated Sec-WebSocket-Key header")
		} else if asciiEqualFold(name, "transfer-encoding") {
			h.te = true
		}
	case 21:
		if asciiEqualFold(name, "sec-websocket-version") {
			return setOnce(&h.version, &h.verSeen, v, "repeated Sec-WebSocket-Version header")
		}
	}
	return nil
}

// setOnce keeps the value of a field that may appear once.
func setOnce(dst *[]byte, seen *bool, v []byte, reason string) *Error {
	if *seen {
		return newError(400, reason)
	}
	*dst, *seen = v, true
	return nil
}

func addList(list *[maxListFields][]byte, n *int, v []byte, reason string) *Error {
	if len(v) == 0 {
		return nil
	}
	if *n == len(list) {
		return newError(400, reason)
	}
	list[*n] = v
	*n++
	return nil
}

// parseLength parses a Content-Length value: digits only; huge values
// saturate, which is as refused as any other value > 0.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<40 {
			n = n*10 + int64(c-'0')
		}
	}
	return n, true
}

// splitHost returns the host of a Host value or authority (RFC 3986
// host [":" port]) without port and brackets.
func splitHost(v []byte) ([]byte, bool) {
	if len(v) == 0 {
		return v, true
	}
	var host, rest []byte
	if v[0] == '[' {
		end := bytes.IndexByte(v, ']')
		if end < 2 {
			return nil, false
		}
		host, rest = v[1:end], v[end+1:]
		for _, c := range host {
			if unhex(c) < 0 && c != ':' && c != '.' {
				return nil, false
			}
		}
	} else {
		end := bytes.IndexByte(v, ':')
		if end < 0 {
			end = len(v)
		}
		host, rest = v[:end], v[end:]
		if len(host) == 0 {
			return nil, false
		}
		for _, c := range host {
			if !isRegNameChar(c) {
				return nil, false
			}
		}
	}
	if len(rest) > 0 {
		if rest[0] != ':' {
			return nil, false
		}
		for _, c := range rest[1:] {
			if c < '0' || c > '9' {
				return nil, false
			}
		}
	}
	return host, true
}

// isRegNameChar reports an RFC 3986 reg-name character (unreserved or
// sub-delims; percent-encoded hosts are refused).
func isRegNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=", c) >= 0
}

// request copies what the Request keeps into one string.
func (h *head) request() *Request {
	r := &Request{Proto: h.proto, Method: knownMethod(h.method)}
	host := h.host
	if h.absHost != nil {
		host = h.absHost // RFC 9112 section 3.2.2: the target's authority wins
	}
	size := len(h.target) + len(host) + len(h.key) + len(h.version) + len(h.origin) +
		listSize(h.upgrade[:h.nUpgrade]) + listSize(h.connection[:h.nConn])
	if r.Method == "" {
		size += len(h.method)
	}
	if h.pathPct > 0 {
		size += h.pathEnd - h.pathAt - 2*h.pathPct
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(h.target)
	eTarget := sb.Len()
	if h.pathPct > 0 {
		p := h.target[h.pathAt:h.pathEnd]
		for i := 0; i < len(p); i++ {
			if p[i] == '%' {
				sb.WriteByte(byte(unhex(p[i+1])<<4 | unhex(p[i+2])))
				i += 2
			} else {
				sb.WriteByte(p[i])
			}
		}
	}
	ePath := sb.Len()
	for _, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		sb.WriteByte(c)
	}
	eHost := sb.Len()
	writeList(&sb, h.upgrade[:h.nUpgrade])
	eUpgrade := sb.Len()
	writeList(&sb, h.connection[:h.nConn])
	eConn := sb.Len()
	sb.Write(h.key)
	eKey := sb.Len()
	sb.Write(h.version)
	eVersion := sb.Len()
	sb.Write(h.origin)
	eOrigin := sb.Len()
	if r.Method == "" {
		sb.Write(h.method)
	}
	s := sb.String()

	r.Target = s[:eTarget]
	switch {
	case h.asterisk:
	case h.pathPct > 0:
		r.Path = s[eTarget:ePath]
	case h.pathRoot:
		r.Path = "/"
	default:
		r.Path = r.Target[h.pathAt:h.pathEnd]
	}
	if h.queryAt >= 0 {
		r.RawQuery = r.Target[h.queryAt:]
	}
	r.Host = s[ePath:eHost]
	r.Upgrade = s[eHost:eUpgrade]
	r.Connection = s[eUpgrade:eConn]
	r.WebSocketKey = s[eConn:eKey]
	r.WebSocketVersion = s[eKey:eVersion]
	r.Origin = s[eVersion:eOrigin]
	if r.Method == "" {
		r.Method = s[eOrigin:]
	}
	return r
}

func listSize(list [][]byte) int {
	n := 0
	for i, v := range list {
		if i > 0 {
			n += 2
		}
		n += len(v)
	}
	return n
}

func writeList(sb *strings.Builder, list [][]byte) {
	for i, v := range list {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.Write(v)
	}
}

// knownMethod returns the common methods without allocating, "" otherwise.
func knownMethod(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	}
	return ""
}

// isToken reports whether b is an RFC 9110 token (1*tchar).
func isToken(b []byte) bool {
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return len(b) > 0
}

func isTchar(c byte) bool { return tchar[c] }

// tchar is the RFC 9110 token character set.
var tchar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
