package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// got is a copied message.
type got struct {
	Header
	Payload []byte
}

func (g got) String() string {
	return fmt.Sprintf("{csid %d ts %d len %d type %d sid %d payload %d bytes}", g.CSID, g.Timestamp, g.Length, g.TypeID, g.StreamID, len(g.Payload))
}

// readSplit feeds data to r in pieces whose sizes come from next (through an
// accumulating buffer, like a network loop) and returns copies of all messages.
func readSplit(t testing.TB, r *Reader, data []byte, next func() int) ([]got, error) {
	t.Helper()
	var out []got
	var pending []byte
	consumed := 0
	for off := 0; off < len(data); {
		k := min(next(), len(data)-off)
		pending = append(pending, data[off:off+k]...)
		off += k
		for {
			n, m, err := r.Read(pending)
			consumed += n
			pending = pending[n:]
			if err != nil {
				return out, err
			}
			if m != nil {
				if int(m.Length) != len(m.Payload) {
					t.Fatalf("message length %d, payload %d", m.Length, len(m.Payload))
				}
				out = append(out, got{m.Header, bytes.Clone(m.Payload)})
				continue
			}
			break
		}
	}
	if len(pending) != 0 {
		t.Fatalf("%d bytes left unconsumed", len(pending))
	}
	if r.BytesRead() != uint64(consumed) || consumed != len(data) {
		t.Fatalf("BytesRead %d, consumed %d, data %d", r.BytesRead(), consumed, len(data))
	}
	return out, nil
}

func readAll(t testing.TB, cfg ReaderConfig, data []byte) []got {
	t.Helper()
	msgs, err := readSplit(t, NewReader(cfg), data, func() int { return len(data) })
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func readErr(t testing.TB, cfg ReaderConfig, data []byte) error {
	t.Helper()
	r := NewReader(cfg)
	for len(data) > 0 {
		n, _, err := r.Read(data)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		data = data[n:]
	}
	return nil
}

func payloadOf(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)*31 + seed
	}
	return p
}

func checkMsgs(t *testing.T, gotMsgs []got, want []got) {
	t.Helper()
	if len(gotMsgs) != len(want) {
		t.Fatalf("got %d messages %v, want %d %v", len(gotMsgs), gotMsgs, len(want), want)
	}
	for i := range want {
		w := want[i]
		w.Length = uint32(len(w.Payload))
		if gotMsgs[i].Header != w.Header || !bytes.Equal(gotMsgs[i].Payload, w.Payload) {
			t.Fatalf("message %d: got %v, want %v", i, gotMsgs[i], w)
		}
	}
}

func TestAppendMessageLayout(t *testing.T) {
	p := payloadOf(300, 1)
	h := Header{CSID: 6, Timestamp: 0x123456, TypeID: TypeVideo, StreamID: 1}
	b := AppendMessage(nil, h, p, 128)
	want := []byte{0x06, 0x12, 0x34, 0x56, 0x00, 0x01, 0x2C, 9, 1, 0, 0, 0}
	if !bytes.Equal(b[:12], want) {
		t.Fatalf("header % x", b[:12])
	}
	if b[12+128] != 0xC6 || b[12+128+1+128] != 0xC6 {
		t.Fatal("continuation headers")
	}
	if len(b) != 12+300+2 || WireSize(h, 300, 128) != len(b) {
		t.Fatalf("len %d WireSize %d", len(b), WireSize(h, 300, 128))
	}
	checkMsgs(t, readAll(t, ReaderConfig{}, b), []got{{h, p}})

	// Extended timestamp: 0xFFFFFF in the field, 4 bytes after, repeated on
	// every continuation.
	h.Timestamp = 0xFFFFFF
	b = AppendMessage(nil, h, p, 128)
	if !bytes.Equal(b[1:4], []byte{0xFF, 0xFF, 0xFF}) || !bytes.Equal(b[12:16], []byte{0, 0xFF, 0xFF, 0xFF}) {
		t.Fatalf("ext header % x", b[:16])
	}
	if !bytes.Equal(b[16+128:16+128+5], []byte{0xC6, 0, 0xFF, 0xFF, 0xFF}) {
		t.Fatalf("ext continuation % x", b[16+128:16+128+5])
	}
	if len(b) != 16+300+2*5 || WireSize(h, 300, 128) != len(b) {
		t.Fatalf("len %d WireSize %d", len(b), WireSize(h, 300, 128))
	}
	checkMsgs(t, readAll(t, ReaderConfig{}, b), []got{{h, p}})

	// Empty payload, chunk size <1 means default.
	h.Timestamp = 5
	b = AppendMessage(nil, h, nil, 0)
	if len(b) != 12 || WireSize(h, 0, 0) != 12 {
		t.Fatalf("empty: %d", len(b))
	}
	if WireSize(h, 129, 0) != 12+129+1 {
		t.Fatal("WireSize default chunk size")
	}
}

