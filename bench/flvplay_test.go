package bench

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/flv"
	"github.com/rtmpedge/rtmpedge/httpflv"
)

// flvTag is a tag of a test FLV stream.
type flvTag struct {
	typ  uint8
	ts   uint32
	data []byte
}

// testTags are metadata, sequence headers, a keyframe, frames and audio,
// an empty tag, and timestamps past 24 bits (the extension byte).
func testTags() []flvTag {
	video := func(key bool, n int) []byte {
		b := bytes.Repeat([]byte{byte(n)}, n)
		b[0], b[1] = 0x27, 1
		if key {
			b[0] = 0x17
		}
		return b
	}
	return []flvTag{
		{flv.TagScript, 0, []byte("\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09")},
		{flv.TagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 2, 3, 4, 5}},
		{flv.TagAudio, 0, []byte{0xaf, 0, 0x12, 0x10}},
		{flv.TagVideo, 0, video(true, 70000)},
		{flv.TagAudio, 23, bytes.Repeat([]byte{0xaf}, 300)},
		{flv.TagVideo, 33, video(false, 5)},
		{flv.TagAudio, 46, nil},
		{flv.TagVideo, 0x1000000, video(false, 9000)},
		{flv.TagVideo, 0x1000021, video(true, 200)},
	}
}

// flvBytes is an FLV file of the tags.
func flvBytes(tags []flvTag) []byte {
	out := flv.AppendHeader(nil, true, true)
	for _, tg := range tags {
		out = flv.AppendTagHeader(out, tg.typ, len(tg.data), tg.ts)
		out = append(out, tg.data...)
		out = flv.AppendTrailer(out, len(tg.data))
	}
	return out
}

// checkTags compares what a skimmer reported with the tags sent.
func checkTags(t *testing.T, got []skimMsg, want []flvTag) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d tags, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		head := w.data[:min(len(w.data), headBytes)]
		if g.TypeID != w.typ || g.Timestamp != w.ts || g.Length != uint32(len(w.data)) || !bytes.Equal(g.Head, head) {
			t.Fatalf("tag %d: got type %d ts %#x len %d head %x, want type %d ts %#x len %d head %x",
				i, g.TypeID, g.Timestamp, g.Length, g.Head, w.typ, w.ts, len(w.data), head)
		}
	}
}

// collect returns a message callback that records copies of the messages.
func collect(got *[]skimMsg) func(*skimMsg) error {
	return func(m *skimMsg) error {
		c := *m
		c.Head = bytes.Clone(m.Head)
		*got = append(*got, c)
		return nil
	}
}

