package edge

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/flv"
	"github.com/rtmpedge/rtmpedge/httpflv"
	"github.com/rtmpedge/rtmpedge/pool"
)

// Test payloads in FLV tag body form.
var (
	avcSeq    = []byte{0x17, 0, 0, 0, 0, 1, 2, 3}
	avcKey    = []byte{0x17, 1, 0, 0, 0, 9, 9, 9}
	avcInter  = []byte{0x27, 1, 0, 0, 0, 8, 8}
	aacSeq    = []byte{0xaf, 0, 0x12, 0x10}
	aacFrame  = []byte{0xaf, 1, 5, 5, 5}
	metaBody  = append(append([]byte{}, setDataFrame...), append(append([]byte{}, onMetaData...), 0x05)...)
	hevcExSeq = []byte{0x90, 'h', 'v', 'c', '1', 1, 2, 3} // enhanced RTMP: key frame, SequenceStart
	hevcExKey = []byte{0x93, 'h', 'v', 'c', '1', 4, 5}    // key frame, CodedFramesX
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name    string
		typeID  uint8
		payload []byte
		want    Media
	}{
		{"avc seq", chunk.TypeVideo, avcSeq, Media{Kind: KindVideo, SeqHeader: true}},
		{"avc key", chunk.TypeVideo, avcKey, Media{Kind: KindVideo, Keyframe: true}},
		{"avc inter", chunk.TypeVideo, avcInter, Media{Kind: KindVideo}},
		{"hevc enhanced seq", chunk.TypeVideo, hevcExSeq, Media{Kind: KindVideo, SeqHeader: true}},
		{"hevc enhanced key", chunk.TypeVideo, hevcExKey, Media{Kind: KindVideo, Keyframe: true}},
		{"aac seq", chunk.TypeAudio, aacSeq, Media{Kind: KindAudio, SeqHeader: true}},
		{"aac frame", chunk.TypeAudio, aacFrame, Media{Kind: KindAudio}},
		{"mp3", chunk.TypeAudio, []byte{0x2f, 0xff}, Media{Kind: KindAudio}},
		{"truncated video", chunk.TypeVideo, []byte{0x17}, Media{Kind: KindVideo}},
	}
	for _, c := range cases {
		if got := Classify(c.typeID, c.payload); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestMetadataBodyStripsSetDataFrame(t *testing.T) {
	body, ok := MetadataBody(chunk.TypeDataAMF0, metaBody)
	if !ok || !bytes.HasPrefix(body, onMetaData) {
		t.Fatalf("body %x ok=%v", body, ok)
	}
	body, ok = MetadataBody(chunk.TypeDataAMF3, append([]byte{0}, metaBody...))
	if !ok || !bytes.HasPrefix(body, onMetaData) {
		t.Fatalf("amf3 body %x ok=%v", body, ok)
	}
}

// readBack parses the chunk bytes of packets into messages.
func readBack(t *testing.T, chunkSize int, data ...[]byte) []chunk.Message {
	t.Helper()
	rd := chunk.NewReader(chunk.ReaderConfig{})
	var all []byte
	all = chunk.AppendSetChunkSize(all, uint32(chunkSize))
	for _, d := range data {
		all = append(all, d...)
	}
	var out []chunk.Message
	for len(all) > 0 {
		n, msg, err := rd.Read(all)
		if err != nil {
			t.Fatal(err)
		}
		all = all[n:]
		if msg == nil {
			break
		}
		if msg.TypeID == chunk.TypeSetChunkSize {
			continue
		}
		m := *msg
		m.Payload = append([]byte(nil), msg.Payload...)
		out = append(out, m)
	}
	return out
}

// publishedHub returns a hub of stream name (chunk size 128, GOP cache on)
// and its publisher.
func publishedHub(t *testing.T, name string) (*Hub, any) {
	t.Helper()
	h := NewRegistry().Acquire(Key{"v", "live", name}, Options{ChunkSize: 128, GopCache: true, GopCacheMaxBytes: 1 << 20})
	pub := new(int)
	if err := h.Publish(pub); err != nil {
		t.Fatal(err)
	}
	return h, pub
}

func TestHubServesHeadersAndGOP(t *testing.T) {
	h, pub := publishedHub(t, "s")
	if err := h.Publish(new(int)); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second publish: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.Append(pub, chunk.TypeDataAMF0, 0, metaBody))
	must(h.Append(pub, chunk.TypeVideo, 0, avcSeq))
	must(h.Append(pub, chunk.TypeAudio, 0, aacSeq))
	must(h.Append(pub, chunk.TypeVideo, 0, avcKey))
	big := append([]byte{0x27, 1, 0, 0, 0}, bytes.Repeat([]byte{7}, 1000)...)
	must(h.Append(pub, chunk.TypeVideo, 40, big))
	must(h.Append(pub, chunk.TypeAudio, 23, aacFrame))
	if err := h.Append(new(int), chunk.TypeAudio, 23, aacFrame); !errors.Is(err, ErrNotPublisher) {
		t.Fatalf("append from a stranger: %v", err)
	}

	cursor, waitKey := h.Join()
	if waitKey {
		t.Fatal("join waits for a keyframe although the GOP is cached")
	}
	var s Snapshot
	h.Snapshot(cursor, &s)
	if len(s.Headers) != 3 || len(s.Packets) != 3 {
		t.Fatalf("headers %d packets %d, want 3 and 3", len(s.Headers), len(s.Packets))
	}
	if !s.Packets[0].Keyframe || s.Packets[0].Kind != KindVideo {
		t.Fatalf("GOP does not start at the keyframe: %+v", s.Packets[0])
	}
	msgs := readBack(t, 128, append(dataOf(s.Headers), s.Packets[0].Data, s.Packets[1].Data, s.Packets[2].Data)...)
	if len(msgs) != 6 {
		t.Fatalf("read back %d messages, want 6", len(msgs))
	}
	if !bytes.HasPrefix(msgs[0].Payload, onMetaData) || msgs[0].TypeID != chunk.TypeDataAMF0 {
		t.Errorf("metadata came back as type %d %x", msgs[0].TypeID, msgs[0].Payload)
	}
	if !bytes.Equal(msgs[4].Payload, big) || msgs[4].Timestamp != 40 || msgs[4].StreamID != StreamID {
		t.Errorf("big frame: ts %d sid %d equal %v", msgs[4].Timestamp, msgs[4].StreamID, bytes.Equal(msgs[4].Payload, big))
	}
}

