package httpflv

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// WebSocket close codes (RFC 6455 section 7.4.1) the server sends.
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupportedData uint16 = 1003
	CloseNoStatus        uint16 = 1005 // received only: a close frame without a code
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseMessageTooBig   uint16 = 1009
	CloseInternalError   uint16 = 1011
)

// MaxControlPayload is the largest payload of a control frame.
const MaxControlPayload = 125

// wsGUID is the GUID of RFC 6455 section 1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// IsWebSocket reports whether r is a valid WebSocket opening handshake
// (RFC 6455 section 4.2.1): see CheckWebSocket.
func IsWebSocket(r *Request) bool { return CheckWebSocket(r) == nil }

// CheckWebSocket returns nil if r is a valid WebSocket opening handshake:
// GET, HTTP/1.1, Upgrade with the token "websocket" and Connection with the
// token "upgrade" (case-insensitively), Sec-WebSocket-Version 13 and a
// Sec-WebSocket-Key that is the base64 of 16 bytes. Otherwise it returns an
// *Error: 426 for another version (answer with "Sec-WebSocket-Version: 13",
// RFC 6455 section 4.4), 400 for anything else. A request without
// "websocket" in Upgrade is not a WebSocket request at all: test that with
// HasToken(r.Upgrade, "websocket") to tell a plain HTTP-FLV request from a
// bad handshake.
func CheckWebSocket(r *Request) error {
	switch {
	case r == nil || !HasToken(r.Upgrade, "websocket"):
		return newError(400, "not a WebSocket upgrade")
	case r.Method != "GET":
		return newError(400, "WebSocket upgrade with a method other than GET")
	case r.Proto != proto11:
		return newError(400, "WebSocket upgrade over HTTP/1.0")
	case !HasToken(r.Connection, "upgrade"):
		return newError(400, "WebSocket upgrade without Connection: Upgrade")
	case r.WebSocketVersion != "13":
		return newError(426, "Sec-WebSocket-Version is not 13")
	case !validKey(r.WebSocketKey):
		return newError(400, "Sec-WebSocket-Key is not the base64 of 16 bytes")
	}
	return nil
}

func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var b [18]byte
	n, err := base64.StdEncoding.Decode(b[:], []byte(key))
	return err == nil && n == 16
}

// HasToken reports whether the comma-separated list holds token, compared
// case-insensitively (as in Connection and Upgrade values).
func HasToken(list, token string) bool {
	for list != "" {
		var elem string
		elem, list = list, ""
		for i := 0; i < len(elem); i++ {
			if elem[i] == ',' {
				elem, list = elem[:i], elem[i+1:]
				break
			}
		}
		for elem != "" && (elem[0] == ' ' || elem[0] == '\t') {
			elem = elem[1:]
		}
		for elem != "" && (elem[len(elem)-1] == ' ' || elem[len(elem)-1] == '\t') {
			elem = elem[:len(elem)-1]
		}
		if asciiEqualFold(elem, token) {
			return true
		}
	}
	return false
}

