package loop

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// sinkConn is a gnet.Conn that counts what is written to it. Only the
// methods the fan-out writer calls are implemented.
type sinkConn struct {
	gnet.Conn
	bytes    int
	writes   int
	buffered int
}

func (c *sinkConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	c.bytes += n
	c.writes++
	return n, nil
}
func (c *sinkConn) OutboundBuffered() int { return c.buffered }
func (c *sinkConn) Close() error          { return nil }

func testGroup(t testing.TB, players int, window time.Duration) (*group, *edge.Hub, []*sinkConn, any) {
	cfg, err := conf.Default()
	if err != nil {
		t.Fatal(err)
	}
	srv := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hub := srv.hubs.Acquire(edge.Key{Vhost: "v", App: "a", Stream: "s"}, edge.Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 16 << 20})
	pub := new(int)
	if err := hub.Publish(pub); err != nil {
		t.Fatal(err)
	}
	g := &group{srv: srv, window: uint32(window / time.Millisecond), backlog: 1 << 20, lagLimit: time.Second}
	g.key.hub = hub
	conns := make([]*sinkConn, players)
	for i := range conns {
		conns[i] = &sinkConn{}
		ss := &session{srv: srv, c: conns[i], log: srv.log}
		g.players = append(g.players, &player{ss: ss, needHeaders: true, waitKey: true})
	}
	return g, hub, conns, pub
}

var (
	keyFrame   = append([]byte{0x17, 1, 0, 0, 0}, make([]byte, 20000)...)
	interFrame = append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 4000)...)
	audioFrame = append([]byte{0xaf, 1}, make([]byte, 300)...)
)

func TestGroupFlushSendsEveryPlayerTheSameBytes(t *testing.T) {
	g, hub, conns, pub := testGroup(t, 3, 0)
	_ = hub.Append(pub, chunk.TypeVideo, 0, []byte{0x17, 0, 0, 0, 0, 1})
	_ = hub.Append(pub, chunk.TypeVideo, 0, keyFrame)
	_ = hub.Append(pub, chunk.TypeAudio, 10, audioFrame)
	g.flush(time.Now())
	for i, c := range conns {
		if c.bytes == 0 || c.bytes != conns[0].bytes || c.writes != 1 {
			t.Fatalf("player %d got %d bytes in %d writes (player 0: %d)", i, c.bytes, c.writes, conns[0].bytes)
		}
	}
	// A slow player gets nothing while over its backlog and is closed after the lag limit.
	conns[1].buffered = 2 << 20
	before := conns[1].bytes
	_ = hub.Append(pub, chunk.TypeVideo, 40, interFrame)
	g.flush(time.Now())
	if conns[1].bytes != before {
		t.Fatal("slow player was written to")
	}
	if conns[0].bytes == conns[1].bytes {
		t.Fatal("fast players were not written to")
	}
	g.flush(time.Now().Add(2 * time.Second))
	if !g.players[1].closing {
		t.Fatal("player behind past player_lag_timeout was not closed")
	}
}

// BenchmarkFanOut measures one stream's steady state: a publisher appends a
// message and a flush writes it to 500 players. Allocations per op are per
// message; the goal is none per player.
func BenchmarkFanOut(b *testing.B) {
	for _, window := range []time.Duration{0, 350 * time.Millisecond} {
		b.Run("window="+window.String(), func(b *testing.B) {
			g, hub, conns, pub := testGroup(b, 500, window)
			_ = hub.Append(pub, chunk.TypeVideo, 0, keyFrame)
			g.flush(time.Now())
			b.ReportAllocs()
			b.SetBytes(int64(len(interFrame) * len(conns)))
			ts := uint32(0)
			now := time.Now()
			i := 0
			for b.Loop() {
				i++
				ts += 33
				frame := interFrame
				if i%60 == 0 {
					frame = keyFrame
				}
				_ = hub.Append(pub, chunk.TypeVideo, ts, frame)
				if g.window == 0 || i%10 == 0 {
					g.flush(now)
				}
			}
		})
	}
}