// needsAll is the waker of a player that has every packet still to send:
// the hub keeps them (up to BacklogMaxBytes).
type needsAll struct{}

func (needsAll) Wake(uint32, Kind, bool) {}
func (needsAll) Need() uint64            { return 0 }

// watchedHub is a hub whose packets a player needs, all of them kept.
func watchedHub() *Hub {
	h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, BacklogMaxBytes: 8 << 20})
	h.AddWaker(needsAll{})
	return h
}

func TestHubTimestampsContinueAcrossPublishers(t *testing.T) {
	h := watchedHub()
	first, second := new(int), new(int)
	_ = h.Publish(first)
	for ts := uint32(1000); ts <= 5000; ts += 40 {
		_ = h.Append(first, chunk.TypeVideo, ts, avcInter)
	}
	h.Unpublish(first)
	_ = h.Publish(second)
	_ = h.Append(second, chunk.TypeVideo, 0, avcKey)
	_ = h.Append(second, chunk.TypeVideo, 40, avcInter)
	var s Snapshot
	h.Snapshot(0, &s)
	var last uint32
	for i, p := range s.Packets {
		if p.Kind == KindControl {
			continue
		}
		if i > 0 && p.Timestamp < last {
			t.Fatalf("timestamp went back: %d after %d", p.Timestamp, last)
		}
		last = p.Timestamp
	}
	if last != 5000+continuityGap+40 {
		t.Fatalf("last timestamp %d, want %d", last, 5000+continuityGap+40)
	}
}

func TestHubRingStaysBounded(t *testing.T) {
	h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 64 << 10})
	pub := new(int)
	_ = h.Publish(pub)
	frame := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 1000)...)
	_ = h.Append(pub, chunk.TypeVideo, 0, avcKey)
	for i := range 100000 { // one endless GOP
		_ = h.Append(pub, chunk.TypeVideo, uint32(i), frame)
	}
	if h.head-h.tail > keepPackets+1 {
		t.Fatalf("ring holds %d packets after the GOP overflowed its byte limit", h.head-h.tail)
	}
	if h.hasGop {
		t.Fatal("GOP cache still on past gop_cache_max_bytes")
	}
	if h.ringBytes > keepBytes+2*len(frame)+64 {
		t.Fatalf("ring holds %d bytes", h.ringBytes)
	}
	// A new keyframe starts caching again.
	_ = h.Append(pub, chunk.TypeVideo, 100001, avcKey)
	if c, wait := h.Join(); wait || c != h.head-1 {
		t.Fatalf("join at %d wait=%v, want %d", c, wait, h.head-1)
	}
}

