package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// httpOriginConfig is an origin that also serves HTTP-FLV.
const httpOriginConfig = `
listen: ["%ADDR%"]
log: {level: info}
http: {listen: ["%HTTP%"], header_timeout: 1s}
vhosts:
  __defaultVhost__: {}
`

// httpExchange sends a raw request to addr and returns the response's
// status code, its headers and a reader positioned at its body.
func httpExchange(t *testing.T, addr, request string) (int, http.Header, *bufio.Reader, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	return resp.StatusCode, resp.Header, br, c
}

// flvTag is one tag read from an FLV stream.
type flvTag struct {
	typ  byte
	ts   uint32
	data []byte
}

// readFLVHeader reads and checks the FLV file header.
func readFLVHeader(t *testing.T, r io.Reader) {
	t.Helper()
	h := make([]byte, 13)
	if _, err := io.ReadFull(r, h); err != nil {
		t.Fatalf("FLV header: %v", err)
	}
	if string(h[:4]) != "FLV\x01" || h[8] != 9 || binary.BigEndian.Uint32(h[9:]) != 0 {
		t.Fatalf("FLV header % x", h)
	}
}

// readFLVTag reads one tag and checks its PreviousTagSize.
func readFLVTag(r io.Reader) (flvTag, error) {
	h := make([]byte, 11)
	if _, err := io.ReadFull(r, h); err != nil {
		return flvTag{}, err
	}
	size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
	rest := make([]byte, size+4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return flvTag{}, err
	}
	if prev := binary.BigEndian.Uint32(rest[size:]); prev != uint32(11+size) {
		return flvTag{}, fmt.Errorf("tag of %d bytes has PreviousTagSize %d", size, prev)
	}
	ts := uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]) | uint32(h[7])<<24
	return flvTag{typ: h[0], ts: ts, data: rest[:size]}, nil
}

// checkFastStart reads the first tags of a new player: metadata at
// timestamp 0, the video and audio sequence headers, then a keyframe; and
// then n more tags with timestamps that never go back.
func checkFastStart(t *testing.T, r io.Reader, n int) {
	t.Helper()
	first, err := readFLVTag(r)
	if err != nil || first.typ != 18 || first.ts != 0 || !strings.Contains(string(first.data), "onMetaData") {
		t.Fatalf("first tag: type %d ts %d err %v, want onMetaData at 0", first.typ, first.ts, err)
	}
	var seqV, seqA, key bool
	var last uint32
	for i := 0; i < n+3; i++ {
		tag, err := readFLVTag(r)
		if err != nil {
			t.Fatalf("tag %d: %v", i, err)
		}
		switch {
		case tag.typ == 9 && len(tag.data) > 1 && tag.data[1] == 0:
			seqV = true
		case tag.typ == 8 && len(tag.data) > 1 && tag.data[1] == 0:
			seqA = true
		case tag.typ == 9 && !key:
			if !seqV || !seqA || tag.data[0]>>4 != 1 {
				t.Fatalf("first video frame: keyframe %v after video/audio headers %v/%v", tag.data[0]>>4 == 1, seqV, seqA)
			}
			key = true
		}
		if key {
			if tag.ts < last {
				t.Fatalf("timestamp went back from %d to %d", last, tag.ts)
			}
			last = tag.ts
		}
	}
	if !key {
		t.Fatal("no keyframe in the first tags")
	}
}