func TestReaderCSIDs(t *testing.T) {
	for _, tc := range []struct {
		csid uint32
		bh   []byte
	}{
		{2, []byte{0x02}},
		{63, []byte{0x3F}},
		{64, []byte{0x00, 0x00}},
		{319, []byte{0x00, 0xFF}},
		{320, []byte{0x01, 0x00, 0x01}},
		{65599, []byte{0x01, 0xFF, 0xFF}},
	} {
		p := payloadOf(200, byte(tc.csid))
		h := Header{CSID: tc.csid, Timestamp: 40, TypeID: TypeAudio, StreamID: 1}
		b := AppendMessage(nil, h, p, 128)
		if !bytes.HasPrefix(b, tc.bh) {
			t.Fatalf("csid %d: basic header % x", tc.csid, b[:3])
		}
		cont := len(tc.bh) + 11 + 128
		tc.bh[0] |= 0xC0
		if !bytes.Equal(b[cont:cont+len(tc.bh)], tc.bh) {
			t.Fatalf("csid %d: continuation header % x", tc.csid, b[cont:cont+3])
		}
		if len(b) != WireSize(h, 200, 128) {
			t.Fatalf("csid %d: WireSize", tc.csid)
		}
		// Also through the Writer, twice (second message is compressed).
		w := NewWriter(128)
		b = w.Append(b, h, p)
		h2 := h
		h2.Timestamp = 80
		b = w.Append(b, h2, p)
		msgs, err := readSplit(t, NewReader(ReaderConfig{}), b, func() int { return 1 })
		if err != nil {
			t.Fatalf("csid %d: %v", tc.csid, err)
		}
		checkMsgs(t, msgs, []got{{h, p}, {h, p}, {h2, p}})
	}
}

func TestWriterFormats(t *testing.T) {
	w := NewWriter(100)
	p1 := payloadOf(250, 1)
	p2 := payloadOf(30, 2)
	steps := []struct {
		h   Header
		p   []byte
		fmt byte
	}{
		{Header{CSID: 4, Timestamp: 1000, TypeID: TypeAudio, StreamID: 1}, p1, 0},
		{Header{CSID: 4, Timestamp: 1023, TypeID: TypeAudio, StreamID: 1}, p1, 2},    // same len/type
		{Header{CSID: 4, Timestamp: 1046, TypeID: TypeAudio, StreamID: 1}, p1, 3},    // same delta
		{Header{CSID: 4, Timestamp: 1069, TypeID: TypeAudio, StreamID: 1}, p1, 3},    // again
		{Header{CSID: 4, Timestamp: 1092, TypeID: TypeAudio, StreamID: 1}, p2, 1},    // new length
		{Header{CSID: 4, Timestamp: 1092, TypeID: TypeVideo, StreamID: 1}, p2, 1},    // new type, delta 0
		{Header{CSID: 4, Timestamp: 1092, TypeID: TypeVideo, StreamID: 1}, p2, 3},    // delta 0 again
		{Header{CSID: 4, Timestamp: 1092, TypeID: TypeVideo, StreamID: 2}, p2, 0},    // new stream
		{Header{CSID: 4, Timestamp: 500, TypeID: TypeVideo, StreamID: 2}, p2, 0},     // backwards
		{Header{CSID: 5, Timestamp: 500, TypeID: TypeVideo, StreamID: 2}, p2, 0},     // other csid
		{Header{CSID: 4, Timestamp: 600, TypeID: TypeVideo, StreamID: 2}, p2, 2},     // delta 100 != 500
		{Header{CSID: 4, Timestamp: 700, TypeID: TypeVideo, StreamID: 2}, nil, 1},    // empty
		{Header{CSID: 4, Timestamp: 800, TypeID: TypeVideo, StreamID: 2}, nil, 3},    // empty again
		{Header{CSID: 300, Timestamp: 10, TypeID: TypeVideo, StreamID: 2}, p1, 0},    // 3-byte csid
		{Header{CSID: 300, Timestamp: 20, TypeID: TypeVideo, StreamID: 2}, p1, 2},    //
		{Header{CSID: 300, Timestamp: 30, TypeID: TypeVideo, StreamID: 2}, p1, 3},    //
		{Header{CSID: 300, Timestamp: 30, TypeID: TypeVideo, StreamID: 2}, p2, 1},    //
		{Header{CSID: 300, Timestamp: 40, TypeID: TypeDataAMF0, StreamID: 2}, p2, 1}, //
	}
	b := AppendSetChunkSize(nil, 100)
	want := []got{{Header{CSID: 2, TypeID: TypeSetChunkSize}, []byte{0, 0, 0, 100}}}
	for i, s := range steps {
		start := len(b)
		b = w.Append(b, s.h, s.p)
		if f := b[start] >> 6; f != s.fmt {
			t.Fatalf("step %d: format %d, want %d", i, f, s.fmt)
		}
		want = append(want, got{s.h, s.p})
	}
	checkMsgs(t, readAll(t, ReaderConfig{}, b), want)
	msgs, err := readSplit(t, NewReader(ReaderConfig{}), b, func() int { return 1 })
	if err != nil {
		t.Fatal(err)
	}
	checkMsgs(t, msgs, want)
}