func TestRegistryReleasesHub(t *testing.T) {
	r := NewRegistry()
	k := Key{"v", "a", "s"}
	h1 := r.Acquire(k, Options{})
	h2 := r.Acquire(k, Options{})
	if h1 != h2 {
		t.Fatal("two hubs for one key")
	}
	r.Release(h1)
	if r.Len() != 1 {
		t.Fatal("hub removed while held")
	}
	r.Release(h2)
	if r.Len() != 0 {
		t.Fatal("hub kept after the last release")
	}
}

func TestSplitAggregate(t *testing.T) {
	tag := func(typeID byte, ts uint32, body []byte) []byte {
		b := []byte{typeID, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body)), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
		b = append(b, body...)
		n := uint32(11 + len(body))
		return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	agg := append(tag(9, 500, avcKey), tag(8, 520, aacFrame)...)
	var got []uint32
	err := SplitAggregate(1000, agg, func(typeID uint8, ts uint32, body []byte) error {
		got = append(got, ts)
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != 1000 || got[1] != 1020 {
		t.Fatalf("got %v, %v", got, err)
	}
	if err := SplitAggregate(0, agg[:20], func(uint8, uint32, []byte) error { return nil }); err == nil {
		t.Fatal("truncated aggregate accepted")
	}
}

// BenchmarkHubAppend copies 5 KB messages into a stream with a GOP every
// 60 (its blocks recycled, as a server's are: 0 allocations per message).
func BenchmarkHubAppend(b *testing.B) {
	h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 16 << 20, Blocks: pool.NewBlocks(0)})
	pub := new(int)
	_ = h.Publish(pub)
	frame := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 5000)...)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	i := uint32(0)
	for b.Loop() {
		i++
		if i%60 == 0 {
			_ = h.Append(pub, chunk.TypeVideo, i*33, avcKey)
			continue
		}
		_ = h.Append(pub, chunk.TypeVideo, i*33, frame)
	}
}

// TestHubMetadataHasTimestampZero checks that onMetaData reaches players
// with timestamp 0 whatever the publisher stamped it with, at join and
// when it changes mid-stream, while other data messages keep theirs.
func TestHubMetadataHasTimestampZero(t *testing.T) {
	h, pub := publishedHub(t, "m")
	h.AddWaker(needsAll{})
	cue := []byte{0x02, 0x00, 0x0a, 'o', 'n', 'C', 'u', 'e', 'P', 'o', 'i', 'n', 't', 0x05}
	update := append(append([]byte{}, metaBody...), 0x05)
	for _, m := range []struct {
		typeID  uint8
		ts      uint32
		payload []byte
	}{
		{chunk.TypeDataAMF0, 1700, metaBody},
		{chunk.TypeVideo, 1700, avcSeq},
		{chunk.TypeVideo, 1700, avcKey},
		{chunk.TypeDataAMF0, 5000, update},
		{chunk.TypeDataAMF0, 5040, cue},
	} {
		if err := h.Append(pub, m.typeID, m.ts, m.payload); err != nil {
			t.Fatal(err)
		}
	}
	var s Snapshot
	h.Snapshot(0, &s)
	headers := readBack(t, 128, dataOf(s.Headers)...)
	if len(headers) != 2 || headers[0].TypeID != chunk.TypeDataAMF0 || headers[0].Timestamp != 0 {
		t.Fatalf("join headers: %+v, want metadata with timestamp 0 first", headers)
	}
	var data [][]byte
	for _, p := range s.Packets {
		data = append(data, p.Data)
	}
	msgs := readBack(t, 128, data...)
	var got []uint32
	for _, m := range msgs {
		if m.TypeID == chunk.TypeDataAMF0 {
			got = append(got, m.Timestamp)
		}
	}
	if len(got) != 3 || got[0] != 0 || got[1] != 0 || got[2] != 5040 {
		t.Fatalf("data message timestamps %v, want [0 0 5040] (metadata 0, onCuePoint its own)", got)
	}
}