func TestHTTPFLVOrigin(t *testing.T) {
	s := startServer(t, httpOriginConfig)
	publishFFmpeg(t, s.url("live/h"), "320x240", 60)
	probeUntil(t, s.url("live/h"), hasAV)
	flvURL := "http://" + s.httpAddr + "/live/h.flv"

	p := probeUntil(t, flvURL, hasAV)
	if v, w, h, _ := p.stream("video"); v != "h264" || w != 320 || h != 240 || len(p.Streams) != 2 {
		t.Fatalf("ffprobe over HTTP-FLV: %+v, want h264 320x240 and aac only", p.Streams)
	}

	status, hdr, body, _ := httpExchange(t, s.httpAddr, "GET /live/h.flv?token=abc HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n")
	if status != 200 || hdr.Get("Content-Type") != "video/x-flv" || hdr.Get("Access-Control-Allow-Origin") != "*" || hdr.Get("Content-Length") != "" {
		t.Fatalf("GET: %d %v", status, hdr)
	}
	readFLVHeader(t, body)
	checkFastStart(t, body, 60)

	for _, c := range []struct {
		name, req string
		status    int
		header    string // a header the answer must have
	}{
		{"HEAD", "HEAD /live/h.flv HTTP/1.1\r\nHost: x\r\n\r\n", 200, "Content-Type: video/x-flv"},
		{"preflight", "OPTIONS /live/h.flv HTTP/1.1\r\nHost: x\r\nOrigin: http://page.example\r\nAccess-Control-Request-Method: GET\r\n\r\n", 204, "Access-Control-Allow-Methods: GET, HEAD, OPTIONS"},
		{"no such stream", "GET /live/none.flv HTTP/1.1\r\nHost: x\r\n\r\n", 404, ""},
		{"HEAD of no such stream", "HEAD /live/none.flv HTTP/1.1\r\nHost: x\r\n\r\n", 404, ""},
		{"WebSocket version", "GET /live/h.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426, "Sec-WebSocket-Version: 13"},
		{"body", "GET /live/h.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 501, ""},
		{"not FLV", "GET /live/h.mp4 HTTP/1.1\r\nHost: x\r\n\r\n", 404, ""},
		{"method", "DELETE /live/h.flv HTTP/1.1\r\nHost: x\r\n\r\n", 405, "Allow: GET, HEAD, OPTIONS"},
		{"traversal", "GET /live/../../etc/passwd.flv HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"encoded traversal", "GET /live/%2e%2e/x.flv HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"request line", "GARBAGE\r\n\r\n", 400, ""},
		{"version", "GET /live/h.flv HTTP/2.0\r\nHost: x\r\n\r\n", 505, ""},
		{"header over 8 KiB", "GET /live/h.flv HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n", 431, ""},
		{"unknown vhost", "GET /live/h.flv?vhost=other.example HTTP/1.1\r\nHost: x\r\n\r\n", 200, ""}, // served by __defaultVhost__, as RTMP
	} {
		status, hdr, _, _ := httpExchange(t, s.httpAddr, c.req)
		if status != c.status {
			t.Errorf("%s: status %d, want %d", c.name, status, c.status)
			continue
		}
		if c.header != "" {
			name, value, _ := strings.Cut(c.header, ": ")
			if hdr.Get(name) != value {
				t.Errorf("%s: %s = %q, want %q", c.name, name, hdr.Get(name), value)
			}
		}
		if hdr.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS header", c.name)
		}
	}

	// A client that sends its head too slowly gets 408 and is closed.
	c, err := net.Dial("tcp", s.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /live/h.flv HTTP/1.1\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 408 {
		t.Fatalf("slow head: %v %v, want 408", resp, err)
	}
	if !s.waitLog("request head not received within http header_timeout", 5*time.Second) {
		t.Fatal("no log line for the slow head")
	}
	if strings.Contains(s.log.String(), "level=ERROR") || strings.Contains(s.log.String(), "panic") {
		t.Fatalf("server logged an error:\n%s", s.log.String())
	}
}

// wsDial opens a WebSocket to path on addr and returns a reader of the
// binary frames' payloads, concatenated.
func wsDial(t *testing.T, addr, path string) io.Reader {
	t.Helper()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	k := base64.StdEncoding.EncodeToString(key)
	status, hdr, br, c := httpExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+k+"\r\nSec-WebSocket-Version: 13\r\nOrigin: http://page.example\r\n\r\n")
	if status != 101 || !strings.EqualFold(hdr.Get("Upgrade"), "websocket") || hdr.Get("Sec-WebSocket-Accept") == "" {
		t.Fatalf("WebSocket upgrade: %d %v", status, hdr)
	}
	pr, pw := io.Pipe()
	go func() {
		defer c.Close()
		for {
			h := make([]byte, 2)
			if _, err := io.ReadFull(br, h); err != nil {
				pw.CloseWithError(err)
				return
			}
			if h[0] != 0x82 || h[1]&0x80 != 0 {
				pw.CloseWithError(fmt.Errorf("frame header % x: want a final unmasked binary frame", h))
				return
			}
			n := uint64(h[1] & 0x7F)
			switch n {
			case 126:
				b := make([]byte, 2)
				_, _ = io.ReadFull(br, b)
				n = uint64(binary.BigEndian.Uint16(b))
			case 127:
				b := make([]byte, 8)
				_, _ = io.ReadFull(br, b)
				n = binary.BigEndian.Uint64(b)
			}
			if _, err := io.CopyN(pw, br, int64(n)); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	t.Cleanup(func() { pr.Close() })
	return pr
}

// An edge serves HTTP-FLV, WebSocket-FLV and RTMP players of one stream
// from one upstream.
func TestHTTPFLVEdgeSharesTheUpstream(t *testing.T) {
	origin := startServer(t, originConfig)
	edge := startServer(t, httpEdgeConfig(origin.addr))
	publishFFmpeg(t, origin.url("live/mix"), "320x240", 60)
	probeUntil(t, origin.url("live/mix"), hasAV)
	base := countPlays(origin.log.String(), "mix") // ffprobe's

	// The first player of the stream on the edge is an HTTP one: it opens
	// the upstream and waits for it.
	status, _, body, _ := httpExchange(t, edge.httpAddr, "GET /live/mix.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if status != 200 {
		t.Fatalf("GET on the edge: %d", status)
	}
	readFLVHeader(t, body)
	checkFastStart(t, body, 30)

	ws := wsDial(t, edge.httpAddr, "/live/mix.flv")
	readFLVHeader(t, ws)
	checkFastStart(t, ws, 30)

	w := watch(t, edge.url("live/mix"))
	w.waitFrames(t, 30, 20*time.Second)
	p := probeUntil(t, "http://"+edge.httpAddr+"/live/mix.flv", hasAV)
	if len(p.Streams) != 2 {
		t.Fatalf("ffprobe through the edge: %+v", p.Streams)
	}
	if n := countPlays(origin.log.String(), "mix") - base; n != 1 {
		t.Fatalf("origin saw %d upstream players for HTTP, WebSocket and RTMP players of the edge, want 1", n)
	}
	// A stream nobody publishes waits on an edge (play_wait_timeout 0: as
	// long as the client stays); the answer's head comes at once.
	status, _, body, _ = httpExchange(t, edge.httpAddr, "GET /live/later.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if status != 200 {
		t.Fatalf("GET of a stream not published yet, on the edge: %d", status)
	}
	readFLVHeader(t, body)
}

// An HTTP-FLV play passes its query to on_play as param, as RTMP plays do;
// a refusal is a 403.
func TestHTTPFLVPlayHook(t *testing.T) {
	h := startHookServer(t)
	s := startServer(t, `
listen: ["%ADDR%"]
http: {listen: ["%HTTP%"]}
vhosts:
  __defaultVhost__:
    hooks:
      on_play: "`+h.URL+`/play"
`)
	publishFFmpeg(t, s.url("live/hk"), "320x240", 60)
	probeUntil(t, s.url("live/hk?token=good"), hasAV)
	if status, _, _, _ := httpExchange(t, s.httpAddr, "GET /live/hk.flv?token=bad HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); status != 403 {
		t.Fatalf("play with a bad token: %d, want 403", status)
	}
	status, _, body, _ := httpExchange(t, s.httpAddr, "GET /live/hk.flv?token=good HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if status != 200 {
		t.Fatalf("play with a good token: %d", status)
	}
	readFLVHeader(t, body)
	h.mu.Lock()
	defer h.mu.Unlock()
	var params []string
	for _, r := range h.seen {
		if r["action"] == "on_play" && strings.HasPrefix(fmt.Sprint(r["tcUrl"]), "http://") {
			params = append(params, fmt.Sprint(r["param"]))
			if r["app"] != "live" || r["stream"] != "hk" {
				t.Errorf("on_play of an HTTP player: %v", r)
			}
		}
	}
	if strings.Join(params, ",") != "?token=bad,?token=good" {
		t.Fatalf("on_play params of the HTTP players: %q", params)
	}
}

// curl saves an HTTP-FLV stream to a file that ffprobe reads as the
// stream's audio and video.
func TestHTTPFLVWithCurl(t *testing.T) {
	requireTool(t, "curl")
	s := startServer(t, httpOriginConfig)
	publishFFmpeg(t, s.url("live/c"), "320x240", 60)
	probeUntil(t, s.url("live/c"), hasAV)
	out := t.TempDir() + "/c.flv"
	cmd := exec.Command("curl", "-sS", "--max-time", "3", "-o", out, "-D", out+".headers", "http://"+s.httpAddr+"/live/c.flv")
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 28 { // 28: the --max-time ended a live stream, as expected
			t.Fatalf("curl: %v", err)
		}
	}
	hdr, _ := os.ReadFile(out + ".headers")
	if !strings.HasPrefix(string(hdr), "HTTP/1.1 200 OK") || !strings.Contains(string(hdr), "Content-Type: video/x-flv") {
		t.Fatalf("curl got headers %q", hdr)
	}
	p, err := ffprobe(t, out)
	if err != nil || !hasAV(p) || len(p.Streams) != 2 {
		t.Fatalf("ffprobe of curl's file: %+v %v", p.Streams, err)
	}
}

// ffplay (headless: no display, SDL's dummy drivers) plays an HTTP-FLV
// stream through an edge: it finds the H.264 and AAC streams and its clock
// advances. With -nodisp it does not stop on its own on a live stream, so
// it is stopped after a few seconds.
func TestHTTPFLVWithFFplay(t *testing.T) {
	requireTool(t, "ffplay")
	origin := startServer(t, originConfig)
	edge := startServer(t, httpEdgeConfig(origin.addr))
	publishFFmpeg(t, origin.url("live/fp"), "320x240", 60)
	probeUntil(t, origin.url("live/fp"), hasAV)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffplay", "-hide_banner", "-nodisp", "-loglevel", "info", "http://"+edge.httpAddr+"/live/fp.flv")
	cmd.Env = append(os.Environ(), "SDL_AUDIODRIVER=dummy", "SDL_VIDEODRIVER=dummy")
	out, _ := cmd.CombinedOutput() // killed by the context: the stream is live
	text := string(out)
	if !strings.Contains(text, "Video: h264") || !strings.Contains(text, "Audio: aac") {
		t.Fatalf("ffplay did not find h264 and aac:\n%s", lastLines(text, 10))
	}
	// Its status line: "  3.21 M-A: ..." with the playback clock first.
	var clock float64
	for _, f := range strings.Split(text, "\r") {
		var c float64
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%f M-A", &c); err == nil && c > clock {
			clock = c
		}
	}
	if clock < 2 {
		t.Fatalf("ffplay's clock reached %.2f s in 6 s, want at least 2 s of playback", clock)
	}
}