func TestWriterExtendedTimestamps(t *testing.T) {
	w := NewWriter(128)
	p := payloadOf(300, 7)
	big := uint32(0x01000000)
	steps := []struct {
		ts  uint32
		fmt byte
	}{
		{0xFFFFFF, 0},                   // extended absolute
		{0xFFFFFF + 40, 2},              // small delta after extended fmt0
		{2*0xFFFFFF + 40, 2},            // extended delta on fmt 2
		{2*0xFFFFFF + 40 + 0xFFFFFF, 3}, // fmt 3 new message with extended delta
		{3*0xFFFFFF + 80, 2},            // back to a small delta
		{3*0xFFFFFF + 120, 3},           // fmt 3, no extended
		{big * 200, 2},                  // extended delta
	}
	var b []byte
	var want []got
	for i, s := range steps {
		h := Header{CSID: 6, Timestamp: s.ts, TypeID: TypeVideo, StreamID: 1}
		start := len(b)
		b = w.Append(b, h, p)
		if f := b[start] >> 6; f != s.fmt {
			t.Fatalf("step %d: format %d, want %d", i, f, s.fmt)
		}
		want = append(want, got{h, p})
	}
	// Extended delta on fmt 1 (length changes).
	h := Header{CSID: 6, Timestamp: big*200 + 0x2000000, TypeID: TypeVideo, StreamID: 1}
	start := len(b)
	b = w.Append(b, h, p[:10])
	if b[start]>>6 != 1 || !bytes.Equal(b[start+1:start+4], []byte{0xFF, 0xFF, 0xFF}) {
		t.Fatalf("fmt1 extended: % x", b[start:start+12])
	}
	want = append(want, got{h, p[:10]})
	checkMsgs(t, readAll(t, ReaderConfig{}, b), want)
	msgs, err := readSplit(t, NewReader(ReaderConfig{}), b, func() int { return 3 })
	if err != nil {
		t.Fatal(err)
	}
	checkMsgs(t, msgs, want)
}

// chunkBuilder hand-builds chunks.
type chunkBuilder struct{ b []byte }

func (c *chunkBuilder) fmt0(csid uint32, ts, length uint32, typ uint8, sid uint32) *chunkBuilder {
	c.b = appendBasicHeader(c.b, 0, csid)
	c.b = appendBE24(c.b, min(ts, 0xFFFFFF))
	c.b = appendBE24(c.b, length)
	c.b = append(c.b, typ)
	c.b = appendLE32(c.b, sid)
	if ts >= 0xFFFFFF {
		c.b = appendBE32(c.b, ts)
	}
	return c
}

func (c *chunkBuilder) fmt1(csid uint32, delta, length uint32, typ uint8) *chunkBuilder {
	c.b = appendBasicHeader(c.b, 1, csid)
	c.b = appendBE24(c.b, min(delta, 0xFFFFFF))
	c.b = appendBE24(c.b, length)
	c.b = append(c.b, typ)
	if delta >= 0xFFFFFF {
		c.b = appendBE32(c.b, delta)
	}
	return c
}

func (c *chunkBuilder) fmt2(csid uint32, delta uint32) *chunkBuilder {
	c.b = appendBasicHeader(c.b, 2, csid)
	c.b = appendBE24(c.b, min(delta, 0xFFFFFF))
	if delta >= 0xFFFFFF {
		c.b = appendBE32(c.b, delta)
	}
	return c
}

func (c *chunkBuilder) fmt3(csid uint32) *chunkBuilder {
	c.b = appendBasicHeader(c.b, 3, csid)
	return c
}

func (c *chunkBuilder) u32(v uint32) *chunkBuilder { c.b = appendBE32(c.b, v); return c }

func (c *chunkBuilder) raw(p []byte) *chunkBuilder { c.b = append(c.b, p...); return c }