// splits feeds data to feed in random pieces (trial 0: byte by byte).
func splits(t *testing.T, trial int, data []byte, feed func([]byte) error) {
	t.Helper()
	for len(data) > 0 {
		n := 1 + rand.IntN(3000)
		if trial == 0 {
			n = 1
		}
		n = min(n, len(data))
		if err := feed(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

func TestFLVSkimmerSplitTags(t *testing.T) {
	tags := testTags()
	data := flvBytes(tags)
	for trial := range 30 {
		var got []skimMsg
		s := &flvSkimmer{}
		splits(t, trial, data, func(b []byte) error { return s.feed(b, collect(&got)) })
		checkTags(t, got, tags)
	}
	if err := (&flvSkimmer{}).feed([]byte("RIFF\x00\x00\x00\x00\x00"), collect(new([]skimMsg))); err == nil {
		t.Fatal("a non-FLV stream was accepted")
	}
}

// wsFrames wraps data in server-to-client binary frames of random sizes
// (continuation frames after the first of a message), with a ping and an
// empty frame in between.
func wsFrames(data []byte) []byte {
	var out []byte
	first := true
	for len(data) > 0 {
		n := min(len(data), []int{1, 5, 125, 126, 700, 65535, 65536, 70000}[rand.IntN(8)])
		op := httpflv.OpContinuation
		if first {
			op = httpflv.OpBinary
		}
		out = httpflv.AppendFrameHeader(out, op, n)
		out = append(out, data[:n]...)
		data = data[n:]
		first = rand.IntN(3) == 0
		switch rand.IntN(10) {
		case 0:
			out = httpflv.AppendFrameHeader(out, httpflv.OpPing, 3)
			out = append(out, "abc"...)
		case 1:
			out = httpflv.AppendFrameHeader(out, httpflv.OpBinary, 0)
			first = false
		}
	}
	return out
}

func TestWebSocketFramesSplitTags(t *testing.T) {
	tags := testTags()
	data := flvBytes(tags)
	for trial := range 30 {
		framed := wsFrames(data)
		var got []skimMsg
		s, w := &flvSkimmer{}, &wsReader{}
		pings := 0
		control := func(op byte, p []byte) error {
			if op != httpflv.OpPing || string(p) != "abc" {
				t.Fatalf("control frame %d %q", op, p)
			}
			pings++
			return nil
		}
		splits(t, trial, framed, func(b []byte) error {
			return w.feed(b, func(d []byte) error { return s.feed(d, collect(&got)) }, control)
		})
		checkTags(t, got, tags)
		if want := bytes.Count(framed, []byte{0x89, 3, 'a', 'b', 'c'}); pings < want {
			t.Fatalf("%d pings, want at least %d", pings, want)
		}
	}
	masked := []byte{0x82, 0x81, 0, 0, 0, 0, 'x'}
	if err := (&wsReader{}).feed(masked, func([]byte) error { return nil }, nil); err == nil {
		t.Fatal("a masked server frame was accepted")
	}
}

// serveFLV writes data in pieces with flushes in between, so the player
// reads tags split across reads, then keeps the response open.
func serveFLV(w *bufio.Writer, flush func(), data []byte, done <-chan struct{}) {
	for len(data) > 0 {
		n := min(len(data), 1+rand.IntN(5000))
		_, _ = w.Write(data[:n])
		_ = w.Flush()
		flush()
		data = data[n:]
		time.Sleep(time.Millisecond)
	}
	<-done
}

// playUntil runs a player of url until cond holds (or 5 s pass).
func playUntil(t *testing.T, url string, cond func(p *Player) bool) *Player {
	t.Helper()
	p := &Player{URL: url}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	for !cond(p) && ctx.Err() == nil && p.State.Load() != StateFailed {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	return p
}

// checkPlayed checks the counters of a player that got every test tag.
func checkPlayed(t *testing.T, p *Player, wire int) {
	t.Helper()
	tags := testTags()
	if r := p.Reason.Load(); r != nil {
		t.Fatalf("player failed: %s", *r)
	}
	if !p.Started.Load() || p.Handshake.Load() <= 0 || p.FirstKey.Load() <= 0 {
		t.Fatalf("started %v, connect %d ns, first keyframe %d ns", p.Started.Load(), p.Handshake.Load(), p.FirstKey.Load())
	}
	if p.Messages.Load() != int64(len(tags)) || p.Video.Load() != 5 {
		t.Fatalf("messages %d video %d, want %d and 5", p.Messages.Load(), p.Video.Load(), len(tags))
	}
	if got, want := time.Duration(p.MediaNs.Load()), time.Duration(0x1000021)*time.Millisecond; got != want {
		t.Fatalf("media time %s, want %s", got, want)
	}
	if p.Bytes.Load() < int64(wire) {
		t.Fatalf("bytes %d, want at least the %d sent", p.Bytes.Load(), wire)
	}
}

func TestPlayerHTTPFLV(t *testing.T) {
	data := flvBytes(testTags())
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/live/x.flv" || r.URL.RawQuery != "token=1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "video/x-flv")
		w.WriteHeader(200)
		f := w.(http.Flusher)
		serveFLV(bufio.NewWriterSize(w, 1), f.Flush, data, done)
	}))
	defer srv.Close()
	defer close(done)
	p := playUntil(t, srv.URL+"/live/x.flv?token=1", func(p *Player) bool { return p.Messages.Load() == int64(len(testTags())) })
	checkPlayed(t, p, len(data))

	// Another stream is refused: a 404 counts as a refusal, not a failure.
	p = playUntil(t, srv.URL+"/live/y.flv", func(*Player) bool { return false })
	if p.RefusedAfter.Load() <= 0 || p.Started.Load() || p.State.Load() != StateFailed {
		t.Fatalf("404: refused after %d ns, started %v, state %d", p.RefusedAfter.Load(), p.Started.Load(), p.State.Load())
	}
}

func TestPlayerWebSocketFLV(t *testing.T) {
	data := flvBytes(testTags())
	framed := wsFrames(data)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Sec-WebSocket-Key")
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Version") != "13" || len(key) != 24 {
			http.Error(w, "not a WebSocket handshake", 400)
			return
		}
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			httpflv.AcceptKey(key) + "\r\n\r\n")
		serveFLV(rw.Writer, func() {}, framed, done)
	}))
	defer srv.Close()
	defer close(done)
	url := strings.Replace(srv.URL, "http://", "ws://", 1) + "/live/x.flv"
	p := playUntil(t, url, func(p *Player) bool { return p.Messages.Load() == int64(len(testTags())) })
	checkPlayed(t, p, len(framed))
}