// asciiEqualFold reports whether a and b are equal ignoring ASCII case.
func asciiEqualFold[T ~string | ~[]byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// AcceptKey returns the Sec-WebSocket-Accept value for a
// Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
func AcceptKey(key string) string {
	var b [24 + len(wsGUID)]byte
	s := append(append(b[:0], key...), wsGUID...)
	sum := sha1.Sum(s)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// FrameHeaderSize returns the size of a server frame header (unmasked) for
// a payload of payloadLen bytes: 2, 4 or 10.
func FrameHeaderSize(payloadLen int) int {
	switch {
	case payloadLen < 126:
		return 2
	case payloadLen <= math.MaxUint16:
		return 4
	}
	return 10
}

// AppendFrameHeader appends the header of a server-to-client frame: FIN
// set, the opcode (low 4 bits), no mask, and payloadLen (a negative length
// is written as 0) in the shortest of the 7, 16 and 64-bit forms. The
// payload follows, written by the caller: one header in front of shared FLV
// bytes makes a binary frame without copying them.
func AppendFrameHeader(dst []byte, opcode byte, payloadLen int) []byte {
	b0 := 0x80 | opcode&0x0F
	switch n := max(payloadLen, 0); {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= math.MaxUint16:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// AppendClose appends a close frame with code and reason (cut to fit the
// 125-byte control payload, at a UTF-8 boundary). Code 0 sends a close
// frame without a code (do not send 1005, 1006 or 1015, RFC 6455 section
// 7.4.1).
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if code == 0 {
		return AppendFrameHeader(dst, OpClose, 0)
	}
	if len(reason) > MaxControlPayload-2 {
		cut := MaxControlPayload - 2
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = AppendFrameHeader(dst, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}

// AppendPong appends a pong frame echoing payload (a ping's payload; cut to
// 125 bytes).
func AppendPong(dst, payload []byte) []byte {
	if len(payload) > MaxControlPayload {
		payload = payload[:MaxControlPayload]
	}
	dst = AppendFrameHeader(dst, OpPong, len(payload))
	return append(dst, payload...)
}

// Frame is one client-to-server WebSocket frame. Payload is unmasked and
// aliases the buffer given to ParseFrame: it is valid only as long as that
// buffer is (with gnet, until the next read).
type Frame struct {
	Opcode  byte
	Fin     bool
	Payload []byte
}

// CloseStatus returns the code and reason of a close frame: CloseNoStatus
// (1005) and no reason if the frame has no code.
func (f Frame) CloseStatus() (code uint16, reason []byte) {
	if len(f.Payload) < 2 {
		return CloseNoStatus, nil
	}
	return binary.BigEndian.Uint16(f.Payload), f.Payload[2:]
}

// ParseFrame parses the client-to-server frame at the start of buf and
// unmasks its payload in place. It returns the frame's length and the frame
// when buf holds all of it; 0, Frame{}, nil when it does not yet (call again
// with more bytes; nothing was changed); or a *CloseError with the code to
// close with:
//
//   - 1002: reserved bits set (no extension is negotiated), an unknown
//     opcode, no mask, a length not in its shortest form or with the top
//     bit set, a fragmented or over-125-byte control frame, a close payload
//     of 1 byte or with a code that may not be sent;
//   - 1007: a close reason that is not UTF-8;
//   - 1009: a data frame longer than maxPayload (checked as soon as the
//     length is in, before waiting for the payload); control frames are
//     always allowed their 125 bytes.
//
// Fragmentation order (continuation frames, interleaving) and the UTF-8 of
// text messages are the caller's to check: a server sending FLV expects no
// data frames at all.
func ParseFrame(buf []byte, maxPayload int) (n int, f Frame, err error) {
	if len(buf) < 2 {
		return 0, Frame{}, nil
	}
	b0, b1 := buf[0], buf[1]
	if b0&0x70 != 0 {
		return 0, Frame{}, closeError(CloseProtocolError, "reserved bits set")
	}
	f.Opcode, f.Fin = b0&0x0F, b0&0x80 != 0
	control := false
	switch f.Opcode {
	case OpContinuation, OpText, OpBinary:
	case OpClose, OpPing, OpPong:
		control = true
	default:
		return 0, Frame{}, closeError(CloseProtocolError, "unknown opcode")
	}
	if b1&0x80 == 0 {
		return 0, Frame{}, closeError(CloseProtocolError, "client frame not masked")
	}
	length, hdr := uint64(b1&0x7F), 2
	switch length {
	case 126:
		if len(buf) < 4 {
			return 0, Frame{}, nil
		}
		length, hdr = uint64(binary.BigEndian.Uint16(buf[2:])), 4
		if length < 126 {
			return 0, Frame{}, closeError(CloseProtocolError, "frame length not in shortest form")
		}
	case 127:
		if len(buf) < 10 {
			return 0, Frame{}, nil
		}
		length, hdr = binary.BigEndian.Uint64(buf[2:]), 10
		if length>>63 != 0 || length <= math.MaxUint16 {
			return 0, Frame{}, closeError(CloseProtocolError, "bad 64-bit frame length")
		}
	}
	if control {
		if !f.Fin {
			return 0, Frame{}, closeError(CloseProtocolError, "fragmented control frame")
		}
		if length > MaxControlPayload {
			return 0, Frame{}, closeError(CloseProtocolError, "control frame over 125 bytes")
		}
	} else if length > uint64(max(maxPayload, 0)) || length > math.MaxInt-14 {
		return 0, Frame{}, closeError(CloseMessageTooBig, "frame over the size limit")
	}
	end := hdr + 4 + int(length)
	if len(buf) < end {
		return 0, Frame{}, nil
	}
	f.Payload = buf[hdr+4 : end : end]
	unmask(f.Payload, buf[hdr:hdr+4])
	if f.Opcode == OpClose {
		if e := checkClose(f.Payload); e != nil {
			return 0, Frame{}, e
		}
	}
	return end, f, nil
}

func closeError(code uint16, reason string) *CloseError {
	return &CloseError{Code: code, Reason: reason}
}

// checkClose validates a close payload (RFC 6455 sections 5.5.1, 7.4).
func checkClose(p []byte) *CloseError {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return closeError(CloseProtocolError, "1-byte close payload")
	}
	switch code := binary.BigEndian.Uint16(p); {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
	default:
		return closeError(CloseProtocolError, "invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return closeError(CloseInvalidPayload, "close reason is not UTF-8")
	}
	return nil
}

// unmask XORs p with the 4-byte masking key, 8 bytes at a time.
func unmask(p, key []byte) {
	k := uint64(binary.LittleEndian.Uint32(key))
	k |= k << 32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}