func TestReaderHandBuilt(t *testing.T) {
	p := payloadOf(300, 3)
	type tc struct {
		name string
		data []byte
		want []got
	}
	var cases []tc
	{
		// fmt 3 starting a new message after fmt 0 re-adds the fmt 0
		// timestamp as the delta (ffmpeg, librtmp, SRS).
		c := &chunkBuilder{}
		c.fmt0(3, 100, 3, TypeAudio, 1).raw(p[:3]).fmt3(3).raw(p[3:6]).fmt3(3).raw(p[6:9])
		cases = append(cases, tc{"fmt3 after fmt0", c.b, []got{
			{Header{CSID: 3, Timestamp: 100, TypeID: TypeAudio, StreamID: 1}, p[:3]},
			{Header{CSID: 3, Timestamp: 200, TypeID: TypeAudio, StreamID: 1}, p[3:6]},
			{Header{CSID: 3, Timestamp: 300, TypeID: TypeAudio, StreamID: 1}, p[6:9]},
		}})
	}
	{
		// fmt 1 on a fresh chunk stream: stream id 0, timestamp = delta.
		c := &chunkBuilder{}
		c.fmt1(9, 77, 4, TypeCommandAMF0).raw(p[:4]).fmt2(9, 3).raw(p[4:8])
		cases = append(cases, tc{"fmt1 fresh", c.b, []got{
			{Header{CSID: 9, Timestamp: 77, TypeID: TypeCommandAMF0}, p[:4]},
			{Header{CSID: 9, Timestamp: 80, TypeID: TypeCommandAMF0}, p[4:8]},
		}})
	}
	{
		// Extended absolute timestamp; continuations with the repeated
		// field, then a message whose continuations omit it.
		ts := uint32(0x12345678)
		c := &chunkBuilder{}
		c.fmt0(5, ts, 300, TypeVideo, 1).raw(p[:128]).fmt3(5).u32(ts).raw(p[128:256]).fmt3(5).u32(ts).raw(p[256:])
		c.fmt0(5, ts+1, 300, TypeVideo, 1).raw(p[:128]).fmt3(5).raw(p[128:256]).fmt3(5).raw(p[256:])
		cases = append(cases, tc{"extended fmt0", c.b, []got{
			{Header{CSID: 5, Timestamp: ts, TypeID: TypeVideo, StreamID: 1}, p},
			{Header{CSID: 5, Timestamp: ts + 1, TypeID: TypeVideo, StreamID: 1}, p},
		}})
	}
	{
		// Omitted extended field where the payload starts like the
		// extended value (first 3 bytes match): still payload.
		ts := uint32(0x01020304)
		q := bytes.Clone(p)
		copy(q[128:], []byte{1, 2, 3, 9})
		c := &chunkBuilder{}
		c.fmt0(5, ts, 300, TypeVideo, 1).raw(q[:128]).fmt3(5).raw(q[128:256]).fmt3(5).raw(q[256:])
		cases = append(cases, tc{"omitted ext, partial match", c.b, []got{
			{Header{CSID: 5, Timestamp: ts, TypeID: TypeVideo, StreamID: 1}, q},
		}})
	}
	{
		// Extended delta on fmt 1 and fmt 2; fmt 3 continuation repeats
		// the delta (the first chunk's value), and a fmt 3 new message
		// carries the extended delta again.
		d1, d2 := uint32(0x01000000), uint32(0x02000000)
		c := &chunkBuilder{}
		c.fmt0(7, 10, 4, TypeAudio, 1).raw(p[:4])
		c.fmt1(7, d1, 200, TypeAudio).raw(p[:128]).fmt3(7).u32(d1).raw(p[128:200])
		c.fmt2(7, d2).raw(p[:128]).fmt3(7).raw(p[128:200]) // omitted on continuation
		c.fmt3(7).u32(d2).raw(p[:128]).fmt3(7).u32(d2).raw(p[128:200])
		cases = append(cases, tc{"extended delta", c.b, []got{
			{Header{CSID: 7, Timestamp: 10, TypeID: TypeAudio, StreamID: 1}, p[:4]},
			{Header{CSID: 7, Timestamp: 10 + d1, TypeID: TypeAudio, StreamID: 1}, p[:200]},
			{Header{CSID: 7, Timestamp: 10 + d1 + d2, TypeID: TypeAudio, StreamID: 1}, p[:200]},
			{Header{CSID: 7, Timestamp: 10 + d1 + 2*d2, TypeID: TypeAudio, StreamID: 1}, p[:200]},
		}})
	}
	{
		// Timestamps wrap modulo 2^32.
		c := &chunkBuilder{}
		c.fmt0(4, 0xFFFFFFF0, 1, TypeAudio, 1).raw(p[:1]).fmt2(4, 0x20).raw(p[:1])
		cases = append(cases, tc{"wrap", c.b, []got{
			{Header{CSID: 4, Timestamp: 0xFFFFFFF0, TypeID: TypeAudio, StreamID: 1}, p[:1]},
			{Header{CSID: 4, Timestamp: 0x10, TypeID: TypeAudio, StreamID: 1}, p[:1]},
		}})
	}
	{
		// Zero-length messages, also via fmt 3.
		c := &chunkBuilder{}
		c.fmt0(8, 5, 0, TypeDataAMF0, 1).fmt2(8, 5).fmt3(8)
		cases = append(cases, tc{"empty", c.b, []got{
			{Header{CSID: 8, Timestamp: 5, TypeID: TypeDataAMF0, StreamID: 1}, nil},
			{Header{CSID: 8, Timestamp: 10, TypeID: TypeDataAMF0, StreamID: 1}, nil},
			{Header{CSID: 8, Timestamp: 15, TypeID: TypeDataAMF0, StreamID: 1}, nil},
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkMsgs(t, readAll(t, ReaderConfig{}, c.data), c.want)
			msgs, err := readSplit(t, NewReader(ReaderConfig{}), c.data, func() int { return 1 })
			if err != nil {
				t.Fatal(err)
			}
			checkMsgs(t, msgs, c.want)
		})
	}
}

// chunks splits the output of AppendMessage into its chunks.
func chunks(b []byte, h Header, payloadLen, chunkSize int) [][]byte {
	bh := basicHeaderSize(h.CSID)
	ext := 0
	if h.Timestamp >= 0xFFFFFF {
		ext = 4
	}
	var out [][]byte
	first := bh + 11 + ext + min(payloadLen, chunkSize)
	out = append(out, b[:first])
	b = b[first:]
	for rest := payloadLen - min(payloadLen, chunkSize); rest > 0; {
		n := bh + ext + min(rest, chunkSize)
		out = append(out, b[:n])
		b = b[n:]
		rest -= min(rest, chunkSize)
	}
	return out
}

func TestReaderInterleaved(t *testing.T) {
	const cs = 128
	var data []byte
	var want []got
	for i := 0; i < 20; i++ {
		ha := Header{CSID: 4, Timestamp: uint32(i * 23), TypeID: TypeAudio, StreamID: 1}
		hv := Header{CSID: 6, Timestamp: uint32(i*33) + 0xFFFFF0, TypeID: TypeVideo, StreamID: 1} // crosses into extended
		pa := payloadOf(200+i, byte(i))
		pv := payloadOf(1000+37*i, byte(i+100))
		ca := chunks(AppendMessage(nil, ha, pa, cs), ha, len(pa), cs)
		cv := chunks(AppendMessage(nil, hv, pv, cs), hv, len(pv), cs)
		// Interleave chunk by chunk; the audio completes first.
		for j := 0; j < max(len(ca), len(cv)); j++ {
			if j < len(cv) {
				data = append(data, cv[j]...)
			}
			if j < len(ca) {
				data = append(data, ca[j]...)
			}
		}
		want = append(want, got{ha, pa}, got{hv, pv})
	}
	checkMsgs(t, readAll(t, ReaderConfig{}, data), want)
}

func TestReaderSetChunkSize(t *testing.T) {
	w := NewWriter(DefaultChunkSize)
	var b []byte
	var want []got
	add := func(ts uint32, n int) {
		h := Header{CSID: 6, Timestamp: ts, TypeID: TypeVideo, StreamID: 1}
		p := payloadOf(n, byte(ts))
		b = w.Append(b, h, p)
		want = append(want, got{h, p})
	}
	addCtl := func(size uint32) {
		b = AppendSetChunkSize(b, size)
		want = append(want, got{Header{CSID: 2, TypeID: TypeSetChunkSize}, []byte{byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)}})
		w.SetChunkSize(int(size))
	}
	add(0, 5000)
	add(40, 5000)
	addCtl(4096)
	add(80, 5000)
	add(120, 300)
	addCtl(10) // the control helpers need 10 bytes
	add(160, 50)
	addCtl(60000)
	add(200, 70000)
	r := NewReader(ReaderConfig{})
	msgs, err := readSplit(t, r, b, func() int { return 1000 })
	if err != nil {
		t.Fatal(err)
	}
	checkMsgs(t, msgs, want)
	if r.ChunkSize() != 60000 || w.ChunkSize() != 60000 {
		t.Fatalf("chunk size %d / %d", r.ChunkSize(), w.ChunkSize())
	}

	for _, bad := range []uint32{0, 0x80000000, 0x80000080, 0x1000000} {
		c := &chunkBuilder{}
		c.fmt0(2, 0, 4, TypeSetChunkSize, 0).u32(bad)
		err := readErr(t, ReaderConfig{}, c.b)
		if err == nil || !strings.Contains(err.Error(), "chunk size") {
			t.Fatalf("set chunk size %#x: %v", bad, err)
		}
	}
	// Configured maximum.
	if err := readErr(t, ReaderConfig{MaxChunkSize: 4096}, AppendSetChunkSize(nil, 4097)); err == nil {
		t.Fatal("chunk size above configured maximum accepted")
	}
	if err := readErr(t, ReaderConfig{MaxChunkSize: 4096}, AppendSetChunkSize(nil, 4096)); err != nil {
		t.Fatal(err)
	}
	// Short body.
	c := &chunkBuilder{}
	c.fmt0(2, 0, 2, TypeSetChunkSize, 0).raw([]byte{1, 0})
	if err := readErr(t, ReaderConfig{}, c.b); err == nil {
		t.Fatal("short set chunk size accepted")
	}
	// The writer ignores nonsense sizes.
	w.SetChunkSize(0)
	w.SetChunkSize(MaxChunkSize + 1)
	if w.ChunkSize() != 60000 || NewWriter(-1).ChunkSize() != DefaultChunkSize {
		t.Fatal("writer chunk size validation")
	}
}