// A publisher's timestamps that go back, jump by 2^31 or more than 10 s
// reach players as one timeline going forward; a wrap around 2^32 and
// audio behind video pass as they are.
func TestHubTimestampsContinueAcrossDiscontinuities(t *testing.T) {
	h := watchedHub()
	pub := new(int)
	_ = h.Publish(pub)
	var sent []uint32
	for _, start := range []uint32{5000, 0, 1<<31 + 500, 1<<32 - 100, 60000, 600} {
		for i := range uint32(5) {
			sent = append(sent, start+i*40)
		}
	}
	for _, ts := range sent {
		_ = h.Append(pub, chunk.TypeVideo, ts, avcInter)
		_ = h.Append(pub, chunk.TypeAudio, ts-3000, []byte{0xaf, 1, 2})
	}
	var s Snapshot
	h.Snapshot(0, &s)
	var video, audio []uint32
	for _, p := range s.Packets {
		switch p.Kind {
		case KindVideo:
			video = append(video, p.Timestamp)
		case KindAudio:
			audio = append(audio, p.Timestamp)
		}
	}
	for i := 1; i < len(video); i++ {
		for kind, ts := range map[string][]uint32{"video": video, "audio": audio} {
			if d := int32(ts[i] - ts[i-1]); d <= 0 || d > 1000 {
				t.Fatalf("%s %d: timestamp %d after %d (sent %d after %d)", kind, i, ts[i], ts[i-1], sent[i], sent[i-1])
			}
		}
		if video[i]-audio[i] != 3000 { // the publisher's offset stays
			t.Fatalf("packet pair %d: video %d, audio %d", i, video[i], audio[i])
		}
	}
	// The wrap: 1<<32 - 100 + 80 is followed by 1<<32 - 100 + 120 = 20.
	if video[len(video)-1]-video[0] >= 1<<31 {
		t.Fatalf("timeline from %d to %d", video[0], video[len(video)-1])
	}
}

// Audio seconds away from video is no discontinuity: each kind is
// compared with itself, and the timestamps pass unchanged.
func TestHubKeepsAnAudioVideoOffset(t *testing.T) {
	h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 1 << 20})
	pub := new(int)
	_ = h.Publish(pub)
	for i := range uint32(25) { // 50 packets, a GOP: the hub keeps them all
		frame := avcInter
		if i == 0 {
			frame = avcKey
		}
		_ = h.Append(pub, chunk.TypeVideo, 10000+i*40, frame)
		_ = h.Append(pub, chunk.TypeAudio, 2000+i*40, []byte{0xaf, 1, 2})
	}
	var s Snapshot
	h.Snapshot(0, &s)
	next := map[Kind]uint32{KindVideo: 10000, KindAudio: 2000}
	for i, p := range s.Packets {
		if p.Kind != KindAudio && p.Kind != KindVideo {
			continue
		}
		if p.Timestamp != next[p.Kind] {
			t.Fatalf("packet %d (kind %d): timestamp %d, want %d", i, p.Kind, p.Timestamp, next[p.Kind])
		}
		next[p.Kind] += 40
	}
	if next[KindVideo] != 11000 || next[KindAudio] != 3000 {
		t.Fatalf("packets missing: %v", next)
	}
}

// dataOf returns the RTMP bytes of packets.
func dataOf(pkts []Packet) [][]byte {
	var out [][]byte
	for _, p := range pkts {
		out = append(out, p.Data)
	}
	return out
}

