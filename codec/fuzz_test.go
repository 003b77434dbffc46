package codec

import (
	"runtime"
	"testing"
)

// FuzzParseVideo feeds ParseVideo mutations of real and synthetic
// sequence headers: it must not panic, must fail only with the package's
// errors, and must return a sane Video when it does not fail.
func FuzzParseVideo(f *testing.F) {
	for _, c := range realVideo(f) {
		f.Add(c.payload)
	}
	f.Add(append([]byte{0x17, 0, 0, 0, 0}, avcRecordOf(syntheticAVCEscaped())...))
	f.Add(append([]byte{0x17, 0, 0, 0, 0}, avcRecordOf(syntheticAVCScaling(1))...))
	f.Add(syntheticHEVCSubLayers())
	avc := avcRecord(f, "h264_high_1280x720.flv")
	f.Add(multitrack(multitrackManyCodecs, "", append([]byte("avc1"), avc...)))
	f.Add(append([]byte{0x97, 2, 1, 2, 3, 0, 'a', 'v', 'c', '1'}, avc...))
	f.Fuzz(func(t *testing.T, payload []byte) {
		v, ok := fuzzParse(t, ParseVideo, payload)
		if !ok {
			return
		}
		switch v.Codec {
		case "H264", "H265":
			if v.Width <= 0 || v.Height <= 0 {
				t.Fatalf("%+v without a picture size", v)
			}
		case "AV1":
		default:
			t.Fatalf("codec %q", v.Codec)
		}
		if v.Width < 0 || v.Height < 0 || v.Width > maxDimension || v.Height > maxDimension || v.Profile == "" || v.Level == "" {
			t.Fatalf("insane %+v", v)
		}
	})
}

// FuzzParseAudio does the same for ParseAudio.
func FuzzParseAudio(f *testing.F) {
	for _, c := range realAudio(f) {
		f.Add(c.payload)
	}
	f.Add([]byte{0xaf, 0, 0x2b, 0x92, 0x08, 0x00})
	f.Add([]byte{0xaf, 0, 0xeb, 0x8a, 0x08, 0x00})
	f.Add(append([]byte{soundExHeader<<4 | audioMultitrack, 1 << 4, 'm', 'p', '4', 'a', 0, 0, 0, 2}, 0x12, 0x10))
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, ok := fuzzParse(t, ParseAudio, payload)
		if !ok {
			return
		}
		switch a.Codec {
		case "AAC", "MP3", "Opus":
		default:
			t.Fatalf("codec %q", a.Codec)
		}
		if a.SampleRate <= 0 || a.SampleRate >= 1<<24 || a.Channels < 0 || a.Channels > 255 {
			t.Fatalf("insane %+v", a)
		}
	})
}

// fuzzParse parses payload twice, checks that the two agree and that an
// error is one of the package's, and tells whether the parse succeeded.
func fuzzParse[T comparable](t *testing.T, parse func([]byte) (T, error), payload []byte) (T, bool) {
	got, err := parse(payload)
	checkError(t, err)
	if again, err2 := parse(payload); again != got || (err == nil) != (err2 == nil) {
		t.Fatalf("two parses differ: %+v, %v and %+v, %v", got, err, again, err2)
	}
	return got, err == nil
}

// TestAllocationBound parses large hostile inputs and checks that the
// bytes allocated stay within a small multiple of the input.
func TestAllocationBound(t *testing.T) {
	// An SPS of 64 KiB that is all emulation prevention sequences.
	sps := []byte{0x67, 0x64, 0, 0x1f}
	for len(sps) < 0xffff-3 {
		sps = append(sps, 0, 0, 3)
	}
	hevc := make([]byte, 23, 1<<20)
	hevc[0], hevc[22] = 1, 255
	for i := 0; i < 255; i++ { // arrays of empty NAL units
		hevc = append(hevc, 0x20, 0x0f, 0xff)
		hevc = append(hevc, make([]byte, 2*0x0fff)...)
	}
	for _, p := range [][]byte{
		append([]byte{0x17, 0, 0, 0, 0}, avcRecordOf(sps)...),
		legacyHEVC(hevc),
		append([]byte{0xaf, 0}, make([]byte, 1<<20)...),
		exVideo("av01", append([]byte{0x81, 0, 0, 0}, make([]byte, 1<<20)...)),
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < 10; i++ {
			ParseVideo(p)
			ParseAudio(p)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(10*(len(p)+4096)) {
			t.Errorf("%d-byte input: %d bytes allocated in 10 parses", len(p), n)
		}
	}
}
