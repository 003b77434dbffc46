package e2e

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// rawConn is a client that speaks raw bytes after an optional handshake.
func rawConn(t *testing.T, addr string, handshake bool) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !handshake {
		return c
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	hs := chunk.NewClientHandshake(true)
	if _, err := c.Write(hs.C0C1()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3073)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	_, out, done, err := hs.Feed(buf)
	if err != nil || !done {
		t.Fatalf("handshake: done=%v err=%v", done, err)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

func command(t *testing.T, vals ...any) []byte {
	t.Helper()
	body, err := amf.AppendAll(nil, vals...)
	if err != nil {
		t.Fatal(err)
	}
	return chunk.AppendMessage(nil, chunk.Header{CSID: 3, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0}, body, chunk.DefaultChunkSize)
}

func connectCmd(t *testing.T, addr string) []byte {
	return command(t, "connect", 1.0, amf.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://" + addr + "/live"}})
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("the server did not close the connection")
	}
}

// closedWithin reads (discarding) until the server closes c and reports
// whether it did within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !errors.As(err, &ne) || !ne.Timeout()
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	s := startServer(t, originConfig)
	publishFFmpeg(t, s.url("live/ok"), "320x240", 60)
	probeUntil(t, s.url("live/ok"), hasAV)
	// A healthy player watches throughout.
	_, videoTS, _ := playRecording(t, s.url("live/ok"))

	// A format-0 chunk header on csid 3 declaring length bytes.
	header := func(typeID uint8, length uint32) []byte {
		return []byte{0x03, 0, 0, 0, byte(length >> 16), byte(length >> 8), byte(length), typeID, 1, 0, 0, 0}
	}
	cases := []struct {
		name      string
		handshake bool
		send      func() []byte
		logged    string
	}{
		{"garbage handshake", false, func() []byte { return []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("x", 1600)) }, "handshake"},
		{"absurd chunk size", true, func() []byte { return chunk.AppendSetChunkSize(nil, 0x7fffffff) }, "chunk size"},
		{"absurd message length", true, func() []byte { return header(chunk.TypeVideo, 0xfffff0) }, "message"},
		{"malformed amf", true, func() []byte {
			body := []byte{0x02, 0x00, 0x07, 'c', 'o', 'n', 'n', 'e', 'c', 't', 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x03, 0x00, 0x50, 'a'}
			return chunk.AppendMessage(nil, chunk.Header{CSID: 3, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0}, body, 128)
		}, "command"},
		{"unknown command", true, func() []byte {
			return append(connectCmd(t, s.addr), command(t, "launchMissiles", 2.0, nil)...)
		}, `unknown command \"launchMissiles\"`},
		{"publish before connect", true, func() []byte { return command(t, "publish", 2.0, nil, "x", "live") }, `publish\" before connect`},
		{"media without publish", true, func() []byte {
			media := chunk.AppendMessage(nil, chunk.Header{CSID: 6, Length: 4, TypeID: chunk.TypeAudio, StreamID: 1}, []byte{0xaf, 1, 2, 3}, 128)
			return append(connectCmd(t, s.addr), media...)
		}, "not publishing"},
		{"unknown message type", true, func() []byte {
			return chunk.AppendMessage(nil, chunk.Header{CSID: 3, Length: 1, TypeID: 99}, []byte{1}, 128)
		}, "unknown message type 99"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			before := strings.Count(s.log.String(), "bad input")
			conn := rawConn(t, s.addr, c.handshake)
			if _, err := conn.Write(c.send()); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, conn)
			deadline := time.Now().Add(3 * time.Second)
			for strings.Count(s.log.String(), "bad input") == before && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			lines := strings.Split(s.log.String(), "\n")
			found := false
			for _, l := range lines {
				if strings.Contains(l, "bad input") && strings.Contains(l, c.logged) {
					found = true
				}
			}
			if !found {
				t.Errorf("no log line explaining the close with %q", c.logged)
			}
		})
	}
	// The healthy player was not harmed.
	n := len(videoTS())
	time.Sleep(2 * time.Second)
	if len(videoTS()) <= n+20 {
		t.Fatalf("healthy player stalled: %d -> %d video messages", n, len(videoTS()))
	}
	probeUntil(t, s.url("live/ok"), hasAV)
}

