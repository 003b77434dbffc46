package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// redirector answers every RTMP connect with the rejection and ex.redirect
// that SRS's origin cluster sends for a stream living on another origin.
// No redirecting origin can run on this machine (SRS is not packaged), so
// this is the one peer written for the tests: it speaks only that answer.
func redirector(t *testing.T, to string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				hs := chunk.NewServerHandshake()
				rd := chunk.NewReader(chunk.ReaderConfig{})
				var in []byte
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					in = append(in, buf[:n]...)
					if hs != nil {
						used, out, done, err := hs.Feed(in)
						if err != nil {
							return
						}
						in = in[used:]
						_, _ = c.Write(out)
						if !done {
							continue
						}
						hs = nil
					}
					for {
						used, msg, err := rd.Read(in)
						if err != nil {
							return
						}
						in = in[used:]
						if msg == nil {
							break
						}
						if msg.TypeID != chunk.TypeCommandAMF0 {
							continue
						}
						vals, _ := amf.DecodeAll(msg.Payload)
						if len(vals) < 2 || vals[0] != "connect" {
							continue
						}
						body, _ := amf.AppendAll(nil, "_error", vals[1], nil, amf.Object{
							{Key: "level", Value: "error"},
							{Key: "code", Value: "NetConnection.Connect.Rejected"},
							{Key: "description", Value: "RTMP 302 Redirect"},
							{Key: "ex", Value: amf.Object{{Key: "code", Value: 302.0}, {Key: "redirect", Value: "rtmp://" + to + "/live"}}},
						})
						_, _ = c.Write(chunk.AppendMessage(nil, chunk.Header{CSID: 3, TypeID: chunk.TypeCommandAMF0}, body, 128))
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestEdgeFollowsOriginRedirect(t *testing.T) {
	origin := startServer(t, originConfig)
	redirect := redirector(t, origin.addr)
	edge := startServer(t, edgeConfig("", redirect))
	publishFFmpeg(t, origin.url("live/moved"), "320x240", 60)
	probeUntil(t, origin.url("live/moved"), hasAV)
	w := watch(t, edge.url("live/moved"))
	w.waitFrames(t, 25, 15*time.Second)
	if !edge.waitLog("origin redirects", time.Second) {
		t.Error("edge did not log the redirect")
	}
}
