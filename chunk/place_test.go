package chunk

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// chunkPlacer places audio and video messages as chunks of out bytes on
// outCSID (a new buffer per message, or one reused buffer).
type chunkPlacer struct {
	out    int
	csid   uint32
	reuse  []byte
	placed int
}

func (p *chunkPlacer) Place(h *Header) ([]byte, Layout) {
	if h.TypeID != TypeAudio && h.TypeID != TypeVideo {
		return nil, Layout{}
	}
	l := ChunkLayout(p.csid, h.Timestamp >= 0xFFFFFF, p.out)
	n := l.End(int(h.Length))
	p.placed++
	if p.reuse != nil {
		return p.reuse[:n], l
	}
	return make([]byte, n), l
}

func TestChunkPlacedMatchesAppendMessage(t *testing.T) {
	for _, csid := range []uint32{5, 70, 400} {
		for _, ts := range []uint32{0, 1000, 0xFFFFFE, 0xFFFFFF, 0x1000000} {
			for _, size := range []int{1, 127, 128, 129, 4096, 5000, 20000} {
				for _, cs := range []int{1, 128, 4096, 60000} {
					h := Header{CSID: csid, Timestamp: ts, TypeID: TypeVideo, StreamID: 7}
					p := payloadOf(size, byte(size))
					want := AppendMessage(nil, h, p, cs)
					l := ChunkLayout(csid, ts >= 0xFFFFFF, cs)
					buf := make([]byte, l.End(size)+9)
					s := &chunkStream{placed: buf, layout: l}
					for off := 0; off < size; off += 1000 { // placed in pieces, as chunks arrive
						s.place(p[off:min(off+1000, size)])
						s.have = min(off+1000, size)
					}
					got, ok := ChunkPlaced(buf, l, h, size)
					if !ok || !bytes.Equal(got, want) {
						t.Fatalf("csid %d ts %#x size %d chunk %d: placed form differs (ok %v)", csid, ts, size, cs, ok)
					}
					m := Message{Header: Header{Length: uint32(size)}, Placed: buf, Layout: l}
					if !bytes.Equal(m.AppendPayload(nil), p) || !bytes.Equal(m.Head(3), p[:min(3, size, cs)]) {
						t.Fatalf("csid %d ts %#x size %d chunk %d: payload differs", csid, ts, size, cs)
					}
				}
			}
		}
	}
	// A layout made for another gap (extended or not) or chunk size is refused.
	h := Header{CSID: 6, Timestamp: 0x1000000, TypeID: TypeVideo, StreamID: 1}
	l := ChunkLayout(6, false, 128)
	if _, ok := ChunkPlaced(make([]byte, l.End(300)), l, h, 300); ok {
		t.Fatal("a layout without room for extended timestamps was taken")
	}
	if _, ok := ChunkPlaced(make([]byte, l.End(300)-1), ChunkLayout(6, true, 128), h, 300); ok {
		t.Fatal("a short buffer was taken")
	}
}

// TestReaderPlaces reads a random stream twice, once placing media, with
// random splits: the placed messages carry the same payloads, become
// AppendMessage's chunks in place, and control messages are not placed.
func TestReaderPlaces(t *testing.T) {
	b := randomStream(rand.New(rand.NewPCG(3, 4)), 300)
	ref := readAll(t, ReaderConfig{}, b)
	for seed := uint64(0); seed < 10; seed++ {
		rs := rand.New(rand.NewPCG(seed, 7))
		out := []int{128, 4096, 1 + rs.IntN(9000)}[seed%3]
		pl := &chunkPlacer{out: out, csid: 7}
		r := NewReader(ReaderConfig{})
		r.SetPlacer(pl)
		var pending []byte
		i, placedAny := 0, false
		for off := 0; off < len(b); {
			k := min(1+rs.IntN(3000), len(b)-off)
			pending = append(pending, b[off:off+k]...)
			off += k
			for {
				n, m, err := r.Read(pending)
				pending = pending[n:]
				if err != nil {
					t.Fatal(err)
				}
				checkHeld(t, r)
				if m == nil {
					break
				}
				want := ref[i]
				i++
				if m.Header != want.Header {
					t.Fatalf("message %d: header %+v, want %+v", i, m.Header, want.Header)
				}
				media := m.TypeID == TypeAudio || m.TypeID == TypeVideo
				if media {
					placedAny = true
				}
				if (m.Placed != nil) != (media && m.Length > 0) || m.Placed != nil && m.Payload != nil {
					t.Fatalf("message %d (type %d, %d bytes): placed %v", i, m.TypeID, m.Length, m.Placed != nil)
				}
				if !bytes.Equal(m.AppendPayload(nil), want.Payload) {
					t.Fatalf("message %d: payload differs", i)
				}
				if m.Placed != nil {
					h := m.Header
					h.CSID = 7
					got, ok := ChunkPlaced(m.Placed, m.Layout, h, int(m.Length))
					if !ok || !bytes.Equal(got, AppendMessage(nil, h, want.Payload, out)) {
						t.Fatalf("message %d: chunked in place differs from AppendMessage (ok %v)", i, ok)
					}
				}
			}
		}
		if i != len(ref) || len(pending) != 0 || !placedAny {
			t.Fatalf("%d of %d messages, %d bytes left", i, len(ref), len(pending))
		}
	}
}

func TestReaderPlacedZeroAllocs(t *testing.T) {
	var b []byte
	w := NewWriter(4096)
	b = AppendSetChunkSize(b, 4096)
	for i := 0; i < 16; i++ {
		b = w.Append(b, Header{CSID: 6, Timestamp: uint32(i * 40), TypeID: TypeVideo, StreamID: 1}, payloadOf(5000, byte(i)))
		b = w.Append(b, Header{CSID: 4, Timestamp: uint32(i * 23), TypeID: TypeAudio, StreamID: 1}, payloadOf(300, byte(i)))
	}
	r := NewReader(ReaderConfig{})
	r.SetPlacer(&chunkPlacer{out: 4096, csid: 7, reuse: make([]byte, 8192)})
	read := func() {
		for data := b; len(data) > 0; {
			n, _, err := r.Read(data[:min(len(data), 1500)]) // segment-sized reads: partial chunks
			if err != nil || n == 0 {
				t.Fatal("read:", n, err)
			}
			data = data[n:]
		}
	}
	read()
	if a := testing.AllocsPerRun(20, read); a != 0 {
		t.Fatalf("%v allocs per run", a)
	}
}

func TestSetStreamID(t *testing.T) {
	for _, csid := range []uint32{6, 70, 400} {
		h := Header{CSID: csid, Timestamp: 0x1000000, TypeID: TypeVideo, StreamID: 1}
		b := AppendMessage(nil, h, payloadOf(300, 1), 128)
		SetStreamID(b, 0x01020304)
		h.StreamID = 0x01020304
		if !bytes.Equal(b, AppendMessage(nil, h, payloadOf(300, 1), 128)) || StreamIDOf(b) != 0x01020304 {
			t.Fatalf("csid %d: stream id not rewritten in place", csid)
		}
	}
}
