package httpflv

import "strings"

// crlf turns a readable head (lines ending in \n) into CRLF lines.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// Request heads as real clients send them.
var (
	// mpegts.js 1.7 in Chromium 131 (fetch loader), cross-origin.
	chromeGET = crlf(`GET /live/test.flv HTTP/1.1
Host: 127.0.0.1:18081
Connection: keep-alive
sec-ch-ua-platform: "Linux"
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"
sec-ch-ua-mobile: ?0
Accept: */*
Origin: http://localhost:8000
Sec-Fetch-Site: cross-site
Sec-Fetch-Mode: cors
Sec-Fetch-Dest: empty
Referer: http://localhost:8000/
Accept-Encoding: gzip, deflate, br, zstd
Accept-Language: en-US,en;q=0.9

`)
	curlGET = crlf(`GET /live/test.flv?token=abc&vhost=live.example.com HTTP/1.1
Host: live.example.com:18080
User-Agent: curl/8.11.1
Accept: */*

`)
	// ffmpeg/ffprobe 7.1 (libavformat http.c).
	ffmpegGET = crlf(`GET /live/test.flv HTTP/1.1
User-Agent: Lavf/61.7.100
Accept: */*
Range: bytes=0-
Connection: close
Host: 127.0.0.1:18081
Icy-MetaData: 1

`)
	// mpegts.js over ws:// in Chromium 131.
	chromeWS = crlf(`GET /live/test.flv HTTP/1.1
Host: 127.0.0.1:18081
Connection: Upgrade
Pragma: no-cache
Cache-Control: no-cache
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
Upgrade: websocket
Origin: http://localhost:8000
Sec-WebSocket-Version: 13
Accept-Encoding: gzip, deflate, br, zstd
Accept-Language: en-US,en;q=0.9
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits

`)
	// Firefox joins the tokens in one Connection value.
	firefoxWS = crlf(`GET /live/test.flv HTTP/1.1
Host: [::1]:18081
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0
Accept: */*
Sec-WebSocket-Version: 13
Origin: http://localhost:8000
Sec-WebSocket-Extensions: permessage-deflate
Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==
Connection: keep-alive, Upgrade
Upgrade: websocket

`)
	// CORS preflight from Chromium (a player adding a Range header).
	optionsPreflight = crlf(`OPTIONS /live/test.flv HTTP/1.1
Host: 127.0.0.1:18081
Accept: */*
Access-Control-Request-Method: GET
Access-Control-Request-Headers: range
Origin: http://localhost:8000
Sec-Fetch-Mode: cors
Sec-Fetch-Site: cross-site
Sec-Fetch-Dest: empty

`)
	curlHEAD = crlf(`HEAD /live/test.flv HTTP/1.1
Host: 127.0.0.1:18081
User-Agent: curl/8.11.1
Accept: */*

`)
	// VLC 3.0 (HTTP/1.1, no Connection).
	vlcGET = crlf(`GET /live/test.flv HTTP/1.1
Host: 127.0.0.1:18081
Accept: */*
Accept-Language: en_US
User-Agent: VLC/3.0.21 LibVLC/3.0.21
Range: bytes=0-

`)
	http10GET = "GET /live/test.flv HTTP/1.0\n\n"
)

// Garbage that reaches an HTTP port.
var (
	tlsHello   = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + strings.Repeat("\xa5", 32)
	rtmpC0C1   = "\x03\x00\x00\x00\x00\x00\x00\x00\x00" + strings.Repeat("\x5a", 64)
	h2Preface  = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	proxyProto = "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
)

func requestSeeds() []string {
	return []string{chromeGET, curlGET, ffmpegGET, chromeWS, firefoxWS, optionsPreflight, curlHEAD, vlcGET,
		http10GET, tlsHello, rtmpC0C1, h2Preface, proxyProto,
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://Example.COM:80/live/x.flv?a=b HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /live/%E7%9B%B4%E6%92%AD.flv HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /live/x.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"GET /live/x.flv HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
		"",
	}
}
