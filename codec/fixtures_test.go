package codec

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// The fixtures in testdata are made by testdata/gen.sh with ffmpeg; the
// helpers below cut the sequence headers out of them and wrap them the
// way an RTMP publisher sends them.

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// flvSequenceHeader walks the tags of an FLV file and returns the data of
// its first tag of type typ (8 audio, 9 video) that is a sequence header:
// packet type 0 for AVC and AAC, the first tag for MP3.
func flvSequenceHeader(tb testing.TB, name string, typ byte) []byte {
	tb.Helper()
	b := readFixture(tb, name)
	if len(b) < 9 || string(b[:3]) != "FLV" {
		tb.Fatalf("%s: no FLV header", name)
	}
	p := b[binary.BigEndian.Uint32(b[5:9])+4:] // header, PreviousTagSize0
	for len(p) >= 11 {
		tagType, size := p[0]&0x1f, int(p[1])<<16|int(p[2])<<8|int(p[3])
		if len(p) < 11+size+4 {
			break
		}
		data := p[11 : 11+size]
		p = p[11+size+4:]
		if tagType != typ || len(data) == 0 {
			continue
		}
		if typ == 8 && data[0]>>4 == soundMP3 || len(data) > 1 && data[1] == 0 {
			return data
		}
	}
	tb.Fatalf("%s: no sequence header tag of type %d", name, typ)
	return nil
}

// mp4SampleEntryBox returns the payload of the box typ (hvcC, av1C) in
// the first sample entry of an MP4 file's first track.
func mp4SampleEntryBox(tb testing.TB, name, typ string) []byte {
	tb.Helper()
	p := readFixture(tb, name)
	for _, step := range []struct {
		box  string
		skip int // bytes of fields before the child boxes
	}{
		{"moov", 0}, {"trak", 0}, {"mdia", 0}, {"minf", 0}, {"stbl", 0},
		{"stsd", 8}, // version, flags, entry_count
		{"", 78},    // the visual sample entry, of any type
		{typ, -1},
	} {
		found := false
		for len(p) >= 8 {
			size := int(binary.BigEndian.Uint32(p))
			if size < 8 || size > len(p) {
				tb.Fatalf("%s: bad box size %d", name, size)
			}
			box, body := string(p[4:8]), p[8:size]
			p = p[size:]
			if step.box == "" || box == step.box {
				if step.skip < 0 {
					return body
				}
				p, found = body[step.skip:], true
				break
			}
		}
		if !found {
			tb.Fatalf("%s: no %q box", name, step.box)
		}
	}
	return nil
}

// oggFirstPacket returns the first packet of an Ogg file (for Opus, the
// OpusHead), which fits its first page.
func oggFirstPacket(tb testing.TB, name string) []byte {
	tb.Helper()
	b := readFixture(tb, name)
	if len(b) < 27 || string(b[:4]) != "OggS" {
		tb.Fatalf("%s: no Ogg page", name)
	}
	segments := int(b[26])
	size := 0
	for _, lacing := range b[27 : 27+segments] {
		size += int(lacing)
	}
	start := 27 + segments
	return b[start : start+size]
}

// Wrappers, as a publisher sends the records.

func legacyHEVC(rec []byte) []byte {
	return append([]byte{0x1c, 0, 0, 0, 0}, rec...) // key frame, codec 12, sequence header, cts 0
}

// exVideo wraps a record in an Enhanced RTMP key frame SequenceStart.
func exVideo(fourCC string, rec []byte) []byte {
	return append(append([]byte{0x80 | 1<<4 | packetSequenceStart}, fourCC...), rec...)
}

// exAudio wraps a config in an Enhanced RTMP audio SequenceStart.
func exAudio(fourCC string, config []byte) []byte {
	return append(append([]byte{soundExHeader<<4 | packetSequenceStart}, fourCC...), config...)
}

// avcRecord is the record in a legacy AVC sequence header.
func avcRecord(tb testing.TB, name string) []byte {
	return flvSequenceHeader(tb, name, 9)[5:]
}

// aacConfig is the AudioSpecificConfig in a legacy AAC sequence header.
func aacConfig(tb testing.TB, name string) []byte {
	return flvSequenceHeader(tb, name, 8)[2:]
}

// bitWriter builds synthetic bit strings for the cases no encoder here
// makes.
type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) u(n int, v uint64) *bitWriter {
	for i := n - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (7 - w.n%8)
		w.n++
	}
	return w
}

func (w *bitWriter) ue(v uint64) *bitWriter {
	v++
	n := 0
	for v>>n > 1 {
		n++
	}
	return w.u(n, 0).u(n+1, v)
}

func (w *bitWriter) se(v int64) *bitWriter {
	if v > 0 {
		return w.ue(uint64(2*v - 1))
	}
	return w.ue(uint64(-2 * v))
}

// rbsp ends the bit string with the RBSP stop bit and zero padding.
func (w *bitWriter) rbsp() []byte {
	w.u(1, 1)
	for w.n%8 != 0 {
		w.u(1, 0)
	}
	return w.b
}

// escape adds the emulation prevention bytes an encoder would.
func escape(rbsp []byte) []byte {
	var out []byte
	for _, c := range rbsp {
		if n := len(out); c <= 3 && n >= 2 && out[n-2] == 0 && out[n-1] == 0 {
			out = append(out, 3)
		}
		out = append(out, c)
	}
	return out
}

// avcRecordOf wraps one SPS NAL unit in an AVCDecoderConfigurationRecord
// without PPS.
func avcRecordOf(sps []byte) []byte {
	rec := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1, byte(len(sps) >> 8), byte(len(sps))}
	return append(append(rec, sps...), 0)
}
