package httpflv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestCheckWebSocket(t *testing.T) {
	ok := func() *Request {
		_, r, err := ParseRequest([]byte(chromeWS), 0)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name   string
		edit   func(r *Request)
		status int
	}{
		{"chrome", func(r *Request) {}, 0},
		{"tokens in lists", func(r *Request) { r.Upgrade, r.Connection = "h2c,  WebSocket ", "keep-alive,UPGRADE" }, 0},
		{"no upgrade", func(r *Request) { r.Upgrade = "" }, 400},
		{"upgrade with version", func(r *Request) { r.Upgrade = "websocket/13" }, 400},
		{"post", func(r *Request) { r.Method = "POST" }, 400},
		{"http/1.0", func(r *Request) { r.Proto = "HTTP/1.0" }, 400},
		{"no connection upgrade", func(r *Request) { r.Connection = "keep-alive" }, 400},
		{"connection substring", func(r *Request) { r.Connection = "upgrades" }, 400},
		{"version 8", func(r *Request) { r.WebSocketVersion = "8" }, 426},
		{"no version", func(r *Request) { r.WebSocketVersion = "" }, 426},
		{"no key", func(r *Request) { r.WebSocketKey = "" }, 400},
		{"key of 15 bytes", func(r *Request) { r.WebSocketKey = "dGhlIHNhbXBsZSBub25jZQ" }, 400},
		{"key not base64", func(r *Request) { r.WebSocketKey = "dGhlIHNhbXBsZSBub25jZ!==" }, 400},
		{"key of 17 bytes", func(r *Request) { r.WebSocketKey = "dGhlIHNhbXBsZSBub25jZQAB" }, 400},
	}
	for _, tt := range tests {
		r := ok()
		tt.edit(r)
		err := CheckWebSocket(r)
		if IsWebSocket(r) != (err == nil) {
			t.Errorf("%s: IsWebSocket disagrees with CheckWebSocket", tt.name)
		}
		var e *Error
		switch {
		case tt.status == 0 && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.status != 0 && (!errors.As(err, &e) || e.Status != tt.status):
			t.Errorf("%s: %v, want status %d", tt.name, err, tt.status)
		}
	}
	if IsWebSocket(nil) {
		t.Error("nil request is a WebSocket")
	}
	_, r, _ := ParseRequest([]byte(firefoxWS), 0)
	if !IsWebSocket(r) {
		t.Errorf("firefox: %v", CheckWebSocket(r))
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("AcceptKey: %q", got)
	}
	if got := AcceptKey(strings.Repeat("k", 100)); len(got) != 28 {
		t.Errorf("long key: %q", got)
	}
}

