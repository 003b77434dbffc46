package httpflv

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRequestClients(t *testing.T) {
	tests := []struct {
		name, head string
		want       Request
	}{
		{"chrome", chromeGET, Request{Method: "GET", Target: "/live/test.flv", Path: "/live/test.flv",
			Proto: "HTTP/1.1", Host: "127.0.0.1", Connection: "keep-alive", Origin: "http://localhost:8000"}},
		{"curl", curlGET, Request{Method: "GET", Target: "/live/test.flv?token=abc&vhost=live.example.com",
			Path: "/live/test.flv", RawQuery: "token=abc&vhost=live.example.com", Proto: "HTTP/1.1", Host: "live.example.com"}},
		{"ffmpeg", ffmpegGET, Request{Method: "GET", Target: "/live/test.flv", Path: "/live/test.flv",
			Proto: "HTTP/1.1", Host: "127.0.0.1", Connection: "close"}},
		{"chrome ws", chromeWS, Request{Method: "GET", Target: "/live/test.flv", Path: "/live/test.flv",
			Proto: "HTTP/1.1", Host: "127.0.0.1", Upgrade: "websocket", Connection: "Upgrade",
			WebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==", WebSocketVersion: "13", Origin: "http://localhost:8000"}},
		{"firefox ws", firefoxWS, Request{Method: "GET", Target: "/live/test.flv", Path: "/live/test.flv",
			Proto: "HTTP/1.1", Host: "::1", Upgrade: "websocket", Connection: "keep-alive, Upgrade",
			WebSocketKey: "x3JJHMbDL1EzLkh9GBhXDw==", WebSocketVersion: "13", Origin: "http://localhost:8000"}},
		{"preflight", optionsPreflight, Request{Method: "OPTIONS", Target: "/live/test.flv", Path: "/live/test.flv",
			Proto: "HTTP/1.1", Host: "127.0.0.1", Origin: "http://localhost:8000"}},
		{"head", curlHEAD, Request{Method: "HEAD", Target: "/live/test.flv", Path: "/live/test.flv",
			Proto: "HTTP/1.1", Host: "127.0.0.1"}},
		{"vlc", vlcGET, Request{Method: "GET", Target: "/live/test.flv", Path: "/live/test.flv",
			Proto: "HTTP/1.1", Host: "127.0.0.1"}},
		{"http/1.0 bare LF no host", http10GET, Request{Method: "GET", Target: "/live/test.flv",
			Path: "/live/test.flv", Proto: "HTTP/1.0"}},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", Request{Method: "OPTIONS", Target: "*",
			Proto: "HTTP/1.1", Host: "x"}},
		{"absolute form", "GET http://Example.COM:80/live/x.flv?a=b HTTP/1.1\r\nHost: other\r\n\r\n",
			Request{Method: "GET", Target: "http://Example.COM:80/live/x.flv?a=b", Path: "/live/x.flv",
				RawQuery: "a=b", Proto: "HTTP/1.1", Host: "example.com"}},
		{"absolute form no path", "GET HTTP://h?q HTTP/1.1\r\nHost: h\r\n\r\n",
			Request{Method: "GET", Target: "HTTP://h?q", Path: "/", RawQuery: "q", Proto: "HTTP/1.1", Host: "h"}},
		{"percent-decoded", "GET /live/%E7%9B%B4%e6%92%ad+x.flv?a=%20 HTTP/1.1\r\nHost: X.Y\r\n\r\n",
			Request{Method: "GET", Target: "/live/%E7%9B%B4%e6%92%ad+x.flv?a=%20", Path: "/live/直播+x.flv",
				RawQuery: "a=%20", Proto: "HTTP/1.1", Host: "x.y"}},
		{"raw utf-8 target", "GET /live/直播.flv HTTP/1.1\r\nHost: x\r\n\r\n", Request{Method: "GET",
			Target: "/live/直播.flv", Path: "/live/直播.flv", Proto: "HTTP/1.1", Host: "x"}},
		{"leading empty lines", "\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", Request{Method: "GET",
			Target: "/", Path: "/", Proto: "HTTP/1.1", Host: "x"}},
		{"case and whitespace", "GET / HTTP/1.1\r\nhOsT:\t x:1 \t\r\nUPGRADE: WebSocket\r\nupgrade: h2c\r\n\r\n",
			Request{Method: "GET", Target: "/", Path: "/", Proto: "HTTP/1.1", Host: "x", Upgrade: "WebSocket, h2c"}},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", Request{Method: "GET", Target: "/", Path: "/", Proto: "HTTP/1.1"}},
		{"content-length 0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 00\r\n\r\n",
			Request{Method: "GET", Target: "/", Path: "/", Proto: "HTTP/1.1", Host: "x"}},
		{"other method", "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", Request{Method: "BREW", Target: "/pot",
			Path: "/pot", Proto: "HTTP/1.1", Host: "x"}},
		{"obs-text value", "GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\n\r\n", Request{Method: "GET",
			Target: "/", Path: "/", Proto: "HTTP/1.1", Host: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.head + "NEXT")
			n, req, err := ParseRequest(buf, 0)
			if err != nil || req == nil {
				t.Fatalf("ParseRequest: n %d, req %v, err %v", n, req, err)
			}
			if n != len(tt.head) {
				t.Errorf("n %d, want %d", n, len(tt.head))
			}
			for i := range buf {
				buf[i] = 'Z' // the request must not alias the buffer
			}
			if *req != tt.want {
				t.Errorf("got  %+v\nwant %+v", *req, tt.want)
			}
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	long := strings.Repeat("a", MaxTarget)
	tests := []struct {
		name, head string
		maxHead    int
		status     int
	}{
		{"no version", "GET /\r\n\r\n", 0, 400},
		{"double space", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 0, 400},
		{"lowercase version", "GET / http/1.1\r\nHost: x\r\n\r\n", 0, 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400},
		{"empty method", " / HTTP/1.1\r\n\r\n", 0, 400},
		{"http/2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 505},
		{"http/0.9 style version", "GET / HTTP/0.9\r\n\r\n", 0, 505},
		{"http/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 0, 505},
		{"target too long", "GET /" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", 16 << 10, 414},
		{"target too long partial", "GET /" + long, 0, 414},
		{"head too long", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("b", 100), 64, 431},
		{"head too long exactly", "GET / HTTP/1.1\r\nHost: x\r\n\r", 26, 431},
		{"asterisk with GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400},
		{"https absolute", "GET https://h/x.flv HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"userinfo", "GET http://u@h/x.flv HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"empty authority", "GET http:///x.flv HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"authority form", "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"fragment", "GET /x#y HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"bad percent", "GET /x%zz HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"short percent", "GET /x% HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"percent NUL", "GET /x%00.flv HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"percent newline", "GET /x%0a.flv HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"NUL in target", "GET /x\x00 HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"DEL in target", "GET /x\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
		{"no host 1.1", "GET / HTTP/1.1\r\n\r\n", 0, 400},
		{"repeated host", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 0, 400},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, 400},
		{"bad host port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 0, 400},
		{"host only port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 0, 400},
		{"bad ipv6", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 0, 400},
		{"unclosed ipv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 0, 400},
		{"ipv6 junk", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 0, 400},
		{"host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 0, 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0, 400},
		{"no colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", 0, 400},
		{"empty name", "GET / HTTP/1.1\r\n: x\r\n\r\n", 0, 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n", 0, 400},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n", 0, 400},
		{"bare CR at line end", "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", 0, 400},
		{"repeated key", "GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Key: a\r\n\r\n", 0, 400},
		{"repeated version", "GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, 400},
		{"repeated origin", "GET / HTTP/1.1\r\nHost: x\r\nOrigin: a\r\nOrigin: a\r\n\r\n", 0, 400},
		{"many connection", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("Connection: a\r\n", 5) + "\r\n", 0, 400},
		{"content-length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 0, 501},
		{"huge content-length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 0, 501},
		{"bad content-length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 0, 400},
		{"list content-length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 0, 400},
		{"conflicting content-length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n", 0, 400},
		{"transfer-encoding", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 501},
		{"transfer-encoding 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 501},
		// Refused before the head is complete.
		{"tls", tlsHello, 0, 400},
		{"rtmp", rtmpC0C1, 0, 400},
		{"partial bad method", "GE(T", 0, 400},
		{"partial bad header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: \x01", 0, 400},
		{"partial bare CR", "GET / HTTP/1.1\rX", 0, 400},
		{"partial bad first line", "GET /\r\nHost", 0, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, req, err := ParseRequest([]byte(tt.head), tt.maxHead)
			var e *Error
			if !errors.As(err, &e) || n != 0 || req != nil {
				t.Fatalf("n %d, req %v, err %v: want status %d", n, req, err, tt.status)
			}
			if e.Status != tt.status {
				t.Errorf("status %d (%v), want %d", e.Status, err, tt.status)
			}
			if !strings.Contains(err.Error(), StatusText(tt.status)) {
				t.Errorf("error %q does not name its status", err)
			}
		})
	}
}

// TestParseRequestNeedMore feeds every prefix of complete heads: each must
// ask for more, and garbage must not.
func TestParseRequestNeedMore(t *testing.T) {
	for _, head := range []string{chromeGET, curlGET, ffmpegGET, chromeWS, optionsPreflight, http10GET,
		"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"} {
		for k := range len(head) {
			n, req, err := ParseRequest([]byte(head[:k]), 0)
			if n != 0 || req != nil || err != nil {
				t.Fatalf("prefix %q: n %d, req %v, err %v", head[:k], n, req, err)
			}
		}
		// Exactly as long as the limit: complete.
		if n, _, err := ParseRequest([]byte(head), len(head)); n != len(head) || err != nil {
			t.Fatalf("maxHead = len: n %d, err %v", n, err)
		}
		// One byte short of the limit: too long.
		if _, _, err := ParseRequest([]byte(head), len(head)-1); err == nil || err.(*Error).Status != 431 {
			t.Fatalf("maxHead = len-1: err %v", err)
		}
	}
}

func TestParseRequestAllocs(t *testing.T) {
	buf := []byte(chromeWS)
	if a := testing.AllocsPerRun(100, func() { ParseRequest(buf, 0) }); a > 2 {
		t.Errorf("complete head: %v allocations, want <= 2", a)
	}
	part := buf[:len(buf)-3]
	if a := testing.AllocsPerRun(100, func() { ParseRequest(part, 0) }); a != 0 {
		t.Errorf("partial head: %v allocations, want 0", a)
	}
}