func TestReaderAbort(t *testing.T) {
	p := payloadOf(300, 9)
	h := Header{CSID: 6, Timestamp: 1, TypeID: TypeVideo, StreamID: 1}
	full := AppendMessage(nil, h, p, 128)
	first := full[:12+128] // first chunk only

	var b []byte
	b = append(b, first...)
	b = AppendAbort(b, 6)
	b = AppendAbort(b, 77) // unknown chunk stream: no-op
	b = append(b, full...)
	msgs := readAll(t, ReaderConfig{MaxBuffered: 1000}, b)
	checkMsgs(t, msgs, []got{
		{Header{CSID: 2, TypeID: TypeAbort}, []byte{0, 0, 0, 6}},
		{Header{CSID: 2, TypeID: TypeAbort}, []byte{0, 0, 0, 77}},
		{h, p},
	})

	// Without the abort, a new header on the partial chunk stream is an error.
	err := readErr(t, ReaderConfig{}, append(append([]byte{}, first...), full...))
	if err == nil || !strings.Contains(err.Error(), "before previous message completed") {
		t.Fatalf("got %v", err)
	}
	// Short abort body.
	c := &chunkBuilder{}
	c.fmt0(2, 0, 1, TypeAbort, 0).raw([]byte{6})
	if err := readErr(t, ReaderConfig{}, c.b); err == nil {
		t.Fatal("short abort accepted")
	}
}

func TestReaderAbortReleasesBudget(t *testing.T) {
	// Partial messages count against MaxBuffered until aborted.
	cfg := ReaderConfig{MaxMessageSize: 1000, MaxBuffered: 1000}
	r := NewReader(cfg)
	b := AppendSetChunkSize(nil, 600)
	for i := 0; i < 20; i++ {
		h := Header{CSID: 6, Timestamp: uint32(i), TypeID: TypeVideo, StreamID: 1}
		b = append(b, AppendMessage(nil, h, payloadOf(900, 0), 600)[:12+600]...)
		b = AppendAbort(b, 6)
	}
	if _, err := readSplit(t, r, b, func() int { return 7 }); err != nil {
		t.Fatal(err)
	}
	if r.buffered != 0 {
		t.Fatalf("buffered %d", r.buffered)
	}
}

