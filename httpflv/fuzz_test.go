package httpflv

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseRequest checks that ParseRequest never panics and keeps its
// contract on any input and any limit, and that what it accepts is
// consistent: strict prefixes ask for more, the head alone parses the same,
// and the kept strings hold no control characters.
func FuzzParseRequest(f *testing.F) {
	for i, s := range requestSeeds() {
		f.Add([]byte(s), uint16(i*97))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		maxHead := int(limit)
		eff := maxHead
		if eff <= 0 {
			eff = DefaultMaxHead
		}
		orig := bytes.Clone(data)
		n, req, err := ParseRequest(data, maxHead)
		if !bytes.Equal(data, orig) {
			t.Fatal("ParseRequest modified its input")
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || n != 0 || req != nil {
				t.Fatalf("error %v with n %d, req %v", err, n, req)
			}
			switch e.Status {
			case 400, 414, 431, 501, 505:
			default:
				t.Fatalf("status %d", e.Status)
			}
			if e.Status == 431 && len(data) < eff {
				t.Fatalf("431 with %d bytes, limit %d", len(data), eff)
			}
			return
		}
		if n == 0 {
			if req != nil || len(data) >= eff {
				t.Fatalf("need more with req %v, %d bytes, limit %d", req, len(data), eff)
			}
			return
		}
		if req == nil || n > len(data) || n > eff {
			t.Fatalf("n %d of %d (limit %d), req %v", n, len(data), eff, req)
		}
		checkRequest(t, req)
		n2, req2, err := ParseRequest(data[:n], maxHead)
		if n2 != n || err != nil || *req2 != *req {
			t.Fatalf("head alone: n %d (want %d), err %v, %+v vs %+v", n2, n, err, req2, req)
		}
		for _, k := range []int{n - 1, n / 2} {
			if m, r, err := ParseRequest(data[:k], maxHead); m != 0 || r != nil || err != nil {
				t.Fatalf("prefix %d of %d: n %d, err %v", k, n, m, err)
			}
		}
		if strings.HasSuffix(req.Path, ".flv") {
			app, stream, err := SplitStreamPath(req.Path)
			if err == nil && (app == "" || stream == "" || "/"+app+"/"+stream+".flv" != req.Path) {
				t.Fatalf("SplitStreamPath(%q) = %q, %q", req.Path, app, stream)
			}
		}
	})
}

func checkRequest(t *testing.T, r *Request) {
	t.Helper()
	if r.Proto != "HTTP/1.1" && r.Proto != "HTTP/1.0" {
		t.Fatalf("proto %q", r.Proto)
	}
	if r.Method == "" || r.Target == "" || len(r.Target) > MaxTarget {
		t.Fatalf("method %q, target %q", r.Method, r.Target)
	}
	if (r.Path == "") != (r.Target == "*") || r.Path != "" && r.Path[0] != '/' {
		t.Fatalf("path %q of target %q", r.Path, r.Target)
	}
	if r.Host != strings.ToLower(r.Host) || strings.ContainsAny(r.Host, "[]/@ ") {
		t.Fatalf("host %q", r.Host)
	}
	for _, s := range []string{r.Method, r.Target, r.Path, r.RawQuery, r.Host, r.Upgrade, r.Connection,
		r.WebSocketKey, r.WebSocketVersion, r.Origin} {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
				t.Fatalf("control character in %q", s)
			}
		}
	}
	if IsWebSocket(r) && len(AcceptKey(r.WebSocketKey)) != 28 {
		t.Fatal("bad accept key")
	}
}

// FuzzParseFrame checks that ParseFrame never panics, keeps its contract,
// unmasks exactly, respects the limits, and asks for more on every strict
// prefix of a frame it accepts.
func FuzzParseFrame(f *testing.F) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	seeds := [][]byte{
		{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
		clientFrame(0x82, bytes.Repeat([]byte{1}, 200), key),
		clientFrame(0x82, bytes.Repeat([]byte{2}, 70000), key),
		clientFrame(0x89, []byte("ping"), key),
		clientFrame(0x88, []byte{0x03, 0xe8, 'o', 'k'}, key),
		clientFrame(0x88, []byte{0x03, 0xe8, 0xff}, key),
		append(clientFrame(0x8A, nil, key), clientFrame(0x02, []byte("ab"), key)...),
		{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0x82, 0x05, 'h', 'e', 'l', 'l', 'o'},
		[]byte(chromeWS),
	}
	for i, s := range seeds {
		f.Add(s, int32(1<<(i*3%24)))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxPayload int32) {
		orig := bytes.Clone(data)
		n, fr, err := ParseFrame(data, int(maxPayload))
		if err != nil {
			var ce *CloseError
			if !errors.As(err, &ce) || n != 0 || fr.Payload != nil {
				t.Fatalf("error %v with n %d", err, n)
			}
			if ce.Code != 1002 && ce.Code != 1007 && ce.Code != 1009 {
				t.Fatalf("close code %d", ce.Code)
			}
			if !bytes.Equal(data, orig) && ce.Code == 1009 {
				t.Fatal("buffer modified before the size check")
			}
			return
		}
		if n == 0 {
			if !bytes.Equal(data, orig) || fr.Payload != nil {
				t.Fatal("need more, but the buffer or frame changed")
			}
			return
		}
		if n > len(data) || n < 6 {
			t.Fatalf("n %d of %d", n, len(data))
		}
		plen := len(fr.Payload)
		hdr := n - plen
		if hdr != FrameHeaderSize(plen)+4 || plen > 0 && &fr.Payload[plen-1] != &data[n-1] {
			t.Fatalf("payload of %d bytes is not buf[%d:%d]", plen, hdr, n)
		}
		if fr.Opcode >= 8 && (plen > MaxControlPayload || !fr.Fin) || fr.Opcode < 8 && plen > int(max(maxPayload, 0)) {
			t.Fatalf("opcode %x fin %v with %d bytes, limit %d", fr.Opcode, fr.Fin, plen, maxPayload)
		}
		mask := orig[hdr-4 : hdr]
		for i := range fr.Payload {
			if fr.Payload[i] != orig[hdr+i]^mask[i&3] {
				t.Fatalf("byte %d not unmasked", i)
			}
		}
		if !bytes.Equal(data[:hdr], orig[:hdr]) || !bytes.Equal(data[n:], orig[n:]) {
			t.Fatal("bytes outside the payload changed")
		}
		for _, k := range []int{n - 1, hdr, hdr - 1, 1} {
			if k >= n {
				continue
			}
			p := bytes.Clone(orig[:k])
			if n, _, err := ParseFrame(p, int(maxPayload)); n != 0 || err != nil {
				t.Fatalf("prefix %d: n %d, err %v", k, n, err)
			}
		}
		// A server frame with the same payload reads back the same.
		echo := clientFrame(orig[0], fr.Payload, [4]byte{9, 8, 7, 6})
		if n2, fr2, err := ParseFrame(echo, int(maxPayload)); n2 != len(echo) || err != nil || !bytes.Equal(fr2.Payload, fr.Payload) {
			t.Fatalf("re-framed: n %d, err %v", n2, err)
		}
	})
}
