package loop

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
)

// The session fuzz target drives the server's gnet handler (OnOpen,
// OnTraffic, OnClose) with a client's bytes, as the event loop does: the
// handshake, chunks and commands of one connection, next to a publisher
// of "live/pre" and a player of "live/fuzz" so that a fuzzed play or
// publish meets a live stream and the fan-out writes real sockets.

// fuzzLoop is an event loop that runs the tasks the server schedules
// (fan-out flushes, resumes) when the test says.
type fuzzLoop struct {
	gnet.EventLoop
	mu    sync.Mutex
	tasks []gnet.Runnable
}

func (l *fuzzLoop) Execute(_ context.Context, r gnet.Runnable) error {
	l.mu.Lock()
	l.tasks = append(l.tasks, r)
	l.mu.Unlock()
	return nil
}

// run runs the queued tasks, and those they queue, a bounded number of times.
func (l *fuzzLoop) run(t testing.TB) {
	for range 100 {
		l.mu.Lock()
		tasks := l.tasks
		l.tasks = nil
		l.mu.Unlock()
		if len(tasks) == 0 {
			return
		}
		for _, r := range tasks {
			if err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("tasks kept scheduling tasks")
}

// fuzzConn is a client connection: its input is what the test feeds, what
// the server writes with Write is dropped, and the fan-out's direct writes
// go to one end of a socket pair the test drains.
type fuzzConn struct {
	gnet.Conn
	loop     *fuzzLoop
	ctx      any
	in       []byte
	fd, peer int
	closed   bool // Close was called: the server runs OnClose next
	written  int  // bytes the fan-out wrote to the socket
	capture  bool // keep what the server writes with Write in replies
	replies  []byte
}

var fuzzAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

func newFuzzConn(t testing.TB, l *fuzzLoop) *fuzzConn {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return &fuzzConn{loop: l, fd: fds[0], peer: fds[1], ctx: &listener{proto: protoRTMP}}
}

func (c *fuzzConn) Context() any              { return c.ctx }
func (c *fuzzConn) SetContext(v any)          { c.ctx = v }
func (c *fuzzConn) RemoteAddr() net.Addr      { return fuzzAddr }
func (c *fuzzConn) LocalAddr() net.Addr       { return fuzzAddr }
func (c *fuzzConn) EventLoop() gnet.EventLoop { return c.loop }
func (c *fuzzConn) Fd() int                   { return c.fd }
func (c *fuzzConn) OutboundBuffered() int     { return 0 }
func (c *fuzzConn) Write(b []byte) (int, error) {
	if c.capture {
		c.replies = append(c.replies, b...)
	}
	return len(b), nil
}
func (c *fuzzConn) Wake(gnet.AsyncCallback) error { return nil }
func (c *fuzzConn) Close() error {
	c.closed = true
	return nil
}

func (c *fuzzConn) Peek(n int) ([]byte, error) {
	if n < 0 || n > len(c.in) {
		return c.in, nil
	}
	return c.in[:n], nil
}

// Discard discards n bytes; as gnet's, 0 discards everything.
func (c *fuzzConn) Discard(n int) (int, error) {
	if n <= 0 || n > len(c.in) {
		n = len(c.in)
	}
	c.in = c.in[n:]
	return n, nil
}

// drain reads what the fan-out wrote to the connection's socket.
func (c *fuzzConn) drain() {
	var buf [64 << 10]byte
	for {
		n, err := unix.Read(c.peer, buf[:])
		if n <= 0 || err != nil {
			return
		}
		c.written += n
	}
}

// errorHandler counts ERROR log lines: the server logs at ERROR only for
// its own bugs, never for what a client sent.
type errorHandler struct {
	mu     sync.Mutex
	errors []string
}

func (h *errorHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.errors = append(h.errors, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *errorHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorHandler) WithGroup(string) slog.Handler      { return h }

// fuzzServer is a server whose connections the test drives.
type fuzzServer struct {
	t     testing.TB
	srv   *Server
	loop  *fuzzLoop
	log   *errorHandler
	conns []*fuzzConn
}

func newFuzzServer(t testing.TB, cfg *conf.Config) *fuzzServer {
	h := &errorHandler{}
	return &fuzzServer{t: t, srv: New(cfg, slog.New(h)), loop: &fuzzLoop{}, log: h}
}

// open accepts a connection.
func (fs *fuzzServer) open() *fuzzConn {
	c := newFuzzConn(fs.t, fs.loop)
	if _, act := fs.srv.OnOpen(c); act != gnet.None {
		fs.t.Fatalf("connection refused at open: %v", act)
	}
	fs.conns = append(fs.conns, c)
	return c
}

// feed delivers b to c as one read and runs what it scheduled; it
// reports false once the connection is closed.
func (fs *fuzzServer) feed(c *fuzzConn, b []byte) bool {
	if c.ctx == nil {
		return false
	}
	c.in = append(c.in, b...)
	before := len(c.in)
	act := fs.srv.OnTraffic(c)
	if len(c.in) > before {
		fs.t.Fatalf("input grew from %d to %d bytes", before, len(c.in))
	}
	fs.loop.run(fs.t)
	for _, o := range fs.conns {
		o.drain()
	}
	if act == gnet.Close || c.closed {
		fs.close(c)
		return false
	}
	return true
}

// close runs OnClose for c, as gnet does after a Close.
func (fs *fuzzServer) close(c *fuzzConn) {
	if c.ctx == nil {
		return
	}
	fs.srv.OnClose(c, nil)
	c.ctx = nil
	fs.loop.run(fs.t)
}

// shutdown closes every connection and checks that nothing is left held.
func (fs *fuzzServer) shutdown() {
	for _, c := range fs.conns {
		fs.close(c)
	}
	s := fs.srv
	if n := s.conns.Load(); n != 0 {
		fs.t.Errorf("%d connections counted after all closed", n)
	}
	if n := s.inflight.Load(); n != 0 {
		fs.t.Errorf("%d inflight bytes counted after all closed", n)
	}
	if n := s.players.Load(); n != 0 {
		fs.t.Errorf("%d players counted after all closed", n)
	}
	if n := s.hubs.Len(); n != 0 {
		fs.t.Errorf("%d streams left after all closed", n)
	}
	if n := len(s.groups); n != 0 {
		fs.t.Errorf("%d fan-out groups left after all closed", n)
	}
	fs.log.mu.Lock()
	defer fs.log.mu.Unlock()
	if len(fs.log.errors) > 0 {
		fs.t.Errorf("ERROR logged: %q", fs.log.errors)
	}
}

// fuzzHandshake is a simple-handshake C0+C1 and C2.
var fuzzHandshake = append([]byte{3}, make([]byte, 2*chunk.HandshakeSize)...)

// clientSession builds what a client sends after the handshake, with
// its commands on chunk stream 3 and media on 4 (audio) and 6 (video).
type clientSession struct {
	b   []byte
	w   *chunk.Writer
	txn float64
}

func newClientSession() *clientSession {
	return &clientSession{w: chunk.NewWriter(chunk.DefaultChunkSize)}
}

func (cs *clientSession) chunkSize(n int) *clientSession {
	cs.b = chunk.AppendSetChunkSize(cs.b, uint32(n))
	cs.w.SetChunkSize(n)
	return cs
}

func (cs *clientSession) command(streamID uint32, name string, args ...any) *clientSession {
	cs.txn++
	body, err := amf.AppendAll(nil, append([]any{name, cs.txn}, args...)...)
	if err != nil {
		panic(err) // the seeds are built from fixed values
	}
	cs.b = cs.w.Append(cs.b, chunk.Header{CSID: 3, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0, StreamID: streamID}, body)
	return cs
}

func (cs *clientSession) media(typeID uint8, ts uint32, payload []byte) *clientSession {
	csid := uint32(4)
	if typeID == chunk.TypeVideo {
		csid = 6
	}
	cs.b = cs.w.Append(cs.b, chunk.Header{CSID: csid, Timestamp: ts, Length: uint32(len(payload)), TypeID: typeID, StreamID: 1}, payload)
	return cs
}

func (cs *clientSession) connect() *clientSession {
	return cs.command(0, "connect", amf.Object{
		{Key: "app", Value: "live"}, {Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: "FMLE/3.0 (compatible; Lavf59.27.100)"},
		{Key: "tcUrl", Value: "rtmp://127.0.0.1:1935/live"},
	})
}

// publishSession is what ffmpeg sends to publish stream: the commands,
// metadata, sequence headers, frames of video with audio and, with end,
// the unpublish.
func publishSession(stream string, frames int, end bool) []byte {
	cs := newClientSession().chunkSize(4096).connect().
		command(0, "releaseStream", nil, stream).
		command(0, "FCPublish", nil, stream).
		command(0, "createStream", nil).
		command(1, "publish", nil, stream, "live")
	meta, _ := amf.AppendAll(nil, "@setDataFrame", "onMetaData", amf.ECMAArray{
		{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0}, {Key: "framerate", Value: 25.0},
		{Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0}, {Key: "encoder", Value: "Lavf59.27.100"},
	})
	cs.media(chunk.TypeDataAMF0, 0, meta).
		media(chunk.TypeVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x0d, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x0d, 1, 0, 2, 0x68, 0xee}).
		media(chunk.TypeAudio, 0, []byte{0xaf, 0, 0x12, 0x10})
	for i := range frames {
		ts := uint32(i * 40)
		frame := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 300)...)
		if i%10 == 0 {
			frame = append([]byte{0x17, 1, 0, 0, 0}, make([]byte, 2000)...)
		}
		cs.media(chunk.TypeVideo, ts, frame).media(chunk.TypeAudio, ts+3, append([]byte{0xaf, 1}, make([]byte, 100)...))
	}
	if end {
		cs.command(0, "FCUnpublish", nil, stream).command(0, "deleteStream", nil, 1.0)
	}
	return cs.b
}