func TestReaderErrors(t *testing.T) {
	p := payloadOf(10, 0)
	tests := []struct {
		name string
		cfg  ReaderConfig
		data func() []byte
		want []string
	}{
		{"fmt2 fresh", ReaderConfig{}, func() []byte { return (&chunkBuilder{}).fmt2(3, 10).raw(p).b }, []string{"chunk stream 3", "format 2"}},
		{"fmt3 fresh", ReaderConfig{}, func() []byte { return (&chunkBuilder{}).fmt3(300).raw(p).b }, []string{"chunk stream 300", "format 3"}},
		{"message too large", ReaderConfig{MaxMessageSize: 1000}, func() []byte {
			return (&chunkBuilder{}).fmt0(3, 0, 1001, TypeVideo, 1).b
		}, []string{"1001", "1000"}},
		{"message too large fmt1", ReaderConfig{MaxMessageSize: 1000}, func() []byte {
			return (&chunkBuilder{}).fmt0(3, 0, 10, TypeVideo, 1).raw(p).fmt1(3, 0, 5000, TypeVideo).b
		}, []string{"5000", "1000"}},
		{"default message limit", ReaderConfig{}, func() []byte {
			return (&chunkBuilder{}).fmt0(3, 0, 8<<20+1, TypeVideo, 1).b
		}, []string{"8388609", "8388608"}},
		{"header while partial", ReaderConfig{}, func() []byte {
			return (&chunkBuilder{}).fmt0(3, 0, 200, TypeVideo, 1).raw(payloadOf(128, 0)).fmt2(3, 1).b
		}, []string{"chunk stream 3", "before previous message completed", "128 of 200"}},
		{"too many chunk streams", ReaderConfig{MaxChunkStreams: 3}, func() []byte {
			c := &chunkBuilder{}
			for _, id := range []uint32{3, 4, 400, 5} {
				c.fmt0(id, 0, 10, TypeAudio, 1).raw(p)
			}
			return c.b
		}, []string{"chunk stream 5", "limit 3"}},
		{"max buffered", ReaderConfig{MaxMessageSize: 800, MaxBuffered: 1000}, func() []byte {
			c := &chunkBuilder{}
			c.fmt0(3, 0, 700, TypeVideo, 1).raw(payloadOf(128, 0))
			c.fmt0(4, 0, 700, TypeVideo, 1).raw(payloadOf(128, 0))
			for i := 0; i < 3; i++ {
				c.fmt3(3).raw(payloadOf(128, 0))
				c.fmt3(4).raw(payloadOf(128, 0))
			}
			return c.b
		}, []string{"limit 1000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data()
			r := NewReader(tc.cfg)
			var err error
			for off := 0; off < len(data) && err == nil; {
				var n int
				n, _, err = r.Read(data[off:])
				if n == 0 && err == nil {
					break
				}
				off += n
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not mention %q", err, s)
				}
			}
			// Errors are sticky.
			if _, _, err2 := r.Read(data); err2 != err {
				t.Fatalf("second Read: %v", err2)
			}
		})
	}
}

func TestReaderMaxBufferedAllowsCompleted(t *testing.T) {
	// Completed messages do not count: many 700-byte messages in a row
	// fit a 1000-byte budget.
	var b []byte
	var want []got
	for i := 0; i < 10; i++ {
		h := Header{CSID: uint32(3 + i%3), Timestamp: uint32(i), TypeID: TypeVideo, StreamID: 1}
		p := payloadOf(700, byte(i))
		b = AppendMessage(b, h, p, 128)
		want = append(want, got{h, p})
	}
	checkMsgs(t, readAll(t, ReaderConfig{MaxMessageSize: 800, MaxBuffered: 1000}, b), want)
}

// randomStream returns n messages of a random mix: chunk size changes,
// control messages and audio, video and data messages on several chunk
// streams, of sizes up to 20000 bytes, with timestamps that cross into
// the extended range.
func randomStream(rng *rand.Rand, n int) []byte {
	w := NewWriter(128)
	var b []byte
	ts := uint32(0xFFFF00)
	for i := 0; i < n; i++ {
		switch rng.IntN(10) {
		case 0:
			n := 1 + rng.IntN(8192)
			b = AppendSetChunkSize(b, uint32(n))
			w.SetChunkSize(n)
		case 1:
			b = AppendUserControl(b, EventStreamBegin, 1)
		case 2:
			b = AppendAck(b, uint32(i))
		default:
			ts += uint32(rng.IntN(50))
			if rng.IntN(20) == 0 {
				ts += 0x1000000
			}
			csid := []uint32{3, 4, 6, 70, 400}[rng.IntN(5)]
			typ := []uint8{TypeAudio, TypeVideo, TypeDataAMF0}[rng.IntN(3)]
			size := rng.IntN(3) * 100
			if rng.IntN(3) == 0 {
				size = rng.IntN(20000)
			}
			b = w.Append(b, Header{CSID: csid, Timestamp: ts, TypeID: typ, StreamID: 1}, payloadOf(size, byte(i)))
		}
	}
	return b
}

// TestReaderSplits checks that byte-at-a-time and random splits give the
// same messages as a single buffer.
func TestReaderSplits(t *testing.T) {
	b := randomStream(rand.New(rand.NewPCG(1, 2)), 200)
	ref := readAll(t, ReaderConfig{}, b)
	if len(ref) != 200 {
		t.Fatalf("%d messages", len(ref))
	}
	one, err := readSplit(t, NewReader(ReaderConfig{}), b, func() int { return 1 })
	if err != nil {
		t.Fatal(err)
	}
	checkMsgs(t, one, ref)
	for seed := uint64(0); seed < 20; seed++ {
		rs := rand.New(rand.NewPCG(seed, 99))
		msgs, err := readSplit(t, NewReader(ReaderConfig{}), b, func() int { return 1 + rs.IntN(3000) })
		if err != nil {
			t.Fatal(err)
		}
		checkMsgs(t, msgs, ref)
	}
}