func TestAppendFrameHeader(t *testing.T) {
	tests := []struct {
		op   byte
		n    int
		want []byte
	}{
		{OpBinary, 0, []byte{0x82, 0}},
		{OpBinary, 125, []byte{0x82, 125}},
		{OpBinary, 126, []byte{0x82, 126, 0, 126}},
		{OpBinary, 65535, []byte{0x82, 126, 0xff, 0xff}},
		{OpBinary, 65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{OpText, 1 << 40, []byte{0x81, 127, 0, 0, 1, 0, 0, 0, 0, 0}},
		{OpClose, -5, []byte{0x88, 0}},
		{0xF2, 1, []byte{0x82, 1}},
	}
	for _, tt := range tests {
		got := AppendFrameHeader([]byte{9}, tt.op, tt.n)
		if !bytes.Equal(got[1:], tt.want) || got[0] != 9 {
			t.Errorf("%x %d: % x, want % x", tt.op, tt.n, got[1:], tt.want)
		}
		if FrameHeaderSize(tt.n) != len(tt.want) {
			t.Errorf("FrameHeaderSize(%d) = %d, want %d", tt.n, FrameHeaderSize(tt.n), len(tt.want))
		}
	}
}

// clientFrame builds a masked client frame; b0 is FIN/RSV/opcode.
func clientFrame(b0 byte, payload []byte, key [4]byte) []byte {
	f := AppendFrameHeader(nil, 0, len(payload))
	f[0] = b0
	f[1] |= 0x80
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

func TestParseFrame(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	big := bytes.Repeat([]byte("0123456789"), 7000) // 70,000 bytes: 64-bit length
	closeMsg := binary.BigEndian.AppendUint16(nil, 1000)
	closeMsg = append(closeMsg, "bye"...)
	tests := []struct {
		name    string
		frame   []byte
		max     int
		op      byte
		fin     bool
		payload []byte
		code    uint16 // 0: no error
	}{
		// RFC 6455 section 5.7: a masked "Hello".
		{"rfc hello", []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, 1024, OpText, true, []byte("Hello"), 0},
		{"empty binary", clientFrame(0x82, nil, key), 0, OpBinary, true, []byte{}, 0},
		{"16-bit", clientFrame(0x82, big[:300], key), 1024, OpBinary, true, big[:300], 0},
		{"64-bit", clientFrame(0x82, big, key), 1 << 20, OpBinary, true, big, 0},
		{"fragment", clientFrame(0x02, big[:10], key), 1024, OpBinary, false, big[:10], 0},
		{"continuation", clientFrame(0x80, big[:10], key), 1024, OpContinuation, true, big[:10], 0},
		{"ping", clientFrame(0x89, []byte("abc"), key), 0, OpPing, true, []byte("abc"), 0},
		{"pong 125", clientFrame(0x8A, big[:125], key), 0, OpPong, true, big[:125], 0},
		{"close", clientFrame(0x88, closeMsg, key), 0, OpClose, true, closeMsg, 0},
		{"close empty", clientFrame(0x88, nil, key), 0, OpClose, true, []byte{}, 0},
		{"close 4999", clientFrame(0x88, []byte{0x13, 0x87}, key), 0, OpClose, true, []byte{0x13, 0x87}, 0},
		{"too big", clientFrame(0x82, big[:300], key)[:4], 299, 0, false, nil, 1009},
		{"too big 64-bit", []byte{0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0}, 1 << 30, 0, false, nil, 1009},
		{"max negative", clientFrame(0x82, []byte{1}, key), -1, 0, false, nil, 1009},
		{"unmasked", []byte{0x82, 0x01, 0x00}, 1024, 0, false, nil, 1002},
		{"rsv1", clientFrame(0xC2, nil, key), 1024, 0, false, nil, 1002},
		{"rsv3", clientFrame(0x92, nil, key), 1024, 0, false, nil, 1002},
		{"opcode 3", clientFrame(0x83, nil, key), 1024, 0, false, nil, 1002},
		{"opcode 11", clientFrame(0x8B, nil, key), 1024, 0, false, nil, 1002},
		{"fragmented ping", clientFrame(0x09, nil, key), 1024, 0, false, nil, 1002},
		{"ping 126", clientFrame(0x89, big[:126], key), 1 << 20, 0, false, nil, 1002},
		{"16-bit not minimal", []byte{0x82, 0xfe, 0, 5}, 1024, 0, false, nil, 1002},
		{"64-bit not minimal", []byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 1024, 0, false, nil, 1002},
		{"64-bit top bit", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, 1 << 62, 0, false, nil, 1002},
		{"close 1 byte", clientFrame(0x88, []byte{3}, key), 0, 0, false, nil, 1002},
		{"close 1005", clientFrame(0x88, []byte{0x03, 0xed}, key), 0, 0, false, nil, 1002},
		{"close 999", clientFrame(0x88, []byte{0x03, 0xe7}, key), 0, 0, false, nil, 1002},
		{"close 5000", clientFrame(0x88, []byte{0x13, 0x88}, key), 0, 0, false, nil, 1002},
		{"close bad utf-8", clientFrame(0x88, []byte{0x03, 0xe8, 0xff}, key), 0, 0, false, nil, 1007},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := append(bytes.Clone(tt.frame), "next"...)
			n, f, err := ParseFrame(buf, tt.max)
			if tt.code != 0 {
				var ce *CloseError
				if !errors.As(err, &ce) || ce.Code != tt.code || n != 0 {
					t.Fatalf("n %d, err %v: want close code %d", n, err, tt.code)
				}
				if len(AppendClose(nil, ce.Code, ce.Reason)) > 2+MaxControlPayload {
					t.Errorf("reason %q does not fit a close frame", ce.Reason)
				}
				return
			}
			if err != nil || n != len(tt.frame) {
				t.Fatalf("n %d (want %d), err %v", n, len(tt.frame), err)
			}
			if f.Opcode != tt.op || f.Fin != tt.fin || !bytes.Equal(f.Payload, tt.payload) {
				t.Errorf("frame %x fin %v payload %.40q, want %x %v %.40q", f.Opcode, f.Fin, f.Payload, tt.op, tt.fin, tt.payload)
			}
			// Every proper prefix asks for more and leaves the bytes alone.
			for _, k := range []int{0, 1, 2, 3, len(tt.frame) / 2, len(tt.frame) - 1} {
				if k < 0 || k >= len(tt.frame) {
					continue
				}
				p := bytes.Clone(tt.frame[:k])
				if n, _, err := ParseFrame(p, tt.max); n != 0 || err != nil || !bytes.Equal(p, tt.frame[:k]) {
					t.Errorf("prefix %d: n %d, err %v, modified %v", k, n, err, !bytes.Equal(p, tt.frame[:k]))
				}
			}
		})
	}
}