// playSession is what ffmpeg sends to play stream and, with end, a pause,
// a resume and the end.
func playSession(stream string, end bool) []byte {
	cs := newClientSession().connect().
		command(0, "createStream", nil).
		command(0, "getStreamLength", nil, stream).
		command(1, "play", nil, stream, -2000.0)
	cs.b = chunk.AppendSetBufferLength(cs.b, 1, 3000)
	if end {
		cs.b = chunk.AppendUserControl(cs.b, chunk.EventPingResponse, 1234)
		cs.command(1, "pause", nil, true, 0.0).command(1, "pause", nil, false, 0.0).
			command(0, "closeStream", nil).command(0, "deleteStream", nil, 1.0)
	}
	return cs.b
}

// fuzzConfigs are the servers the target runs: paced merged writes (the
// default) and writes at every frame, chosen by the fuzz input.
func fuzzConfigs(t testing.TB) [2]*conf.Config {
	var out [2]*conf.Config
	for i, window := range []time.Duration{350 * time.Millisecond, 0} {
		cfg, err := conf.Default()
		if err != nil {
			t.Fatal(err)
		}
		v := *cfg.Vhosts[conf.DefaultVhost]
		v.MergedWrite = window
		cfg.Vhosts = map[string]*conf.Vhost{conf.DefaultVhost: &v}
		cfg.MaxInflightBytes = 1 << 20 // small, so the budget's reclaim runs too
		out[i] = cfg
	}
	return out
}

