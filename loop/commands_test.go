package loop

import (
	"strings"
	"testing"

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
