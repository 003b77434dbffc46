package loop

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/pool"
)

// writevConn records what is written to it with Writev.
type writevConn struct {
	gnet.Conn
	written [][]byte
}

func (c *writevConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		c.written = append(c.written, b)
		n += len(b)
	}
	return n, nil
}

// publishingUpstream returns an upstream publish that an origin accepted
// with message stream id sid: the origin's side of the handshake, connect,
// createStream and publish fed to it.
func publishingUpstream(t *testing.T, sid uint32) *edge.Upstream {
	t.Helper()
	up := edge.NewUpstream(edge.UpstreamConfig{Mode: edge.UpstreamPublish, TcURL: "rtmp://o/live", App: "live", Stream: "s", ChunkSize: 4096})
	_, s0s1s2, _, err := chunk.NewServerHandshake().Feed(up.Start())
	if err != nil {
		t.Fatal(err)
	}
	w := chunk.NewWriter(chunk.DefaultChunkSize)
	in := append([]byte(nil), s0s1s2...)
	for _, vals := range [][]any{
		{"_result", 1.0, nil, amf.Object{{Key: "code", Value: "NetConnection.Connect.Success"}}},
		{"_result", 4.0, nil, float64(sid)},
		{"onStatus", 0.0, nil, amf.Object{{Key: "level", Value: "status"}, {Key: "code", Value: "NetStream.Publish.Start"}}},
	} {
		body, err := amf.AppendAll(nil, vals...)
		if err != nil {
			t.Fatal(err)
		}
		in = w.Append(in, chunk.Header{CSID: 3, TypeID: chunk.TypeCommandAMF0}, body)
	}
	if _, _, err := up.Feed(in, nil); err != nil || !up.Streaming() || up.StreamID() != sid {
		t.Fatalf("upstream not publishing with stream id %d: %v", sid, err)
	}
	return up
}

// placedMessage is what a publisher's chunk reader hands a forwarder: the
// payload placed in the forwarder's buffer.
func placedMessage(t *testing.T, f *forwarder, typeID uint8, ts uint32, payload []byte) *chunk.Message {
	t.Helper()
	h := chunk.Header{CSID: 6, Timestamp: ts, Length: uint32(len(payload)), TypeID: typeID, StreamID: 1}
	r := chunk.NewReader(chunk.ReaderConfig{})
	r.SetPlacer(forwardPlacer{f})
	in := chunk.AppendMessage(chunk.AppendSetChunkSize(nil, 4096), h, payload, 4096)
	for len(in) > 0 {
		n, m, err := r.Read(in)
		if err != nil {
			t.Fatal(err)
		}
		in = in[n:]
		if m != nil && m.Placed != nil {
			return m
		}
	}
	t.Fatal("not placed")
	return nil
}

type forwardPlacer struct{ f *forwarder }

func (p forwardPlacer) Place(h *chunk.Header) ([]byte, chunk.Layout) { return p.f.place(h) }

// TestForwardKeepsTheBytesItSent: what a forwarder writes to its origin
// and what it keeps to resume on another are the same bytes, placed there
// by the publisher's reader (no copy); a resume on an origin that gave
// another message stream id rewrites it in those bytes; the kept messages
// stay within publish_buffer.
func TestForwardKeepsTheBytesItSent(t *testing.T) {
	f := &forwarder{
		chunkSize: 4096, slab: pool.NewSlab(fwdSlabSize), started: true, connected: true,
		target: upstreamTarget{vhost: &conf.Vhost{Cluster: conf.Cluster{PublishBuffer: 64 << 10}}},
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	first := &writevConn{}
	f.conn = &outbound{up: publishingUpstream(t, 1), c: first}

	key := append([]byte{0x17, 1, 0, 0, 0}, bytes.Repeat([]byte{7}, 9000)...)
	inter := append([]byte{0x27, 1, 0, 0, 0}, bytes.Repeat([]byte{8}, 3000)...)
	seq := []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}
	type sent struct {
		typeID  uint8
		ts      uint32
		payload []byte
	}
	msgs := []sent{{chunk.TypeVideo, 0, seq}, {chunk.TypeVideo, 0, key}, {chunk.TypeVideo, 33, inter}, {chunk.TypeVideo, 66, inter}}
	for _, m := range msgs {
		if err := f.placed(placedMessage(t, f, m.typeID, m.ts, m.payload)); err != nil {
			t.Fatal(err)
		}
		f.flush()
	}
	if len(first.written) != len(msgs) {
		t.Fatalf("%d writes to the origin, want %d", len(first.written), len(msgs))
	}
	kept := append([][]byte{f.headers[edge.KindVideo-edge.KindAudio].wire}, f.gop[0].wire, f.gop[1].wire, f.gop[2].wire)
	for i, m := range msgs {
		want := chunk.AppendMessage(nil, chunk.Header{CSID: edge.MediaCSID(m.typeID), Timestamp: m.ts, TypeID: m.typeID, StreamID: 1}, m.payload, 4096)
		if !bytes.Equal(first.written[i], want) {
			t.Fatalf("message %d: written bytes differ from its chunks", i)
		}
		if &first.written[i][0] != &kept[i][0] {
			t.Fatalf("message %d: the bytes kept for a resume are not the bytes written", i)
		}
	}

	// Failover: the next origin answered createStream with 7.
	second := &writevConn{}
	f.conn = &outbound{up: publishingUpstream(t, 7), c: second}
	f.resume()
	if len(second.written) != len(msgs) {
		t.Fatalf("%d messages resent, want %d (headers, then the GOP)", len(second.written), len(msgs))
	}
	for i, m := range msgs {
		want := chunk.AppendMessage(nil, chunk.Header{CSID: edge.MediaCSID(m.typeID), Timestamp: m.ts, TypeID: m.typeID, StreamID: 7}, m.payload, 4096)
		if !bytes.Equal(second.written[i], want) || &second.written[i][0] != &kept[i][0] {
			t.Fatalf("message %d: resent bytes are not the kept ones with stream id 7", i)
		}
	}

	// The kept GOP stays within publish_buffer: past it, it is dropped
	// until the next keyframe.
	for i := range uint32(30) {
		_ = f.placed(placedMessage(t, f, chunk.TypeVideo, 100+i*33, inter))
		f.flush()
		if f.gopBytes > int(f.target.vhost.Cluster.PublishBuffer) {
			t.Fatalf("%d bytes kept, over publish_buffer %d", f.gopBytes, f.target.vhost.Cluster.PublishBuffer)
		}
	}
	if !f.dropping || len(f.gop) != 0 {
		t.Fatalf("over publish_buffer: dropping %v with %d messages kept", f.dropping, len(f.gop))
	}
	_ = f.placed(placedMessage(t, f, chunk.TypeVideo, 2000, key))
	if f.dropping || len(f.gop) != 1 {
		t.Fatal("a keyframe did not start a new GOP to keep")
	}
}