// Every packet's FLV view is the FLV tag of its message: the header, the
// payload taken out of the RTMP chunks (however many), the trailer; and
// the same inside a WebSocket frame.
func TestPacketFLVView(t *testing.T) {
	for _, c := range []struct {
		chunkSize int
		size      int
		ts        uint32
	}{{128, 100, 40}, {128, 128, 40}, {128, 1000, 0x7FFFFF}, {4096, 20000, 33}, {128, 300, 0x1000000}, {4096, 70000, 5}} {
		h := newHub(Key{Vhost: "v", App: "a", Stream: "s"}, Options{ChunkSize: c.chunkSize, GopCache: true, GopCacheMaxBytes: 1 << 20})
		pub := new(int)
		if err := h.Publish(pub); err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, c.size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		payload[0], payload[1] = 0x17, 1 // an AVC keyframe, cached
		_ = h.Append(pub, chunk.TypeVideo, c.ts-40, []byte{0x17, 0, 0, 0, 0, 1, 0x64})
		if err := h.Append(pub, chunk.TypeVideo, c.ts, payload); err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		h.Snapshot(0, &s)
		p := s.Packets[len(s.Packets)-1]
		if (c.ts >= 0xFFFFFF) != (p.Timestamp >= 0xFFFFFF) {
			t.Fatalf("timestamp %d became %d: the extended timestamp case is not exercised", c.ts, p.Timestamp)
		}
		want := flv.AppendTagHeader(nil, flv.TagVideo, c.size, p.Timestamp)
		want = append(want, payload...)
		want = flv.AppendTrailer(want, c.size)
		if got := bytes.Join(p.AppendFLV(nil, c.chunkSize, false), nil); !bytes.Equal(got, want) {
			t.Fatalf("chunk size %d, %d bytes at %d: FLV view differs (len %d, want %d)", c.chunkSize, c.size, c.ts, len(got), len(want))
		}
		ws := httpflv.AppendFrameHeader(nil, httpflv.OpBinary, len(want))
		if got := bytes.Join(p.AppendFLV(nil, c.chunkSize, true), nil); !bytes.Equal(got, append(ws, want...)) {
			t.Fatalf("chunk size %d, %d bytes: WebSocket view differs", c.chunkSize, c.size)
		}
	}
}

// hubPlacer places the media of a chunk stream into h's packets.
type hubPlacer struct{ h *Hub }

func (p hubPlacer) Place(hdr *chunk.Header) ([]byte, chunk.Layout) {
	if hdr.TypeID != chunk.TypeAudio && hdr.TypeID != chunk.TypeVideo {
		return nil, chunk.Layout{}
	}
	return p.h.Place(hdr.TypeID, hdr.Timestamp, int(hdr.Length))
}

