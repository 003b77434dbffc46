package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/bench"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// The probe battery: everything a socket can send, tried one probe after
// another against one origin that keeps serving a canary player of an
// ffmpeg stream. After each probe the server is up, the canary saw no gap
// over a second, and RSS and open file descriptors are back within 20 MB
// and 5 of their level before it.

// probeConfig is an origin with short handshake and idle timeouts (so
// silent connections go within the test's time) whose hooks all go to
// hookURL.
func probeConfig(hookURL string) string {
	return `listen: ["%ADDR%"]
handshake_timeout: 2s
idle_timeout: 3s
vhosts:
  __defaultVhost__:
    hooks:
      on_connect: "` + hookURL + `/connect"
      on_publish: "` + hookURL + `/publish"
      on_play: "` + hookURL + `/play"
`
}

// hookRecorder is an operator's hook service that allows everything and
// keeps each request's body as it arrived.
type hookRecorder struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func startHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.mu.Unlock()
		_, _ = w.Write([]byte(`{"code": 0}`))
	}))
	t.Cleanup(h.Close)
	return h
}

// since returns the bodies received after the first n.
func (h *hookRecorder) since(n int) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies[n:]...)
}

func (h *hookRecorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

// rtmpConn is a raw client connection that reads the server's messages.
type rtmpConn struct {
	net.Conn
	rd  *chunk.Reader
	in  []byte
	off int
}

// dialRTMP handshakes with addr.
func dialRTMP(t *testing.T, addr string) *rtmpConn {
	return &rtmpConn{Conn: rawConn(t, addr, true), rd: chunk.NewReader(chunk.ReaderConfig{})}
}

// next returns the next message from the server.
func (c *rtmpConn) next(deadline time.Time) (*chunk.Message, error) {
	_ = c.SetReadDeadline(deadline)
	for {
		if c.off < len(c.in) {
			n, msg, err := c.rd.Read(c.in[c.off:])
			c.off += n
			if err != nil {
				return nil, err
			}
			if msg != nil {
				return msg, nil
			}
		}
		c.in = append(c.in[:0], c.in[c.off:]...)
		c.off = 0
		var buf [16 << 10]byte
		n, err := c.Read(buf[:])
		if err != nil {
			return nil, err
		}
		c.in = append(c.in, buf[:n]...)
	}
}

// await reads until a command named one of names arrives (within 5 s) and
// returns its values.
func (c *rtmpConn) await(names ...string) ([]any, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg, err := c.next(deadline)
		if err != nil {
			return nil, fmt.Errorf("waiting for %v: %w", names, err)
		}
		if msg.TypeID != chunk.TypeCommandAMF0 {
			continue
		}
		vals, err := amf.DecodeAll(msg.Payload)
		if err != nil || len(vals) == 0 {
			return nil, fmt.Errorf("bad command from the server: %v", err)
		}
		for _, n := range names {
			if vals[0] == n {
				return vals, nil
			}
		}
	}
}

// status returns the code of an onStatus or _error reply.
func status(vals []any) string {
	for _, v := range vals {
		if o, ok := v.(amf.Object); ok {
			if c := o.String("code"); c != "" {
				return c
			}
		}
	}
	return ""
}

// commandOn is command on a message stream.
func commandOn(t *testing.T, streamID uint32, vals ...any) []byte {
	t.Helper()
	body, err := amf.AppendAll(nil, vals...)
	if err != nil {
		t.Fatal(err)
	}
	return chunk.AppendMessage(nil, chunk.Header{CSID: 8, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0, StreamID: streamID}, body, chunk.DefaultChunkSize)
}

// connected is a handshaken connection whose connect to app live was
// answered.
func connected(t *testing.T, addr string) *rtmpConn {
	t.Helper()
	c := dialRTMP(t, addr)
	if _, err := c.Write(connectCmd(t, addr)); err != nil {
		t.Fatal(err)
	}
	if vals, err := c.await("_result", "_error"); err != nil || vals[0] != "_result" {
		t.Fatalf("connect: %v %v", vals, err)
	}
	return c
}

