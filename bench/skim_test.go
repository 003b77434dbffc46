package bench

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/rtmpedge/rtmpedge/chunk"
)

type sent struct {
	typeID uint8
	ts     uint32
	body   []byte
}

// stream builds a chunked byte stream with every header format, extended
// timestamps, a chunk size change and interleaved chunk streams.
func stream(t *testing.T) ([]byte, []sent) {
	t.Helper()
	w := chunk.NewWriter(128)
	var out []byte
	var msgs []sent
	add := func(csid uint32, typeID uint8, ts uint32, n int) {
		body := bytes.Repeat([]byte{byte(n)}, n)
		if typeID == chunk.TypeVideo && n >= 2 {
			body[0], body[1] = 0x17, 1
		}
		out = w.Append(out, chunk.Header{CSID: csid, Timestamp: ts, TypeID: typeID, StreamID: 1}, body)
		msgs = append(msgs, sent{typeID, ts, body})
	}
	add(6, chunk.TypeAudio, 0, 10)
	add(7, chunk.TypeVideo, 0, 5000)
	add(6, chunk.TypeAudio, 23, 10)
	add(6, chunk.TypeAudio, 46, 10) // format 2/3
	add(7, chunk.TypeVideo, 40, 300)
	out = chunk.AppendSetChunkSize(out, 4096)
	msgs = append(msgs, sent{chunk.TypeSetChunkSize, 0, []byte{0, 0, 0x10, 0}})
	w.SetChunkSize(4096)
	add(7, chunk.TypeVideo, 0x1000000, 9000) // extended timestamp
	add(7, chunk.TypeVideo, 0x1000028, 9000)
	add(320, chunk.TypeDataAMF0, 0x1000028, 40)
	return out, msgs
}

func TestSkimmerMatchesWriter(t *testing.T) {
	data, want := stream(t)
	for trial := range 50 {
		s := newSkimmer()
		var got []sent
		var pending []byte
		rest := data
		for len(rest) > 0 {
			n := 1 + rand.IntN(700)
			if trial == 0 {
				n = 1 // byte by byte
			}
			n = min(n, len(rest))
			pending = append(pending, rest[:n]...)
			rest = rest[n:]
			used, err := s.feed(pending, func(m *skimMsg) error {
				got = append(got, sent{m.TypeID, m.Timestamp, append([]byte(nil), m.Head...)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending[:0], pending[used:]...)
		}
		if len(got) != len(want) {
			t.Fatalf("trial %d: %d messages, want %d", trial, len(got), len(want))
		}
		for i := range want {
			w := want[i]
			head := w.body[:min(len(w.body), headBytes)]
			if got[i].typeID != w.typeID || got[i].ts != w.ts || !bytes.Equal(got[i].body, head) {
				t.Fatalf("trial %d message %d: got %d@%d %x, want %d@%d %x", trial, i, got[i].typeID, got[i].ts, got[i].body, w.typeID, w.ts, head)
			}
		}
	}
}

func FuzzSkimmer(f *testing.F) {
	data, _ := stream(&testing.T{})
	f.Add(data)
	f.Add([]byte{0x03, 0xff, 0xff, 0xff, 0, 0, 4, 9, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newSkimmer()
		_, _ = s.feed(b, func(*skimMsg) error { return nil })
	})
}

func BenchmarkSkimmer(b *testing.B) {
	data, _ := stream(&testing.T{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := newSkimmer()
		_, _ = s.feed(data, func(*skimMsg) error { return nil })
	}
}