// feedPlaced reads the chunked messages in b into h as its publisher pub
// does: media placed, the rest appended.
func feedPlaced(t testing.TB, h *Hub, pub any, b []byte) {
	rd := chunk.NewReader(chunk.ReaderConfig{})
	rd.SetPlacer(hubPlacer{h})
	for len(b) > 0 {
		n, m, err := rd.Read(b[:min(len(b), 1400)])
		if err != nil {
			t.Fatal(err)
		}
		b = b[n:]
		switch {
		case m == nil:
		case m.Placed != nil:
			err = h.AppendPlaced(pub, m)
		case m.TypeID != chunk.TypeSetChunkSize:
			err = h.Append(pub, m.TypeID, m.Timestamp, m.Payload)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestHubPlacedPacketsMatchCopied feeds one stream to two hubs, copied
// (Append) and placed (Place, AppendPlaced): players get the same bytes,
// across repeated headers, timestamp discontinuities and the extended
// range (where a placed layout may turn out wrong and is copied).
func TestHubPlacedPacketsMatchCopied(t *testing.T) {
	for _, cs := range []int{128, 4096} {
		opts := Options{ChunkSize: cs, GopCache: true, GopCacheMaxBytes: 1 << 20, BacklogMaxBytes: 8 << 20}
		copied, placed := newHub(Key{"v", "a", "c"}, opts), newHub(Key{"v", "a", "p"}, opts)
		pub := new(int)
		_ = copied.Publish(pub)
		_ = placed.Publish(pub)
		w := chunk.NewWriter(4096)
		in := chunk.AppendSetChunkSize(nil, 4096)
		send := func(typeID uint8, ts uint32, p []byte) {
			in = w.Append(in, chunk.Header{CSID: MediaCSID(typeID), Timestamp: ts, TypeID: typeID, StreamID: 1}, p)
			if err := copied.Append(pub, typeID, ts, p); err != nil {
				t.Fatal(err)
			}
		}
		big := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 9000)...)
		send(chunk.TypeDataAMF0, 0, metaBody)
		for i, start := range []uint32{0xFFFF00, 0, 1<<31 + 500, 1<<32 - 100, 0xFFFFF0, 600} {
			send(chunk.TypeVideo, start, avcSeq)
			for j := range uint32(6) {
				frame := avcInter
				if j == 0 {
					frame = avcKey
				} else if j == 3 {
					frame = big
				}
				send(chunk.TypeVideo, start+j*40, frame)
				send(chunk.TypeAudio, start+j*40+5, []byte{0xaf, 1, byte(i), byte(j)})
			}
		}
		feedPlaced(t, placed, pub, in)
		var a, b Snapshot
		copied.Snapshot(0, &a)
		placed.Snapshot(0, &b)
		if len(a.Packets) != len(b.Packets) || len(a.Headers) != len(b.Headers) {
			t.Fatalf("chunk size %d: %d packets and %d headers copied, %d and %d placed", cs, len(a.Packets), len(a.Headers), len(b.Packets), len(b.Headers))
		}
		for i, p := range append(a.Headers, a.Packets...) {
			q := append(b.Headers, b.Packets...)[i]
			if !bytes.Equal(p.Data, q.Data) || !bytes.Equal(p.Tag(), q.Tag()) || p.Timestamp != q.Timestamp || p.Kind != q.Kind ||
				p.Keyframe != q.Keyframe || p.Len != q.Len || p.WSHead != q.WSHead || p.Body != q.Body || p.Cont != q.Cont {
				t.Fatalf("chunk size %d: packet %d differs: copied %d bytes at %d, placed %d bytes at %d", cs, i, len(p.Data), p.Timestamp, len(q.Data), q.Timestamp)
			}
		}
	}
}

// BenchmarkHubAppendPlaced is BenchmarkHubAppend with the payloads placed
// by a chunk reader: one op reads one 5 KB message and makes it a packet.
func BenchmarkHubAppendPlaced(b *testing.B) {
	h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 16 << 20, Blocks: pool.NewBlocks(0)})
	pub := new(int)
	_ = h.Publish(pub)
	frame := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 5000)...)
	w := chunk.NewWriter(4096)
	in := chunk.AppendSetChunkSize(nil, 4096)
	for i := range uint32(600) {
		f := frame
		if i%60 == 0 {
			f = avcKey
		}
		in = w.Append(in, chunk.Header{CSID: 6, Timestamp: i * 33, TypeID: chunk.TypeVideo, StreamID: 1}, f)
	}
	rd := chunk.NewReader(chunk.ReaderConfig{})
	rd.SetPlacer(hubPlacer{h})
	pos := 0
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		for {
			if pos == len(in) {
				pos = 0 // replayed: format-3 headers keep the timestamps going up
			}
			n, m, err := rd.Read(in[pos:min(pos+1448, len(in))])
			pos += n
			if err != nil {
				b.Fatal(err)
			}
			if m != nil && m.Placed != nil {
				_ = h.AppendPlaced(pub, m)
				break
			}
		}
	}
}

// TestHubPlacedLayoutThatNoLongerFits: a message placed for a timestamp
// below the extended range that turns out to be in it (the publisher's
// clock jumped) is copied into a packet of the right layout.
func TestHubPlacedLayoutThatNoLongerFits(t *testing.T) {
	opts := Options{ChunkSize: 128, BacklogMaxBytes: 1 << 20}
	placed, copied := newHub(Key{"v", "a", "p"}, opts), newHub(Key{"v", "a", "c"}, opts)
	placed.AddWaker(needsAll{})
	copied.AddWaker(needsAll{})
	pub := new(int)
	_ = placed.Publish(pub)
	_ = copied.Publish(pub)
	payload := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 300)...)
	buf, l := placed.Place(chunk.TypeVideo, 100, len(payload))
	for off := 0; off < len(payload); off += l.Piece { // as a reader places it
		at := l.Off + off + off/l.Piece*l.Gap
		copy(buf[at:], payload[off:min(off+l.Piece, len(payload))])
	}
	m := chunk.Message{Header: chunk.Header{Timestamp: 0x1000000, Length: uint32(len(payload)), TypeID: chunk.TypeVideo}, Placed: buf, Layout: l}
	if err := placed.AppendPlaced(pub, &m); err != nil {
		t.Fatal(err)
	}
	_ = copied.Append(pub, chunk.TypeVideo, 0x1000000, payload)
	var a, b Snapshot
	placed.Snapshot(0, &a)
	copied.Snapshot(0, &b)
	p, q := a.Packets[len(a.Packets)-1], b.Packets[len(b.Packets)-1]
	if !bytes.Equal(p.Data, q.Data) || !bytes.Equal(p.Tag(), q.Tag()) || p.Cont != 5 || q.Cont != 5 {
		t.Fatalf("placed %x\ncopied %x", p.Data, q.Data)
	}
}