func TestReaderConsumesEverything(t *testing.T) {
	// Fed a byte at a time, the Reader takes every byte at once (partial
	// chunk payloads copied on, a partial header stashed) and completes
	// the message at its last byte.
	h := Header{CSID: 320, Timestamp: 0x1000000, TypeID: TypeVideo, StreamID: 1}
	p := payloadOf(300, 1)
	b := AppendMessage(nil, h, p, 128)
	r := NewReader(ReaderConfig{})
	for i := range b {
		n, m, err := r.Read(b[i : i+1])
		if err != nil || n != 1 {
			t.Fatalf("byte %d: consumed %d, %v", i, n, err)
		}
		if (m != nil) != (i == len(b)-1) {
			t.Fatalf("message at byte %d", i)
		}
		if m != nil && (m.Header != Header{CSID: 320, Timestamp: 0x1000000, Length: 300, TypeID: TypeVideo, StreamID: 1} || !bytes.Equal(m.Payload, p)) {
			t.Fatalf("message %+v", m.Header)
		}
		checkHeld(t, r)
	}
	if r.BytesRead() != uint64(len(b)) {
		t.Fatalf("BytesRead %d", r.BytesRead())
	}
	// A message that completes mid-buffer stops the read there.
	two := append(bytes.Clone(b), b...)
	r = NewReader(ReaderConfig{})
	r.chunkSize = 128
	n, m, err := r.Read(two)
	if err != nil || m == nil || n != len(b) {
		t.Fatalf("first of two: consumed %d, %v, %v", n, m, err)
	}
}

func TestReaderMemoryBudget(t *testing.T) {
	// Many chunk streams each carrying one large message leave idle
	// buffers behind; they are released to stay within budget.
	cfg := ReaderConfig{MaxMessageSize: 100000, MaxBuffered: 100000, MaxChunkStreams: 64}
	b := AppendSetChunkSize(nil, 4096)
	for i := 0; i < 60; i++ {
		h := Header{CSID: uint32(3 + i), Timestamp: uint32(i), TypeID: TypeVideo, StreamID: 1}
		b = AppendMessage(b, h, payloadOf(90000, byte(i)), 4096)
	}
	r := NewReader(cfg)
	if _, err := readSplit(t, r, b, func() int { return 5000 }); err != nil {
		t.Fatal(err)
	}
	checkHeld(t, r)
	if r.held > 2*r.maxBuffered {
		t.Fatalf("held %d > budget %d", r.held, 2*r.maxBuffered)
	}
}

// checkHeld verifies the Reader's memory accounting.
func checkHeld(t testing.TB, r *Reader) {
	t.Helper()
	held, buffered := 0, 0
	count := func(cs *chunkStream) {
		held += cap(cs.buf) + len(cs.placed)
		if cs.partial {
			buffered += cs.have
		}
		if cs.partial && cs.placed == nil && cs.have != len(cs.buf) || !cs.partial && cs.placed != nil {
			t.Fatalf("chunk stream: have %d, buffer %d, placed %v, partial %v", cs.have, len(cs.buf), cs.placed != nil, cs.partial)
		}
	}
	for _, cs := range r.low {
		if cs != nil {
			count(cs)
		}
	}
	for _, cs := range r.high {
		count(cs)
	}
	if held != r.held || buffered != r.buffered {
		t.Fatalf("held %d (tracked %d), buffered %d (tracked %d)", held, r.held, buffered, r.buffered)
	}
	if limit := 2*r.maxBuffered + r.maxChunkStreams*minGrow; held > limit {
		t.Fatalf("held %d exceeds bound %d", held, limit)
	}
	if buffered > r.maxBuffered {
		t.Fatalf("buffered %d exceeds %d", buffered, r.maxBuffered)
	}
}

func TestReaderZeroAllocs(t *testing.T) {
	var b []byte
	w := NewWriter(128)
	for i := 0; i < 16; i++ {
		b = w.Append(b, Header{CSID: 6, Timestamp: uint32(i * 40), TypeID: TypeVideo, StreamID: 1}, payloadOf(5000, byte(i)))
		b = w.Append(b, Header{CSID: 4, Timestamp: uint32(i * 23), TypeID: TypeAudio, StreamID: 1}, payloadOf(300, byte(i)))
	}
	r := NewReader(ReaderConfig{})
	read := func() {
		for data := b; len(data) > 0; {
			n, _, err := r.Read(data)
			if err != nil || n == 0 {
				panic(fmt.Sprint("read: ", n, err))
			}
			data = data[n:]
		}
	}
	read() // warm up buffers
	// Replaying the same bytes would put fmt 2/3 headers after the last
	// message; they parse fine, only timestamps differ.
	if a := testing.AllocsPerRun(20, read); a != 0 {
		t.Fatalf("%v allocs per run", a)
	}
	dst := make([]byte, 0, 32768)
	p := payloadOf(5000, 1)
	if a := testing.AllocsPerRun(100, func() {
		dst = AppendMessage(dst[:0], Header{CSID: 6, Timestamp: 0x1000000, TypeID: TypeVideo, StreamID: 1}, p, 4096)
		dst = AppendSetChunkSize(dst, 4096)
		dst = AppendAck(dst, 1)
		dst = AppendSetPeerBandwidth(dst, 1, 2)
		dst = AppendSetBufferLength(dst, 1, 2)
		dst = AppendPingRequest(dst, 1)
		dst = w.Append(dst, Header{CSID: 6, Timestamp: 0x1000000, TypeID: TypeVideo, StreamID: 1}, p)
	}); a != 0 {
		t.Fatalf("append: %v allocs per run", a)
	}
}

