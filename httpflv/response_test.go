package httpflv

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		status  int
		headers []string
		want    string
	}{
		{200, []string{"Content-Type", "video/x-flv", "Connection", "close"},
			"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n"},
		{404, nil, "HTTP/1.1 404 Not Found\r\n\r\n"},
		{101, []string{"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", AcceptKey("dGhlIHNhbXBsZSBub25jZQ==")},
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"},
		{599, []string{"X-Odd"}, "HTTP/1.1 599 \r\nX-Odd: \r\n\r\n"},
		{42, nil, "HTTP/1.1 500 Internal Server Error\r\n\r\n"},
		{1000, nil, "HTTP/1.1 500 Internal Server Error\r\n\r\n"},
		{200, []string{"Access-Control-Allow-Origin", "*\r\nSet-Cookie: x\x00\ty"},
			"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *  Set-Cookie: x \ty\r\n\r\n"},
	}
	for _, tt := range tests {
		got := string(AppendResponse([]byte("prev"), tt.status, tt.headers...))
		if got != "prev"+tt.want {
			t.Errorf("%d %q:\n got %q\nwant %q", tt.status, tt.headers, got, "prev"+tt.want)
		}
	}
}

// TestStatusTextMatchesNetHTTP checks every phrase (net/http keeps three
// RFC 7231 phrases that RFC 9110 renamed) and that net/http reads the heads.
func TestStatusTextMatchesNetHTTP(t *testing.T) {
	rfc9110 := map[int]string{413: "Content Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable"}
	for code := 100; code < 600; code++ {
		if s := StatusText(code); s != "" && s != http.StatusText(code) && s != rfc9110[code] {
			t.Errorf("%d: %q, net/http says %q", code, s, http.StatusText(code))
		}
	}
	for _, code := range []int{200, 204, 400, 404, 405, 408, 414, 426, 431, 501, 503, 505} {
		if StatusText(code) == "" {
			t.Errorf("%d has no text", code)
		}
		head := AppendResponse(nil, code, "Content-Type", "video/x-flv")
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(head))), nil)
		if err != nil || resp.StatusCode != code || resp.Header.Get("Content-Type") != "video/x-flv" {
			t.Errorf("%d: net/http reads %v, %v", code, resp, err)
		}
	}
}

func TestAppendResponseAllocs(t *testing.T) {
	dst := make([]byte, 0, 512)
	origin := "http://localhost:8000"
	if a := testing.AllocsPerRun(100, func() {
		AppendResponse(dst[:0], 200, "Content-Type", "video/x-flv", "Access-Control-Allow-Origin", origin)
	}); a != 0 {
		t.Errorf("%v allocations, want 0", a)
	}
}
