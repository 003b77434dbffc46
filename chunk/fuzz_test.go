package chunk

import (
	"bytes"
	"os"
	"testing"
)

// readerSeeds returns valid and tricky chunk streams used as fuzz seeds.
func readerSeeds() [][]byte {
	var seeds [][]byte
	w := NewWriter(128)
	var b []byte
	for i := 0; i < 4; i++ {
		b = w.Append(b, Header{CSID: 6, Timestamp: uint32(i * 40), TypeID: TypeVideo, StreamID: 1}, payloadOf(300, byte(i)))
		b = w.Append(b, Header{CSID: 4, Timestamp: uint32(i * 23), TypeID: TypeAudio, StreamID: 1}, payloadOf(20, byte(i)))
	}
	seeds = append(seeds, b)

	b = AppendSetChunkSize(nil, 40)
	w = NewWriter(40)
	b = w.Append(b, Header{CSID: 3, Timestamp: 0xFFFFFF, TypeID: TypeCommandAMF0}, payloadOf(100, 1))
	b = w.Append(b, Header{CSID: 3, Timestamp: 0x2FFFFFE, TypeID: TypeCommandAMF0}, payloadOf(100, 2))
	b = w.Append(b, Header{CSID: 3, Timestamp: 0x4FFFFFD, TypeID: TypeCommandAMF0}, payloadOf(100, 3))
	b = AppendAbort(b, 3)
	b = AppendUserControl(b, EventStreamBegin, 1)
	b = AppendSetBufferLength(b, 1, 100)
	b = AppendWindowAckSize(b, 2500000)
	b = AppendSetPeerBandwidth(b, 2500000, 2)
	seeds = append(seeds, b)

	for _, csid := range []uint32{64, 319, 320, 65599} {
		seeds = append(seeds, AppendMessage(nil, Header{CSID: csid, Timestamp: 7, TypeID: TypeAudio, StreamID: 1}, payloadOf(150, 0), 128))
	}
	c := &chunkBuilder{}
	c.fmt0(5, 0x12345678, 200, TypeVideo, 1).raw(payloadOf(128, 1)).fmt3(5).raw([]byte{0x12, 0x34, 0x56, 0x00}).raw(payloadOf(68, 2))
	c.fmt1(9, 77, 4, TypeCommandAMF0).raw([]byte{1, 2, 3, 4}).fmt3(9).raw([]byte{1, 2, 3, 4})
	c.fmt0(8, 5, 0, TypeDataAMF0, 1).fmt2(8, 5).fmt3(8)
	seeds = append(seeds, c.b)
	seeds = append(seeds,
		(&chunkBuilder{}).fmt0(2, 0, 4, TypeSetChunkSize, 0).u32(1).fmt0(3, 0, 50, TypeVideo, 1).raw(payloadOf(50, 0)).b,
		(&chunkBuilder{}).fmt0(3, 0, 0xFFFFFF, TypeVideo, 1).raw(payloadOf(128, 0)).b,
		(&chunkBuilder{}).fmt2(3, 1).b,
		[]byte{0x00}, []byte{0x01, 0xFF}, []byte{0xC3},
	)
	return seeds
}

func FuzzReader(f *testing.F) {
	for i, s := range readerSeeds() {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		cfg := ReaderConfig{MaxMessageSize: 4096, MaxBuffered: 6000, MaxChunkStreams: 8, MaxChunkSize: 1 << 16}
		if mode&1 != 0 {
			cfg = ReaderConfig{}
		}
		// Piece sizes: 1..16 scaled by the mode, or everything at once.
		step := int(mode>>1) + 1
		if mode >= 0xF0 {
			step = len(data) + 1
		}
		plain := fuzzRead(t, NewReader(cfg), data, step)
		// The same bytes read at another step with media placed as chunks
		// give the same messages and the same end.
		r := NewReader(cfg)
		r.SetPlacer(&chunkPlacer{out: 1 + int(mode)*37, csid: 7})
		placed := fuzzRead(t, r, data, 7-step%5)
		if len(placed) != len(plain) {
			t.Fatalf("%d messages placed, %d plain", len(placed), len(plain))
		}
		for i := range plain {
			if placed[i].Header != plain[i].Header || !bytes.Equal(placed[i].Payload, plain[i].Payload) {
				t.Fatalf("message %d: placed %v, plain %v", i, placed[i], plain[i])
			}
		}
	})
}