// Outside its GOP cache a hub keeps packets only for players: up to 16 in
// all as a margin when some player may be joining (its group woke with the
// hub), right after a keyframe say; none when no group is there.
func TestHubKeepsNothingOutsideTheGOPWithoutPlayers(t *testing.T) {
	for _, watched := range []bool{false, true} {
		h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 1 << 20})
		if watched {
			h.AddWaker(nopWaker{})
		}
		pub := new(int)
		_ = h.Publish(pub)
		for i := range uint32(100) {
			f := avcInter
			if i == 0 || i == 99 { // the last packet starts a new GOP
				f = avcKey
			}
			_ = h.Append(pub, chunk.TypeVideo, i*40, f)
		}
		outside := h.gopStart - h.tail
		if want := map[bool]uint64{false: 0, true: keepPackets - 1}[watched]; outside != want {
			t.Fatalf("watched %v: %d packets kept outside the GOP, want %d", watched, outside, want)
		}
	}
}

type nopWaker struct{}

func (nopWaker) Wake(uint32, Kind, bool) {}
func (nopWaker) Need() uint64            { return NoNeed }

func TestBlockSizeFollowsBitRateAndFrames(t *testing.T) {
	for _, c := range []struct {
		bitRate   int64
		frameSize int
		want      int
	}{
		{0, 0, minBlockSize},
		{1_160_000, 4200, 16 << 10},   // an eighth of a second: 18 KB; three frames: 12.6 KB
		{860_000, 4050, 16 << 10},     // 13 KB a second's eighth, but three frames need 12.2 KB of 16
		{400_000, 1000, 4 << 10},      // 6 KB an eighth: 4 KiB (a power of two under it), three frames fit
		{20_000_000, 30000, 64 << 10}, // at most 64 KiB
	} {
		if got := blockSizeFor(c.bitRate, c.frameSize); got != c.want {
			t.Errorf("%d bit/s, frames of %d: %d, want %d", c.bitRate, c.frameSize, got, c.want)
		}
	}
}

// The bit rate capacity admits players on is averaged over whole GOPs, so
// it does not swing with how many keyframes a window of time holds.
func TestBitRateAveragesWholeGOPs(t *testing.T) {
	h, pub := publishedHub(t, "rate")
	key := append([]byte{0x17, 1, 0, 0, 0}, make([]byte, 40_000)...)
	inter := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 2_000)...)
	audio := append([]byte{0xaf, 1}, make([]byte, 300)...)
	// 2 s GOPs: 50 video frames 40 ms apart, 80 audio frames 25 ms apart,
	// each sent after the video frame it precedes (as muxers interleave):
	// the timestamps go back by up to 37 ms.
	const gopMs = 2000
	gopBytes := len(key) + 49*len(inter) + 80*len(audio)
	wantRate := int64(gopBytes) * 8 * 1000 / gopMs
	wantMsgs := int64(50+80) * 1000 / gopMs
	lo, hi := wantRate, wantRate
	a := 0
	for gop := range 12 {
		base := uint32(gop * gopMs)
		for f := range 50 {
			ts := base + uint32(f*40)
			payload := inter
			if f == 0 {
				payload = key
			}
			if err := h.Append(pub, chunk.TypeVideo, ts, payload); err != nil {
				t.Fatal(err)
			}
			for ; uint32(a*25+3) < ts; a++ {
				if err := h.Append(pub, chunk.TypeAudio, uint32(a*25+3), audio); err != nil {
					t.Fatal(err)
				}
			}
			if gop >= 6 { // five whole GOPs measured
				lo, hi = min(lo, h.BitRate()), max(hi, h.BitRate())
			}
		}
	}
	// Every sample is a whole GOP: the average is the GOP's rate, at
	// every point of the stream (a one-second sample holds a keyframe or
	// not: five of them swing by ±5% here).
	if lo*1000 < wantRate*995 || hi*1000 > wantRate*1005 {
		t.Fatalf("bit rate ranged %d-%d bit/s, want %d ±0.5%%", lo, hi, wantRate)
	}
	if got := h.MessageRate(); got != wantMsgs {
		t.Fatalf("message rate %d/s, want %d", got, wantMsgs)
	}
}
