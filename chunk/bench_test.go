package chunk

import "testing"

func BenchmarkAppendMessage(b *testing.B) {
	p := payloadOf(5000, 1)
	h := Header{CSID: 6, Timestamp: 1000, TypeID: TypeVideo, StreamID: 1}
	dst := make([]byte, 0, WireSize(h, len(p), 4096))
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		dst = AppendMessage(dst[:0], h, p, 4096)
		h.Timestamp += 40
	}
}

func BenchmarkWriter(b *testing.B) {
	p := payloadOf(5000, 1)
	w := NewWriter(4096)
	h := Header{CSID: 6, Timestamp: 1000, TypeID: TypeVideo, StreamID: 1}
	dst := make([]byte, 0, 8192)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		dst = w.Append(dst[:0], h, p)
		h.Timestamp += 40
	}
}

// BenchmarkReader reads a stream of chunked 5 KB video messages; one op is
// one message.
func BenchmarkReader(b *testing.B) {
	for _, cs := range []int{128, 4096} {
		b.Run(map[int]string{128: "chunk128", 4096: "chunk4096"}[cs], func(b *testing.B) {
			w := NewWriter(cs)
			var data []byte
			const n = 64
			for i := 0; i < n; i++ {
				data = w.Append(data, Header{CSID: 6, Timestamp: uint32(i * 40), TypeID: TypeVideo, StreamID: 1}, payloadOf(5000, byte(i)))
			}
			r := NewReader(ReaderConfig{})
			r.chunkSize = cs
			pos := 0
			b.ReportAllocs()
			b.SetBytes(5000)
			for b.Loop() {
				k, m, err := r.Read(data[pos:])
				if err != nil || m == nil {
					b.Fatal(err)
				}
				pos += k
				if pos == len(data) {
					pos = 0
				}
			}
		})
	}
}

func BenchmarkServerHandshakeComplex(b *testing.B) {
	c0c1 := NewClientHandshake(true).C0C1()
	b.ReportAllocs()
	for b.Loop() {
		h := NewServerHandshake()
		if _, _, _, err := h.Feed(c0c1); err != nil || !h.Complex() {
			b.Fatal(err)
		}
	}
}
