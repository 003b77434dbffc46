package loop

import (
	"errors"
	"strings"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/amf"
)

func TestCheckNames(t *testing.T) {
	for _, ok := range []string{"", "live", "../../etc/passwd", "<script>alert(1)</script>", "%00", "x?token=abc&a=b", "流", strings.Repeat("n", maxNameBytes)} {
		if err := checkNames("stream name", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"a\nb", "a\x00b", "\x1b[31m", "a\u0085b", "\xff\xfe", strings.Repeat("n", maxNameBytes+1)} {
		err := checkNames("app", "live", "stream name", bad)
		if err == nil || !strings.Contains(err.Error(), "stream name") {
			t.Errorf("%.20q: %v, want an error naming the stream name", bad, err)
		}
	}
}

// Bad names close the connection as bad input, before any stream exists.
func TestBadNamesCloseTheSession(t *testing.T) {
	cfgs := fuzzConfigs(t)
	long := strings.Repeat("n", 65000)
	for name, in := range map[string][]byte{
		"app with a newline": newClientSession().command(0, "connect", amf.Object{{Key: "app", Value: "a\nb"}, {Key: "tcUrl", Value: "rtmp://h/live"}}).b,
		"vhost with a NUL":   newClientSession().command(0, "connect", amf.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://h/live?vhost=a%00"}}).b,
		"65,000-byte stream": newClientSession().connect().command(0, "createStream", nil).command(1, "publish", nil, long, "live").b,
		"invalid UTF-8 play": newClientSession().connect().command(0, "createStream", nil).command(1, "play", nil, "\xff", -2000.0).b,
	} {
		fs := newFuzzServer(t, cfgs[0])
		c := fs.open()
		if !fs.feed(c, fuzzHandshake) {
			t.Fatal("closed at the handshake")
		}
		ss := c.ctx.(*session)
		if fs.feed(c, in) {
			t.Errorf("%s: the connection stays open", name)
		}
		if !ss.protocolErr || ss.reason.Load() == nil {
			t.Errorf("%s: not closed as bad input", name)
		}
		if fs.srv.hubs.Len() != 0 {
			t.Errorf("%s: a stream was created", name)
		}
		fs.shutdown()
	}
}

// closeOnWrite is a client connection whose write of a reply containing
// what fails closes it at once, as gnet runs OnClose inside a write that
// fails (the peer reset).
type closeOnWrite struct {
	*fuzzConn
	srv  *Server
	what string
}

func (c *closeOnWrite) Context() any { return c.ctx }

func (c *closeOnWrite) Write(b []byte) (int, error) {
	if c.ctx == nil {
		return 0, errors.New("write on a closed connection")
	}
	if strings.Contains(string(b), c.what) {
		c.srv.OnClose(c, errors.New("write: broken pipe"))
		c.ctx = nil
		return 0, errors.New("write: broken pipe")
	}
	return len(b), nil
}

// A player whose connection closes inside one of the replies to its play
// never joins the stream's players (whose writes would go to a file
// descriptor the next connection may already have), and gives the stream
// back.
func TestPlayClosedInsideItsRepliesDoesNotJoin(t *testing.T) {
	fs := newFuzzServer(t, fuzzConfigs(t)[0])
	pub := fs.open()
	if !fs.feed(pub, append(append([]byte(nil), fuzzHandshake...), publishSession("x", 3, false)...)) {
		t.Fatal("publisher closed")
	}
	c := &closeOnWrite{fuzzConn: newFuzzConn(t, fs.loop), srv: fs.srv, what: "NetStream.Play.Reset"}
	if _, act := fs.srv.OnOpen(c); act != gnet.None {
		t.Fatal("refused")
	}
	c.in = append(append([]byte(nil), fuzzHandshake...), playSession("x", false)...)
	_ = fs.srv.OnTraffic(c)
	fs.loop.run(t)
	if c.ctx != nil {
		t.Fatal("the write did not close the connection")
	}
	if n := fs.srv.players.Load(); n != 0 {
		t.Fatalf("%d players after the player's connection closed during its play", n)
	}
	for key, g := range fs.srv.groups {
		if len(g.players) != 0 {
			t.Fatalf("stream %s has %d players on a loop", key.hub.Key(), len(g.players))
		}
	}
	fs.close(pub)
	if n := fs.srv.hubs.Len(); n != 0 {
		t.Fatalf("%d streams held after everyone left", n)
	}
}