// fuzzRead feeds data to r step bytes at a time, checking the Reader's
// contract, and returns copies of the messages (an error ends the list
// with a message of type 0xFF).
func fuzzRead(t *testing.T, r *Reader, data []byte, step int) []got {
	var out []got
	var pending []byte
	total := 0
	for off := 0; off < len(data); {
		k := min(step, len(data)-off)
		pending = append(pending, data[off:off+k]...)
		off += k
		for {
			n, m, err := r.Read(pending)
			if n < 0 || n > len(pending) || err == nil && m == nil && n != len(pending) {
				t.Fatalf("consumed %d of %d (message %v, error %v)", n, len(pending), m != nil, err)
			}
			pending = pending[n:]
			total += n
			if r.BytesRead() != uint64(total) {
				t.Fatalf("BytesRead %d, consumed %d", r.BytesRead(), total)
			}
			checkHeld(t, r)
			if err != nil {
				if _, _, err2 := r.Read(pending); err2 != err {
					t.Fatal("error not sticky")
				}
				return append(out, got{Header: Header{TypeID: 0xFF}})
			}
			if m == nil {
				break
			}
			p := m.AppendPayload(nil)
			if int(m.Length) != len(p) || int(m.Length) > r.maxMessageSize {
				t.Fatalf("message length %d, payload %d", m.Length, len(p))
			}
			if r.ChunkSize() < 1 || r.ChunkSize() > r.maxChunkSize {
				t.Fatalf("chunk size %d", r.ChunkSize())
			}
			out = append(out, got{m.Header, p})
		}
	}
	return out
}

func handshakeSeeds() [][]byte {
	cli := NewClientHandshake(true)
	c0c1 := cli.C0C1()
	_, out, _, _ := NewServerHandshake().Feed(c0c1)
	_, c2, _, _ := cli.Feed(out)
	seeds := [][]byte{
		append(append(append([]byte{}, c0c1...), c2...), 0x03, 0, 0),
		makeC0C1([4]byte{}, -1, 1),
		makeC0C1([4]byte{10, 0, 32, 18}, 1, 2),
		{6},
		{3},
		nil,
	}
	if b, err := os.ReadFile("testdata/ffmpeg_c0c1.bin"); err == nil {
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzServerHandshake(f *testing.F) {
	for i, s := range handshakeSeeds() {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		h := NewServerHandshake()
		step := int(split)*16 + 1
		var pending []byte
		sawOut, sawDone := false, false
		for off := 0; off < len(data); {
			k := min(step, len(data)-off)
			pending = append(pending, data[off:off+k]...)
			off += k
			n, out, done, err := h.Feed(pending)
			if err != nil {
				if n != 0 || out != nil || done || data[0] == 3 {
					t.Fatalf("error %v with n %d done %v, C0 %d", err, n, done, data[0])
				}
				return
			}
			if n < 0 || n > len(pending) {
				t.Fatalf("consumed %d of %d", n, len(pending))
			}
			if out != nil {
				if sawOut || len(out) != 3073 || out[0] != 3 {
					t.Fatalf("out %d bytes (seen before %v)", len(out), sawOut)
				}
				sawOut = true
				if !h.Complex() && string(out[1537:]) != string(data[1:1537]) {
					t.Fatal("simple S2 is not an echo of C1")
				}
			}
			if sawDone && n != 0 {
				t.Fatal("consumed after done")
			}
			sawDone = sawDone || done
			pending = pending[n:]
		}
		wantDone := len(data) >= 1+2*HandshakeSize
		if sawDone != wantDone || sawOut != (len(data) >= 1+HandshakeSize) {
			t.Fatalf("len %d: out %v done %v", len(data), sawOut, sawDone)
		}
		if wantDone && len(pending) != len(data)-3073 {
			t.Fatalf("pending %d", len(pending))
		}
	})
}

func FuzzClientHandshake(f *testing.F) {
	for i, s := range handshakeSeeds() {
		f.Add(s, uint8(i), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8, complex bool) {
		h := NewClientHandshake(complex)
		h.C0C1()
		step := int(split)*16 + 1
		var pending []byte
		for off := 0; off < len(data); {
			k := min(step, len(data)-off)
			pending = append(pending, data[off:off+k]...)
			off += k
			n, out, done, err := h.Feed(pending)
			if err != nil {
				return
			}
			if done && out != nil && (n != 3073 || len(out) != HandshakeSize) {
				t.Fatalf("done: n %d out %d", n, len(out))
			}
			pending = pending[n:]
		}
	})
}
