package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rtmpedge/rtmpedge/flv"
	"github.com/rtmpedge/rtmpedge/httpflv"
)

// FLV over HTTP (http://host:port/app/stream.flv) and over WebSocket
// (ws://...): the players send one request, read the response head, then
// parse the FLV body in place (through WebSocket frames for ws://) and feed
// every tag to the same accounting as RTMP messages.

// maxResponseHead is the most bytes of response head a player reads.
const maxResponseHead = 8 << 10

// isFLVURL reports whether raw is played over HTTP-FLV or WebSocket-FLV.
func isFLVURL(raw string) bool {
	return strings.HasPrefix(raw, "http://") || strings.HasPrefix(raw, "ws://")
}

// flvTarget splits an http:// or ws:// URL into the address to dial, the
// Host header, the request target (path and query) and whether it is a
// WebSocket.
func flvTarget(raw string) (addr, host, target string, ws bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", false, fmt.Errorf("url %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "ws") || u.Host == "" {
		return "", "", "", false, fmt.Errorf("url %q: want http://host/app/stream.flv or ws://host/app/stream.flv", raw)
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return addr, u.Host, u.RequestURI(), u.Scheme == "ws", nil
}

// flvRequest is the request a player sends; key is the WebSocket key
// (empty: plain HTTP-FLV).
func flvRequest(host, target, key string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rtmpbench\r\nAccept: */*\r\n", target, host)
	if key != "" {
		fmt.Fprintf(&b, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// responseHead is a parsed response status line and the fields a player
// checks.
type responseHead struct {
	Status int
	Reason string
	fields []string // "name: value" lines
}

// Field returns the value of the first field called name (any case).
func (h *responseHead) Field(name string) string {
	for _, f := range h.fields {
		n, v, ok := strings.Cut(f, ":")
		if ok && strings.EqualFold(strings.TrimSpace(n), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// parseResponseHead parses the head at the start of buf: the bytes it took
// (0: incomplete) and the head.
func parseResponseHead(buf []byte) (int, *responseHead, error) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) >= maxResponseHead {
			return 0, nil, errors.New("response head over 8 KiB")
		}
		return 0, nil, nil
	}
	lines := strings.Split(string(buf[:end]), "\r\n")
	proto, rest, _ := strings.Cut(lines[0], " ")
	code, reason, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || len(code) != 3 {
		return 0, nil, fmt.Errorf("bad status line %q", lines[0])
	}
	return end + 4, &responseHead{Status: status, Reason: reason, fields: lines[1:]}, nil
}

// playFLV plays p.URL over p.conn: request, response head, then the body.
func (p *Player) playFLV(buf []byte) error {
	conn := p.conn
	_, host, target, ws, err := flvTarget(p.URL)
	if err != nil {
		return err
	}
	key := ""
	if ws {
		var k [16]byte
		_, _ = rand.Read(k[:])
		key = base64.StdEncoding.EncodeToString(k[:])
	}
	if _, err := conn.Write(flvRequest(host, target, key)); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	p.playSent = time.Now()
	sk := &flvSkimmer{}
	handle := func(m *skimMsg) error { p.message(m); return nil }
	var body func([]byte) error = func(b []byte) error { return sk.feed(b, handle) }
	if ws {
		wr := &wsReader{}
		onControl := func(op byte, payload []byte) error {
			switch op {
			case httpflv.OpClose:
				return errors.New("server closed the WebSocket")
			case httpflv.OpPing:
				_, err := conn.Write(appendMaskedPong(nil, payload))
				return err
			}
			return nil
		}
		body = func(b []byte) error { return wr.feed(b, func(d []byte) error { return sk.feed(d, handle) }, onControl) }
	}
	chunked := &chunkedReader{}
	got := 0 // head bytes in buf
	for {
		n, err := conn.Read(buf[got:])
		p.received(n)
		if n > 0 {
			data := buf[got : got+n]
			if p.phase != phasePlaying {
				got += n
				used, h, herr := parseResponseHead(buf[:got])
				if herr != nil {
					return herr
				}
				data = nil
				if h != nil {
					if err := p.checkResponse(h, ws, key); err != nil {
						return err
					}
					p.Handshake.Store(int64(time.Since(p.start)))
					p.phase = phasePlaying
					p.Started.Store(true)
					p.State.Store(StatePlaying)
					data, got = buf[used:got], 0
					if !ws && httpflv.HasToken(h.Field("Transfer-Encoding"), "chunked") {
						flvBody := body
						body = func(b []byte) error { return chunked.feed(b, flvBody) }
					}
				}
			}
			if err := body(data); err != nil {
				return err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("server closed the connection")
			}
			return err
		}
	}
}

// checkResponse accepts 200 (HTTP-FLV) or 101 with the right accept key
// (WebSocket); any other status refuses the play, like an error onStatus.
func (p *Player) checkResponse(h *responseHead, ws bool, key string) error {
	want := 200
	if ws {
		want = 101
	}
	if h.Status != want {
		p.RefusedAfter.Store(max(1, int64(time.Since(p.playSent))))
		return &StatusError{Code: "HTTP " + strconv.Itoa(h.Status), Description: h.Reason}
	}
	if ws && h.Field("Sec-WebSocket-Accept") != httpflv.AcceptKey(key) {
		return errors.New("bad Sec-WebSocket-Accept")
	}
	return nil
}

// appendMaskedPong appends a client pong frame (masked with a zero key:
// clients must mask, and any key will do) echoing payload.
func appendMaskedPong(dst, payload []byte) []byte {
	dst = append(dst, 0x80|httpflv.OpPong, 0x80|byte(len(payload)), 0, 0, 0, 0)
	return append(dst, payload...)
}

// flvSkimmer parses an FLV byte stream without copying tag data: the file
// header, then tags (header, data, PreviousTagSize). It consumes every byte
// it is given; a tag header split across calls is kept in a small array.
type flvSkimmer struct {
	state int
	hdr   [flv.TagHeaderSize]byte
	hdrN  int
	skip  int // bytes still to skip (the rest of the file header, a trailer)
	left  int // data bytes of the current tag still to come
	msg   skimMsg
	head  [headBytes]byte
	headN int
}

const (
	flvFileHeader = iota // collecting the 9-byte file header
	flvTagHeader         // collecting a tag header
	flvTagData           // inside a tag's data
)

// feed parses b and calls fn for each complete tag (its Head is valid only
// during the call).
func (s *flvSkimmer) feed(b []byte, fn func(*skimMsg) error) error {
	for len(b) > 0 {
		if s.skip > 0 {
			k := min(s.skip, len(b))
			s.skip -= k
			b = b[k:]
			continue
		}
		switch s.state {
		case flvFileHeader, flvTagHeader:
			size := flv.TagHeaderSize
			if s.state == flvFileHeader {
				size = 9
			}
			k := copy(s.hdr[s.hdrN:size], b)
			s.hdrN += k
			b = b[k:]
			if s.hdrN < size {
				return nil
			}
			s.hdrN = 0
			if s.state == flvFileHeader {
				if string(s.hdr[:3]) != "FLV" {
					return fmt.Errorf("not an FLV stream (%q)", s.hdr[:3])
				}
				off := int(binary.BigEndian.Uint32(s.hdr[5:9]))
				if off < 9 || off > 1<<16 {
					return fmt.Errorf("FLV header size %d", off)
				}
				s.skip = off - 9 + flv.TrailerSize // PreviousTagSize0
				s.state = flvTagHeader
				continue
			}
			h := s.hdr[:]
			s.msg = skimMsg{
				TypeID:    h[0] & 0x1f,
				Length:    uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3]),
				Timestamp: uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]),
			}
			s.left, s.headN, s.state = int(s.msg.Length), 0, flvTagData
		case flvTagData:
			k := min(s.left, len(b))
			if s.headN < headBytes {
				s.headN += copy(s.head[s.headN:], b[:k])
			}
			s.left -= k
			b = b[k:]
		}
		if s.state == flvTagData && s.left == 0 {
			s.msg.Head = s.head[:s.headN]
			s.state, s.skip = flvTagHeader, flv.TrailerSize
			if err := fn(&s.msg); err != nil {
				return err
			}
		}
	}
	return nil
}

// wsReader takes the FLV bytes out of server-to-client WebSocket frames
// (unmasked) without copying them; control frame payloads (at most 125
// bytes) are gathered whole. It consumes every byte it is given.
type wsReader struct {
	hdr  [10]byte
	hdrN int
	left int // payload bytes of the current frame still to come
	op   byte
	ctl  []byte
}

// feed calls data with the payload pieces of binary (and continuation)
// frames and control with each whole control frame.
func (w *wsReader) feed(b []byte, data func([]byte) error, control func(op byte, payload []byte) error) error {
	for len(b) > 0 {
		if w.left == 0 && w.op == 0 {
			need := 2
			if w.hdrN >= 2 {
				switch w.hdr[1] & 0x7f {
				case 126:
					need = 4
				case 127:
					need = 10
				}
			}
			k := copy(w.hdr[w.hdrN:need], b)
			w.hdrN += k
			b = b[k:]
			if w.hdrN < need {
				continue // more of the header (a 2-byte start may say it is longer)
			}
			if need == 2 && w.hdr[1]&0x7f >= 126 {
				continue
			}
			if w.hdr[1]&0x80 != 0 {
				return errors.New("masked frame from the server")
			}
			n := uint64(w.hdr[1] & 0x7f)
			switch need {
			case 4:
				n = uint64(binary.BigEndian.Uint16(w.hdr[2:]))
			case 10:
				n = binary.BigEndian.Uint64(w.hdr[2:])
			}
			if n > maxSkimSize {
				return fmt.Errorf("WebSocket frame of %d bytes", n)
			}
			w.op, w.left, w.hdrN = w.hdr[0]&0x0f|0x80, int(n), 0 // 0x80: a frame is open
			w.ctl = w.ctl[:0]
			if op := w.op & 0x0f; op == httpflv.OpText || op > httpflv.OpPong || op > httpflv.OpBinary && op < httpflv.OpClose {
				return fmt.Errorf("unexpected WebSocket opcode %d", op)
			}
		} else {
			k := min(w.left, len(b))
			if w.op&0x0f >= httpflv.OpClose {
				w.ctl = append(w.ctl, b[:k]...)
			} else if err := data(b[:k]); err != nil {
				return err
			}
			w.left -= k
			b = b[k:]
		}
		if w.op != 0 && w.left == 0 {
			op := w.op & 0x0f
			w.op = 0
			if op >= httpflv.OpClose {
				if err := control(op, w.ctl); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// chunkedReader takes the data out of a chunked HTTP body (RFC 9112
// section 7.1) without copying it; a chunk-size line split across calls is
// kept (up to 64 bytes; extensions past that are skipped).
type chunkedReader struct {
	line  []byte
	left  int // data bytes of the current chunk still to come
	crlf  int // bytes of the CRLF after the data still to skip
	ended bool
}

func (c *chunkedReader) feed(b []byte, data func([]byte) error) error {
	for len(b) > 0 {
		switch {
		case c.ended:
			return nil // trailers: the body ended
		case c.crlf > 0:
			k := min(c.crlf, len(b))
			c.crlf -= k
			b = b[k:]
		case c.left > 0:
			k := min(c.left, len(b))
			if err := data(b[:k]); err != nil {
				return err
			}
			c.left -= k
			b = b[k:]
			if c.left == 0 {
				c.crlf = 2
			}
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(c.line) < 64 {
					c.line = append(c.line, b[:min(len(b), 64-len(c.line))]...)
				}
				return nil
			}
			if len(c.line) < 64 {
				c.line = append(c.line, b[:min(i, 64-len(c.line))]...)
			}
			b = b[i+1:]
			hexSize, _, _ := strings.Cut(strings.TrimRight(string(c.line), "\r"), ";")
			c.line = c.line[:0]
			n, err := strconv.ParseUint(strings.TrimSpace(hexSize), 16, 31)
			if err != nil {
				return fmt.Errorf("bad chunk size %q", hexSize)
			}
			c.left, c.ended = int(n), n == 0
		}
	}
	return nil
}