// FuzzSession feeds data to a server connection. Bits of mode: 0: data
// starts with the handshake (else a valid one is sent first); 1: writes at
// every frame (else paced merged writes); 2-7: the size of each read
// (1 << their low 4 bits, or everything at once when they are all set).
func FuzzSession(f *testing.F) {
	pub, play := publishSession("fuzz", 25, true), playSession("pre", true)
	f.Add(pub, uint8(0xfc))
	f.Add(pub, uint8(0x10|2))
	f.Add(play, uint8(0xfc|2))
	f.Add(play, uint8(0x04))
	f.Add(append(append([]byte(nil), fuzzHandshake...), pub...), uint8(0xfd))
	f.Add(append(append([]byte(nil), fuzzHandshake[:100]...), 0xff), uint8(0x01))
	f.Add(append(newClientSession().connect().command(0, "createStream", nil).command(1, "publish", nil, "pre", "live").b, pub[40:]...), uint8(0xfc))
	cfgs := fuzzConfigs(f)
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		runSession(t, cfgs, data, mode)
	})
}

// runSession runs one FuzzSession input and returns the fuzzed connection
// and the player of live/fuzz.
func runSession(t *testing.T, cfgs [2]*conf.Config, data []byte, mode uint8) (c, view *fuzzConn) {
	fs := newFuzzServer(t, cfgs[mode>>1&1])
	pre := fs.open()
	if !fs.feed(pre, append(append([]byte(nil), fuzzHandshake...), publishSession("pre", 10, false)...)) {
		t.Fatal("the publisher of live/pre was closed")
	}
	view = fs.open()
	if !fs.feed(view, append(append([]byte(nil), fuzzHandshake...), playSession("fuzz", false)...)) {
		t.Fatal("the player of live/fuzz was closed")
	}
	c = fs.open()
	if mode&1 == 0 && !fs.feed(c, fuzzHandshake) {
		t.Fatal("closed after a valid handshake")
	}
	step := 1 << (mode >> 2 & 15)
	if mode>>2 == 0x3f {
		step = len(data) + 1
	}
	for off := 0; off < len(data); off += step {
		if !fs.feed(c, data[off:min(off+step, len(data))]) {
			break
		}
	}
	fs.shutdown()
	return c, view
}

// The seeds do what they say: the publish session's media reaches the
// player of live/fuzz, the play session gets live/pre's, read at once or
// a few bytes at a time.
func TestSessionSeedsPublishAndPlay(t *testing.T) {
	cfgs := fuzzConfigs(t)
	for _, mode := range []uint8{0xfc, 0x10 | 2} {
		_, view := runSession(t, cfgs, publishSession("fuzz", 25, true), mode)
		if view.written < 25*300 {
			t.Errorf("mode %#x: the player of the published stream got %d bytes", mode, view.written)
		}
		c, _ := runSession(t, cfgs, playSession("pre", false), mode)
		if c.written < 10*300 {
			t.Errorf("mode %#x: the player of live/pre got %d bytes", mode, c.written)
		}
	}
}