func TestHEVCEnhancedRTMPPassesThrough(t *testing.T) {
	s := startServer(t, originConfig)
	pub, err := bench.Dial(s.url("live/hevc"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(); err != nil {
		t.Fatal(err)
	}
	// Enhanced RTMP: [IsExHeader|FrameType|PacketType] FourCC body.
	seq := []byte{0x90, 'h', 'v', 'c', '1', 0x01, 0x02, 0x03, 0x04}
	key := append([]byte{0x93, 'h', 'v', 'c', '1'}, []byte(strings.Repeat("K", 3000))...)
	inter := append([]byte{0xa3, 'h', 'v', 'c', '1'}, []byte(strings.Repeat("P", 700))...)
	sent := [][]byte{seq, key, inter, inter}
	for i, p := range sent {
		if err := pub.WriteMessage(chunk.TypeVideo, uint32(i*40), p); err != nil {
			t.Fatal(err)
		}
	}
	// A player joining now gets the sequence header and the GOP unchanged.
	player := playClient(t, s.url("live/hevc"), 10*time.Second)
	var got [][]byte
	for len(got) < 4 {
		msg, err := player.ReadMessage()
		if err != nil {
			t.Fatalf("after %d video messages: %v", len(got), err)
		}
		if msg.TypeID == chunk.TypeVideo {
			got = append(got, append([]byte(nil), msg.Payload...))
		}
	}
	for i := range sent {
		if string(got[i]) != string(sent[i]) {
			t.Fatalf("video message %d changed: got %x..., sent %x...", i, got[i][:min(8, len(got[i]))], sent[i][:8])
		}
	}
}

func TestConfigCheckAndVersion(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(good, []byte("listen: [\"127.0.0.1:1\"]\n"), 0o644)
	_ = os.WriteFile(bad, []byte("chunk_size: 70000\nvhosts:\n  a.example.com:\n    merged_wrte: 1s\n"), 0o644)

	out, err := exec.Command(serverBin, "-t", "-c", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("-t on a good config: %v %s", err, out)
	}
	out, err = exec.Command(serverBin, "-t", "-c", bad).CombinedOutput()
	if err == nil {
		t.Errorf("-t accepted a bad config: %s", out)
	}
	for _, want := range []string{"chunk_size", "merged_wrte"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-t output does not name %s: %s", want, out)
		}
	}
	out, err = exec.Command(serverBin, "-t").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "embedded") {
		t.Errorf("-t on the embedded default: %v %s", err, out)
	}
	out, err = exec.Command(serverBin, "-v").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rtmpedge ") {
		t.Errorf("-v: %v %s", err, out)
	}
}

func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, originConfig)
	c, err := bench.Dial(s.url("live/x"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Play(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.stop()
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("shutdown took %s", took)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(s.log.String(), "msg=stopped") {
		t.Fatalf("no shutdown log line")
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, err := c.ReadMessage(); err != nil {
			break
		}
	}
}

func TestLimitsAndTimeouts(t *testing.T) {
	s := startServer(t, `
listen: ["%ADDR%"]
max_connections: 3
handshake_timeout: 1s
idle_timeout: 2s
vhost_defaults:
  publish_idle_timeout: 1s
  play_wait_timeout: 1s
vhosts:
  __defaultVhost__: {}
`)
	// A connection that never handshakes is closed after handshake_timeout.
	silent := rawConn(t, s.addr, false)
	expectClosed(t, silent)
	if !s.waitLog("handshake_timeout", 3*time.Second) {
		t.Error("no log line for the handshake timeout")
	}
	// A publisher that sends no media is closed after publish_idle_timeout.
	pub, err := bench.Dial(s.url("live/idle"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(); err != nil {
		t.Fatal(err)
	}
	// A player of a stream nobody publishes leaves after play_wait_timeout.
	player, err := bench.Dial(s.url("live/nobody"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer player.Close()
	if err := player.Play(); err != nil {
		t.Fatal(err)
	}
	// Over max_connections, a new connection is refused at once.
	extra := make([]net.Conn, 0, 2)
	for range 2 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		extra = append(extra, c)
	}
	expectClosed(t, extra[1])
	if !s.waitLog("max_connections reached", 3*time.Second) {
		t.Error("no log line for max_connections")
	}
	for _, want := range []string{"publish_idle_timeout", "play_wait_timeout"} {
		if !s.waitLog(want, 5*time.Second) {
			t.Errorf("no close for %s", want)
		}
	}
	// The connection that was let in but never spoke goes after handshake_timeout.
	expectClosed(t, extra[0])
}