func TestCloseStatus(t *testing.T) {
	f := Frame{Opcode: OpClose, Payload: []byte{0x03, 0xe9, 'x'}}
	if code, reason := f.CloseStatus(); code != 1001 || string(reason) != "x" {
		t.Errorf("%d %q", code, reason)
	}
	if code, reason := (Frame{Opcode: OpClose}).CloseStatus(); code != CloseNoStatus || reason != nil {
		t.Errorf("empty: %d %q", code, reason)
	}
}

func TestAppendCloseAndPong(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes: cut at a rune start
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"close", AppendClose(nil, 1000, "bye"), []byte{0x88, 5, 0x03, 0xe8, 'b', 'y', 'e'}},
		{"close no code", AppendClose(nil, 0, "ignored"), []byte{0x88, 0}},
		{"close long", AppendClose(nil, 1009, long), append([]byte{0x88, 124, 0x03, 0xf1}, long[:122]...)},
		{"pong", AppendPong(nil, []byte("abc")), []byte{0x8A, 3, 'a', 'b', 'c'}},
		{"pong long", AppendPong(nil, []byte(strings.Repeat("p", 200))), append([]byte{0x8A, 125}, strings.Repeat("p", 125)...)},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s: % x\nwant % x", tt.name, tt.got, tt.want)
		}
	}
	// A server frame read back with the mask bit set parses as sent.
	f := AppendClose(nil, 1009, long)
	masked := clientFrame(f[0], f[2:], [4]byte{})
	if _, fr, err := ParseFrame(masked, 0); err != nil || fr.Opcode != OpClose {
		t.Errorf("close frame does not parse: %v", err)
	}
}

func TestParseFrameAllocs(t *testing.T) {
	frame := clientFrame(0x82, bytes.Repeat([]byte{7}, 1000), [4]byte{1, 2, 3, 4})
	if a := testing.AllocsPerRun(100, func() { ParseFrame(frame, 4096) }); a != 0 {
		t.Errorf("%v allocations, want 0", a)
	}
	dst := make([]byte, 0, 16)
	if a := testing.AllocsPerRun(100, func() { AppendFrameHeader(dst[:0], OpBinary, 70000) }); a != 0 {
		t.Errorf("AppendFrameHeader: %v allocations, want 0", a)
	}
}