// publishing is a connection publishing stream, answered with
// NetStream.Publish.Start.
func publishing(t *testing.T, addr, stream string) *rtmpConn {
	t.Helper()
	c := connected(t, addr)
	b := append(command(t, "createStream", 2.0, nil), commandOn(t, 1, "publish", 3.0, nil, stream, "live")...)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	if vals, err := c.await("onStatus"); err != nil || status(vals) != "NetStream.Publish.Start" {
		t.Fatalf("publish %s: %v %v", stream, vals, err)
	}
	return c
}

// probeEnv is the server under probes and what watches it.
type probeEnv struct {
	s     *server
	hooks *hookRecorder
	w     *watcher
}

// warns counts the server's WARN lines that contain substr.
func (e *probeEnv) warns(substr string) int {
	n := 0
	for _, l := range strings.Split(e.s.log.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// expectWarn waits up to 3 s for more than before WARN lines with substr.
func (e *probeEnv) expectWarn(t *testing.T, before int, substr string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for e.warns(substr) <= before {
		if time.Now().After(deadline) {
			t.Errorf("no WARN line with %q", substr)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refused sends b on a new handshaken connection (connected first with
// connect) and expects the server to close it with a WARN line containing
// logged.
func (e *probeEnv) refused(t *testing.T, connect bool, b []byte, logged string) {
	t.Helper()
	before := e.warns(logged)
	var c net.Conn
	if connect {
		c = connected(t, e.s.addr)
	} else {
		c = rawConn(t, e.s.addr, true)
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(b) // may fail once the server closed
	expectClosed(t, c)
	c.Close()
	e.expectWarn(t, before, logged)
}

// probe runs fn against the server and checks what it left behind.
func (e *probeEnv) probe(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		baseRSS, baseFDs := e.s.rssKB(), e.s.fds()
		start := time.Now()
		fn(t)
		deadline := time.Now().Add(10 * time.Second)
		for e.s.fds() > baseFDs+5 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case <-e.s.done:
			t.Fatal("the server exited")
		default:
		}
		e.w.waitFrames(t, e.w.frames()+5, 10*time.Second)
		gap, _ := e.w.maxGap(start)
		rss, fds := e.s.rssKB(), e.s.fds()
		t.Logf("%s: canary longest gap %s, RSS %+d KiB (%d -> %d), fds %+d (%d -> %d), took %s", name,
			gap.Round(time.Millisecond), rss-baseRSS, baseRSS, rss, fds-baseFDs, baseFDs, fds, time.Since(start).Round(time.Millisecond))
		if gap > time.Second {
			t.Errorf("canary's longest gap %s, want at most 1s", gap)
		}
		if rss-baseRSS > 20<<10 {
			t.Errorf("RSS grew by %d KiB, want at most 20 MiB", rss-baseRSS)
		}
		if fds-baseFDs > 5 {
			t.Errorf("%d more file descriptors than before", fds-baseFDs)
		}
	})
}

// TestProbeBattery runs the probes against one server and one canary.
func TestProbeBattery(t *testing.T) {
	hooks := startHookRecorder(t)
	s := startServerBin(t, plainServerBin, probeConfig(hooks.URL))
	e := &probeEnv{s: s, hooks: hooks, w: canary(t, s)}

	e.probe(t, "slow handshakes", e.slowHandshakes)
	e.probe(t, "silent connections", e.silentConnections)
	e.probe(t, "random bytes", e.randomBytes)
	e.probe(t, "set chunk size", e.setChunkSize)
	e.probe(t, "messages over the limits", e.messagesOverLimits)
	e.probe(t, "chunk stream ids", e.chunkStreamIDs)
	e.probe(t, "deep AMF", e.deepAMF)
	e.probe(t, "AMF lengths of 4 GiB", e.hugeAMFLengths)
	e.probe(t, "10000 createStream", e.manyCreateStreams)
	e.probe(t, "busy name", e.busyName)
	e.probe(t, "64 KiB names", e.longNames)
	e.probe(t, "odd names and hooks", e.oddNames)
	e.probe(t, "timestamps", e.timestamps)
	if strings.Contains(s.log.String(), "panic") || strings.Contains(s.log.String(), "level=ERROR") {
		t.Error("the server logged a panic or an ERROR")
	}
}

// slowHandshakes: clients that send the handshake and connect a byte at a
// time are served; ones that trickle slower than handshake_timeout are
// closed with a line naming it.
func (e *probeEnv) slowHandshakes(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.trickle(t, i < 10)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if !e.s.waitLog("handshake_timeout", time.Second) {
		t.Error("no log line naming handshake_timeout")
	}
}

// trickle sends C0C1, C2 and a connect one byte per write: quickly
// (expecting the connect's _result), or a byte every 200 ms (expecting
// the server to close the connection after handshake_timeout).
func (e *probeEnv) trickle(t *testing.T, quick bool) error {
	c, err := net.DialTimeout("tcp", e.s.addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	hs := chunk.NewClientHandshake(false)
	send := func(b []byte) error {
		for i := range b {
			if _, err := c.Write(b[i : i+1]); err != nil {
				return err
			}
			if !quick {
				time.Sleep(200 * time.Millisecond)
			} else if i%256 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	}
	if !quick {
		start := time.Now()
		_ = c.SetDeadline(start.Add(6 * time.Second))
		if err := send(hs.C0C1()); err == nil {
			return errors.New("a handshake trickled over 6 s was not closed")
		}
		return nil
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := send(hs.C0C1()); err != nil {
		return fmt.Errorf("slow handshake: %w", err)
	}
	buf := make([]byte, 3073)
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("slow handshake: S0S1S2: %w", err)
	}
	_, c2, _, err := hs.Feed(buf)
	if err != nil {
		return err
	}
	if err := send(append(c2, connectCmd(t, e.s.addr)...)); err != nil {
		return fmt.Errorf("slow connect: %w", err)
	}
	rc := &rtmpConn{Conn: c, rd: chunk.NewReader(chunk.ReaderConfig{})}
	if vals, err := rc.await("_result", "_error"); err != nil || vals[0] != "_result" {
		return fmt.Errorf("slow connect answered %v, %v", vals, err)
	}
	return nil
}

// silentConnections: connections that handshake (or connect) and then say
// nothing are closed after handshake_timeout (idle_timeout).
func (e *probeEnv) silentConnections(t *testing.T) {
	conns := make([]net.Conn, 0, 120)
	for i := range 120 {
		if i < 100 {
			conns = append(conns, rawConn(t, e.s.addr, true))
		} else {
			conns = append(conns, connected(t, e.s.addr))
		}
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !closedWithin(c, 6*time.Second) {
				t.Error("the server did not close a connection within 6 s")
			}
			c.Close()
		}()
	}
	wg.Wait()
	for _, want := range []string{"handshake_timeout", "idle_timeout"} {
		if !e.s.waitLog(want, time.Second) {
			t.Errorf("no log line naming %s", want)
		}
	}
}

// randomBytes: random bytes instead of a handshake (with and without a
// valid version byte) and after one; every connection is closed.
func (e *probeEnv) randomBytes(t *testing.T) {
	before := e.warns("bad input")
	var wg sync.WaitGroup
	for i := range 40 {
		rng := rand.New(rand.NewPCG(uint64(i), 8))
		junk := make([]byte, 512+rng.IntN(8192))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		if i%4 == 0 {
			junk[0] = 3 // a valid version: the rest is read as C1, C2 and chunks
		}
		c := rawConn(t, e.s.addr, i >= 20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write(junk)
			if !closedWithin(c, 6*time.Second) {
				t.Error("the server did not close a connection within 6 s")
			}
			c.Close()
		}()
	}
	wg.Wait()
	t.Logf("%d of 40 closed with a bad-input WARN line, the others by timeouts", e.warns("bad input")-before)
	if e.warns("bad input") == before {
		t.Error("no WARN line for random input")
	}
}

// setChunkSizeMsg is a Set Chunk Size message with the raw 32-bit value v
// (AppendSetChunkSize would clear the top bit).
func setChunkSizeMsg(v uint32) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 0, 4, chunk.TypeSetChunkSize, 0, 0, 0, 0}
	return binary.BigEndian.AppendUint32(b, v)
}

// setChunkSize: 0, 2^31-1 and 2^32-1 are refused (our limit is 16 MiB - 1,
// the largest message); 1 is served, even for a connect in 1-byte chunks.
func (e *probeEnv) setChunkSize(t *testing.T) {
	for _, v := range []uint32{0, 1<<31 - 1, 1<<32 - 1} {
		e.refused(t, false, setChunkSizeMsg(v), "set chunk size")
	}
	c := dialRTMP(t, e.s.addr)
	body, _ := amf.AppendAll(nil, "connect", 1.0, amf.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://" + e.s.addr + "/live"}})
	b := setChunkSizeMsg(1)
	b = chunk.AppendMessage(b, chunk.Header{CSID: 3, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0}, body, 1)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	if vals, err := c.await("_result", "_error"); err != nil || vals[0] != "_result" {
		t.Fatalf("connect in 1-byte chunks: %v %v", vals, err)
	}
	c.Close()
}

// messagesOverLimits: a command over max_command_size before publish and
// media over max_message_size after are refused at their first chunk.
func (e *probeEnv) messagesOverLimits(t *testing.T) {
	header := func(typeID uint8, length uint32) []byte {
		return []byte{0x04, 0, 0, 0, byte(length >> 16), byte(length >> 8), byte(length), typeID, 1, 0, 0, 0}
	}
	e.refused(t, true, header(chunk.TypeCommandAMF0, 64<<10+1), "max_command_size")
	c := publishing(t, e.s.addr, "big")
	before := e.warns("max_message_size")
	_, _ = c.Write(header(chunk.TypeVideo, 1<<24-1))
	expectClosed(t, c)
	c.Close()
	e.expectWarn(t, before, "max_message_size")
}

// chunkStreamIDs: 20,000 chunk stream ids on one connection; the server
// keeps state for at most 64 and closes the connection.
func (e *probeEnv) chunkStreamIDs(t *testing.T) {
	var b []byte
	for csid := uint32(2); csid < 20002; csid++ {
		switch {
		case csid < 64:
			b = append(b, byte(csid))
		case csid < 320:
			b = append(b, 0, byte(csid-64))
		default:
			b = append(b, 1, byte(csid-64), byte((csid-64)>>8))
		}
		b = append(b, 0, 0, 0, 0, 0, 4, chunk.TypeAck, 0, 0, 0, 0, 0, 0, 0, 1)
	}
	e.refused(t, true, b, "too many chunk streams")
}

// nested returns an AMF0 value nested depth levels deep: objects holding
// one property with an empty name, or strict arrays of one element.
func nested(depth int, arrays bool) []byte {
	var b []byte
	for range depth {
		if arrays {
			b = append(b, 0x0a, 0, 0, 0, 1)
		} else {
			b = append(b, 0x03, 0, 0)
		}
	}
	b = append(b, 0x05) // null at the bottom
	if !arrays {
		for range depth {
			b = append(b, 0, 0, 0x09)
		}
	}
	return b
}

// commandBody is a command message with AMF0 body on message stream sid.
func commandBody(sid uint32, body []byte) []byte {
	return chunk.AppendMessage(nil, chunk.Header{CSID: 3, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0, StreamID: sid}, body, chunk.DefaultChunkSize)
}

// deepAMF: AMF nested 100,000 deep in a connect (over max_command_size),
// 10,000 deep within it (objects and arrays), and 100,000 deep in a
// publisher's command, which may be 8 MiB.
func (e *probeEnv) deepAMF(t *testing.T) {
	prefix, _ := amf.AppendAll(nil, "connect", 1.0)
	e.refused(t, false, commandBody(0, append(prefix, nested(100000, false)...)), "max_command_size")
	e.refused(t, false, commandBody(0, append(prefix, nested(10000, false)...)), "levels")
	e.refused(t, false, commandBody(0, append(prefix, nested(10000, true)...)), "levels")

	c := publishing(t, e.s.addr, "deep")
	before := e.warns("levels")
	body, _ := amf.AppendAll(nil, "FCUnpublish", 4.0, nil)
	_, _ = c.Write(chunk.AppendSetChunkSize(nil, 65536))
	msg := chunk.AppendMessage(nil, chunk.Header{CSID: 3, TypeID: chunk.TypeCommandAMF0, StreamID: 0,
		Length: uint32(len(body) + len(nested(100000, false)))}, append(body, nested(100000, false)...), 65536)
	_, _ = c.Write(msg)
	expectClosed(t, c)
	c.Close()
	e.expectWarn(t, before, "levels")
}

// hugeAMFLengths: AMF long strings, strings in objects and strict arrays
// declaring 4 GiB - 1 in a connect and a play are refused; an ECMA array
// count of 4 GiB - 1 is only advisory and the connect is served.
func (e *probeEnv) hugeAMFLengths(t *testing.T) {
	connectWith := func(value []byte) []byte {
		b, _ := amf.AppendAll(nil, "connect", 1.0)
		b = append(b, 0x03, 0, 3, 'a', 'p', 'p')
		b = append(b, value...)
		return commandBody(0, b)
	}
	for _, v := range [][]byte{
		{0x0c, 0xff, 0xff, 0xff, 0xff, 'l', 'i', 'v', 'e'},          // long string
		{0x0f, 0xff, 0xff, 0xff, 0xff, '<', 'x', '>'},               // XML document
		{0x0a, 0xff, 0xff, 0xff, 0xff, 0x05, 0x05},                  // strict array
		{0x02, 0xff, 0xff, 'l', 'i', 'v', 'e'},                      // string of 64 KiB - 1
		{0x10, 0xff, 0xff, 'x', 0, 0, 9},                            // typed object class name
		{0x11, 0x06, 0xff, 0xff, 0xff, 0xff, 'l', 'i', 'v', 'e', 0}, // AMF3 string
	} {
		e.refused(t, false, connectWith(v), "amf")
	}
	// An ECMA array's count is advisory.
	c := dialRTMP(t, e.s.addr)
	b, _ := amf.AppendAll(nil, "connect", 1.0)
	b = append(b, 0x08, 0xff, 0xff, 0xff, 0xff)
	b = append(b, 0, 3, 'a', 'p', 'p', 0x02, 0, 4, 'l', 'i', 'v', 'e', 0, 0, 9)
	if _, err := c.Write(commandBody(0, b)); err != nil {
		t.Fatal(err)
	}
	if vals, err := c.await("_result", "_error"); err != nil || vals[0] != "_result" {
		t.Errorf("connect with an ECMA array count of 4 GiB - 1: %v %v", vals, err)
	}
	c.Close()
	// A play whose stream name is a long string of 4 GiB - 1.
	play, _ := amf.AppendAll(nil, "play", 3.0, nil)
	play = append(play, 0x0c, 0xff, 0xff, 0xff, 0xff, 'x')
	e.refused(t, true, append(command(t, "createStream", 2.0, nil), commandBody(1, play)...), "amf")
}

// manyCreateStreams: 10,000 createStream calls on one connection, sent in
// batches while the replies are read: each is answered, the connection
// stays and costs nothing per call.
func (e *probeEnv) manyCreateStreams(t *testing.T) {
	c := connected(t, e.s.addr)
	const calls = 10000
	got := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for n := 0; n < calls; n++ {
			vals, err := c.await("_result")
			if err != nil {
				got <- fmt.Errorf("after %d answers: %w", n, err)
				return
			}
			if len(vals) < 4 || vals[3] != 1.0 {
				got <- fmt.Errorf("createStream answered %v", vals)
				return
			}
			if time.Now().After(deadline) {
				got <- errors.New("too slow")
				return
			}
		}
		got <- nil
	}()
	var batch []byte
	for i := range calls {
		batch = append(batch, command(t, "createStream", float64(i+2), nil)...)
		if len(batch) > 32<<10 || i == calls-1 {
			if _, err := c.Write(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if !stillOpen(c) {
		t.Error("the connection was closed after 10,000 createStream calls")
	}
	c.Close()
}

// busyName: publishing the canary's stream again is refused with
// NetStream.Publish.BadName and the canary plays on.
func (e *probeEnv) busyName(t *testing.T) {
	c := connected(t, e.s.addr)
	b := append(command(t, "createStream", 2.0, nil), commandOn(t, 1, "publish", 3.0, nil, "canary", "live")...)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	if vals, err := c.await("onStatus"); err != nil || status(vals) != "NetStream.Publish.BadName" {
		t.Fatalf("publish of a busy name: %v %v", vals, err)
	}
	expectClosed(t, c)
	c.Close()
	if !e.s.waitLog("refused: stream already has a publisher", time.Second) {
		t.Error("no log line for the busy name")
	}
}

// longNames: a 65,000-byte stream name in publish and play, and app in
// connect, are refused with a WARN line naming the limit; the hooks never
// get them.
func (e *probeEnv) longNames(t *testing.T) {
	long := strings.Repeat("n", 65000)
	hooks := e.hooks.count()
	for _, cmd := range []string{"publish", "play"} {
		b := append(command(t, "createStream", 2.0, nil), commandOn(t, 1, cmd, 3.0, nil, long, "live")...)
		e.refused(t, true, b, "bytes long")
	}
	b := command(t, "connect", 1.0, amf.Object{{Key: "app", Value: long}, {Key: "tcUrl", Value: "rtmp://" + e.s.addr + "/live"}})
	e.refused(t, false, b, "bytes long")
	for _, body := range e.hooks.since(hooks) {
		if bytes.Contains(body, []byte(long)) {
			t.Errorf("a hook got a 65,000-byte name")
		}
	}
}

// oddNames: path-like, script-like and percent-encoded names are names
// like any other: served, and the hooks get them exactly (JSON-escaped on
// the wire). Names with control characters (newline, NUL) or invalid
// UTF-8 are refused with a WARN line before any hook is called: no client
// needs them, a hook could not get them exactly (JSON turns invalid UTF-8
// into U+FFFD, so two names would look the same) and hook services,
// scripts and log readers downstream should not have to defend against
// them.
func (e *probeEnv) oddNames(t *testing.T) {
	good := []string{"../../etc/passwd", "<script>alert(1)</script>", "%00", `a"b\c`, "流"}
	bad := []string{"a\nb", "a\x00b", "a\rb\x1b[31m", "\xff\xfe"}
	hookField := func(n int, action, field string) (string, bool) {
		for _, body := range e.hooks.since(n) {
			var req map[string]any
			if err := json.Unmarshal(body, &req); err != nil {
				t.Errorf("hook body is not JSON: %v: %q", err, body)
				continue
			}
			if req["action"] == action {
				v, ok := req[field].(string)
				return v, ok
			}
		}
		return "", false
	}
	for _, name := range good {
		// As an app.
		n := e.hooks.count()
		c := dialRTMP(t, e.s.addr)
		if _, err := c.Write(command(t, "connect", 1.0, amf.Object{{Key: "app", Value: name}, {Key: "tcUrl", Value: "rtmp://" + e.s.addr + "/" + name}})); err != nil {
			t.Fatal(err)
		}
		if vals, err := c.await("_result", "_error"); err != nil || vals[0] != "_result" {
			t.Errorf("connect to app %q: %v %v", name, vals, err)
		} else if got, _ := hookField(n, "on_connect", "app"); got != strings.Trim(name, "/") {
			t.Errorf("on_connect got app %q, want %q", got, name)
		}
		c.Close()
		// As a stream, published and played.
		n = e.hooks.count()
		pub := publishing(t, e.s.addr, name)
		if got, _ := hookField(n, "on_publish", "stream"); got != name {
			t.Errorf("on_publish got stream %q, want %q", got, name)
		}
		n = e.hooks.count()
		pc := dialRTMP(t, e.s.addr)
		b := append(connectCmd(t, e.s.addr), command(t, "createStream", 2.0, nil)...)
		if _, err := pc.Write(append(b, commandOn(t, 1, "play", 3.0, nil, name, -2000.0)...)); err != nil {
			t.Fatal(err)
		}
		if vals, err := pc.await("onStatus"); err != nil || !strings.HasPrefix(status(vals), "NetStream.Play.") {
			t.Errorf("play %q: %v %v", name, vals, err)
		} else if got, _ := hookField(n, "on_play", "stream"); got != name {
			t.Errorf("on_play got stream %q, want %q", got, name)
		}
		pc.Close()
		pub.Close()
	}
	// The hooks' JSON escapes what would be markup.
	for _, body := range e.hooks.since(0) {
		if bytes.Contains(body, []byte("<script>")) {
			t.Errorf("hook body with raw markup: %s", body)
			break
		}
	}
	t.Logf("%d odd names served as apps and streams, their hooks' fields exact", len(good))
	for _, name := range bad {
		n := e.hooks.count()
		e.refused(t, false, command(t, "connect", 1.0, amf.Object{{Key: "app", Value: name}, {Key: "tcUrl", Value: "rtmp://" + e.s.addr + "/live"}}), "app")
		b := append(command(t, "createStream", 2.0, nil), commandOn(t, 1, "publish", 3.0, nil, name, "live")...)
		e.refused(t, true, b, "stream name")
		b = append(command(t, "createStream", 2.0, nil), commandOn(t, 1, "play", 3.0, nil, name, -2000.0)...)
		e.refused(t, true, b, "stream name")
		b = command(t, "connect", 1.0, amf.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://" + e.s.addr + "/live?vhost=" + name}})
		e.refused(t, false, b, "tcUrl")
		// Only the connects with a clean app reached on_connect.
		for _, body := range e.hooks.since(n) {
			var req map[string]any
			_ = json.Unmarshal(body, &req)
			if req["action"] != "on_connect" || req["app"] != "live" || strings.Contains(fmt.Sprint(req["tcUrl"]), "vhost") {
				t.Errorf("a hook got a request for the refused name %q: %s", name, body)
			}
		}
	}
}

// timestamps: a publisher whose timestamps go backwards, jump by 2^31 and
// wrap around 2^32 while a player plays: the player keeps getting video,
// on a timeline that only goes forward.
func (e *probeEnv) timestamps(t *testing.T) {
	pub, err := bench.Dial(e.s.url("live/ts"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(); err != nil {
		t.Fatal(err)
	}
	seq := []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}
	key := append([]byte{0x17, 1, 0, 0, 0}, make([]byte, 3000)...)
	inter := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 500)...)
	if err := pub.WriteMessage(chunk.TypeVideo, 0, seq); err != nil {
		t.Fatal(err)
	}
	var w *watcher
	phases := []struct {
		name  string
		start uint32
	}{
		{"start", 1000}, {"backwards", 0}, {"jump by 2^31", 1<<31 + 500}, {"wrap", 1<<32 - 300}, {"after", 2000},
	}
	for i, ph := range phases {
		before := 0
		if w != nil {
			before = w.frames()
		}
		for f := range 15 {
			p := inter
			if f == 0 {
				p = key
			}
			ts := ph.start + uint32(f*40)
			if err := pub.WriteMessage(chunk.TypeVideo, ts, p); err != nil {
				t.Fatal(err)
			}
			if err := pub.WriteMessage(chunk.TypeAudio, ts+5, []byte{0xaf, 1, 0, 0}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(40 * time.Millisecond)
		}
		if i == 0 {
			w = watch(t, e.s.url("live/ts"))
			continue
		}
		w.waitFrames(t, before+10, 5*time.Second)
	}
	gap, mono := w.maxGap(time.Time{})
	w.mu.Lock()
	t.Logf("player of the stream: %d frames, longest gap %s, timestamps monotonic %v, first %d last %d",
		len(w.ts), gap.Round(time.Millisecond), mono, w.ts[0], w.ts[len(w.ts)-1])
	w.mu.Unlock()
	if !mono {
		t.Error("the player's timestamps went back")
	}
}
