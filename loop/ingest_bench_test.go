package loop

import (
	"testing"

	"github.com/rtmpedge/rtmpedge/chunk"
)

// ingestStream returns a publisher's session up to its first media (the
// handshake, connect, publish, metadata and sequence headers) and a GOP of
// 60 video frames of frame bytes (a keyframe 4 times that) with two audio
// frames each, whose chunk headers carry timestamp deltas: fed again and
// again after the start, the stream goes on.
func ingestStream(stream string, frame int) (start, gop []byte, messages int) {
	start = append(append([]byte(nil), fuzzHandshake...), publishSession(stream, 0, false)...)
	w := chunk.NewWriter(4096)
	// The publish session's writer left its chunk size at 4096; media
	// follows on chunk streams 4 and 6 with type-0 headers first.
	key := append([]byte{0x17, 1, 0, 0, 0}, make([]byte, 4*frame)...)
	inter := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, frame)...)
	audio := append([]byte{0xaf, 1}, make([]byte, 370)...)
	media := func(dst []byte, typeID uint8, ts uint32, p []byte) []byte {
		csid := uint32(4)
		if typeID == chunk.TypeVideo {
			csid = 6
		}
		return w.Append(dst, chunk.Header{CSID: csid, Timestamp: ts, TypeID: typeID, StreamID: 1}, p)
	}
	start = media(start, chunk.TypeVideo, 1000, inter)
	start = media(start, chunk.TypeAudio, 1000, audio)
	for i := range uint32(60) {
		ts := 1033 + i*33
		f := inter
		if i == 0 {
			f = key
		}
		gop = media(gop, chunk.TypeVideo, ts, f)
		gop = media(gop, chunk.TypeAudio, ts+3, audio)
		gop = media(gop, chunk.TypeAudio, ts+20, audio)
	}
	// The last headers before a replay must not be type 0: the first
	// message of the GOP (video) follows audio, so its header is a delta
	// on chunk stream 6 and the replay continues the timeline.
	return start, gop, 180
}

// BenchmarkSessionIngest runs a publisher's chunk stream through the
// server's OnTraffic as gnet delivers it (reads of 1448 bytes, a TCP
// segment, and of 16 KiB), from the bytes to the packets in its stream's
// hub (GOP cache on, no players): one op is one message (a 5 KB video
// frame or a 370-byte audio frame, in a stream's proportions).
func BenchmarkSessionIngest(b *testing.B) {
	for _, read := range []int{1448, 16 << 10} {
		b.Run(map[int]string{1448: "read1448", 16 << 10: "read16K"}[read], func(b *testing.B) {
			fs := newFuzzServer(b, fuzzConfigs(b)[0])
			c := fs.open()
			start, gop, msgs := ingestStream("bench", 5000)
			pos := 0
			in := make([]byte, 0, 64<<10)
			// feed delivers n bytes of the stream (the start, then the GOP
			// over and over) in reads of read bytes.
			feed := func(data []byte, n int) {
				for n > 0 {
					if pos == len(data) {
						pos = 0
					}
					k := min(read, n, len(data)-pos)
					// After what the last read left (the handshake keeps a
					// partial C2), in one reused buffer as gnet's.
					c.in = append(append(in[:0], c.in...), data[pos:pos+k]...)
					if fs.srv.OnTraffic(c) != 0 || c.closed {
						b.Fatal("publisher closed")
					}
					pos += k
					n -= k
				}
			}
			feed(start, len(start))
			if role(c.ctx.(*session).role.Load()) != rolePublisher {
				b.Fatal("not publishing")
			}
			pos = 0
			feed(gop, 2*len(gop)) // warm up: ring and slab at their steady size
			per := len(gop) / msgs
			b.ReportAllocs()
			b.SetBytes(int64(per))
			for b.Loop() {
				feed(gop, per)
			}
		})
	}
}