func TestReaderReleaseShrinks(t *testing.T) {
	cfg := ReaderConfig{MaxMessageSize: 50000, MaxBuffered: 50000}
	const size = 45000
	hA := Header{CSID: 400, Timestamp: 1, TypeID: TypeVideo, StreamID: 1}
	hB := Header{CSID: 3, Timestamp: 2, TypeID: TypeVideo, StreamID: 1}
	hC := Header{CSID: 4, Timestamp: 3, TypeID: TypeVideo, StreamID: 1}
	pA, pA2, pB, pC := payloadOf(size, 1), payloadOf(size, 2), payloadOf(size, 3), payloadOf(size, 4)
	hA2 := hA
	hA2.Timestamp = 5
	second := AppendMessage(nil, hA2, pA2, 4096)
	firstChunk := 3 + 11 + 4096

	b := AppendSetChunkSize(nil, 4096)
	b = AppendMessage(b, hA, pA, 4096)    // A ends idle with a 45000-byte buffer
	b = append(b, second[:firstChunk]...) // A partial again: 4096 bytes in a 45000-byte buffer
	b = AppendMessage(b, hB, pB, 4096)    // B idle with 45000
	b = AppendMessage(b, hC, pC, 4096)    // C's growth exceeds the budget: B released, A shrunk
	b = append(b, second[firstChunk:]...) // A completes
	r := NewReader(cfg)
	msgs, err := readSplit(t, r, b, func() int { return 1000 })
	if err != nil {
		t.Fatal(err)
	}
	checkMsgs(t, msgs[1:], []got{{hA, pA}, {hB, pB}, {hC, pC}, {hA2, pA2}})
	checkHeld(t, r)
	if r.stream(3).buf != nil {
		t.Fatal("idle buffer not released")
	}
	if r.held > 2*r.maxBuffered {
		t.Fatalf("held %d", r.held)
	}
}

func TestNewReaderDefaults(t *testing.T) {
	r := NewReader(ReaderConfig{MaxMessageSize: 1 << 30, MaxChunkSize: -1})
	if r.maxMessageSize != MaxChunkSize || r.maxChunkSize != MaxChunkSize || r.maxChunkStreams != 64 || r.maxBuffered != 2*MaxChunkSize {
		t.Fatalf("%+v", r)
	}
	if r.ChunkSize() != DefaultChunkSize || r.BytesRead() != 0 {
		t.Fatal("initial state")
	}
}

func TestReaderCommandLimitThenPublishLimit(t *testing.T) {
	// Before publishing a connection may only send small messages; the
	// limit is raised for messages that start after SetMaxMessageSize.
	h := Header{CSID: 6, TypeID: TypeVideo, StreamID: 1}
	big := AppendMessage(AppendSetChunkSize(nil, 4096), h, payloadOf(100000, 1), 4096)
	err := readErr(t, ReaderConfig{MaxMessageSize: 64 << 10}, big)
	if !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("100000-byte message under a 64 KiB limit: %v", err)
	}
	r := NewReader(ReaderConfig{MaxMessageSize: 64 << 10})
	if r.maxBuffered != 128<<10 {
		t.Fatalf("buffered limit %d", r.maxBuffered)
	}
	r.SetMaxMessageSize(8 << 20)
	if r.MaxMessageSize() != 8<<20 || r.maxBuffered != 16<<20 {
		t.Fatalf("limits after raise: %d, %d", r.MaxMessageSize(), r.maxBuffered)
	}
	msgs, err := readSplit(t, r, big, func() int { return 10000 })
	if err != nil || len(msgs) != 2 {
		t.Fatalf("after raising the limit: %d messages, %v", len(msgs), err)
	}
	checkHeld(t, r)
}

func TestReaderHalfSentMessageHoldsWhatArrived(t *testing.T) {
	// A message declared 8 MiB - 1 of which half arrived holds about half,
	// never the declared length.
	const length = 8<<20 - 1
	h := Header{CSID: 6, TypeID: TypeVideo, StreamID: 1, Length: length}
	full := AppendMessage(AppendSetChunkSize(nil, 65536), h, make([]byte, length), 65536)
	r := NewReader(ReaderConfig{})
	for _, sent := range []int{1000, 100 << 10, 1 << 20, 4 << 20, 6<<20 + 12345} {
		r = NewReader(ReaderConfig{})
		part := full[:sent]
		for len(part) > 0 {
			n, m, err := r.Read(part)
			if err != nil || m != nil && m.TypeID != TypeSetChunkSize {
				t.Fatalf("read: %v %v", m, err)
			}
			if n == 0 {
				break
			}
			part = part[n:]
		}
		have := r.buffered
		if held := r.Held(); held > 2*have+minGrow || held > have+maxGrowStep {
			t.Errorf("%d bytes of the message arrived: %d held", have, held)
		}
		checkHeld(t, r)
	}
}

func TestReaderDropsBigBufferAfterItsMessage(t *testing.T) {
	// A big message's buffer goes once the message has been handed out;
	// a small one is kept for the next message (no allocation per message).
	hBig := Header{CSID: 6, TypeID: TypeVideo, StreamID: 1}
	hSmall := Header{CSID: 4, TypeID: TypeAudio, StreamID: 1}
	b := AppendSetChunkSize(nil, 4096)
	b = AppendMessage(b, hBig, payloadOf(300000, 1), 4096)
	b = AppendMessage(b, hSmall, payloadOf(1000, 2), 4096)
	r := NewReader(ReaderConfig{})
	msgs, err := readSplit(t, r, b, func() int { return len(b) })
	if err != nil || len(msgs) != 3 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	checkHeld(t, r)
	if r.stream(6).buf != nil || cap(r.stream(4).buf) != 1000 || r.Held() > retainCap {
		t.Fatalf("held %d after the big message was handed out", r.Held())
	}
}
