package codec

import (
	"bytes"
	"errors"
	"testing"
)

// parseCase is a payload and what ParseVideo or ParseAudio reads in it.
type parseCase[T comparable] struct {
	name    string
	payload []byte
	want    T
}

type videoCase = parseCase[Video]

type audioCase = parseCase[Audio]

func runCases[T comparable](t *testing.T, parse func([]byte) (T, error), cases []parseCase[T]) {
	t.Helper()
	for _, c := range cases {
		got, err := parse(c.payload)
		if err != nil || got != c.want {
			t.Errorf("%s: got %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

// errorCase is a payload that ParseVideo or ParseAudio rejects with want,
// returning a result whose Codec is codec.
type errorCase struct {
	name    string
	payload []byte
	want    error
	codec   string
}

func runErrorCases[T any](t *testing.T, parse func([]byte) (T, error), codec func(T) string, cases []errorCase) {
	t.Helper()
	for _, c := range cases {
		got, err := parse(c.payload)
		if !errors.Is(err, c.want) || codec(got) != c.codec {
			t.Errorf("%s: got %+v, %v; want codec %q and %v", c.name, got, err, c.codec, c.want)
		}
	}
}

// realVideo are the sequence headers of real encoders (testdata/gen.sh),
// with the values ffprobe reports for the same files.
func realVideo(tb testing.TB) []videoCase {
	flv := func(name string) []byte { return flvSequenceHeader(tb, name, 9) }
	hvcC := func(name string) []byte { return mp4SampleEntryBox(tb, name, "hvcC") }
	av1C := func(name string) []byte { return mp4SampleEntryBox(tb, name, "av1C") }
	h264 := func(profile, level string, w, h int) Video { return Video{"H264", profile, level, w, h} }
	h265 := func(profile, level string, w, h int) Video { return Video{"H265", profile, level, w, h} }
	av1 := func(level string, w, h int) Video { return Video{"AV1", "Main", level, w, h} }
	return []videoCase{
		{"h264 high 3.1 1280x720", flv("h264_high_1280x720.flv"), h264("High", "3.1", 1280, 720)},
		// 360 is 22.5 macroblocks: 8 rows cropped.
		{"h264 baseline 3 640x360", flv("h264_baseline_640x360.flv"), h264("Baseline", "3", 640, 360)},
		{"h264 main 4 1918x1078 cropped", flv("h264_main_1918x1078.flv"), h264("Main", "4", 1918, 1078)},
		// frame_mbs_only_flag 0: map units are macroblock pairs.
		{"h264 interlaced 1920x1080", flv("h264_interlaced_1920x1080.flv"), h264("High", "4.1", 1920, 1080)},
		{"h264 high10 854x480", flv("h264_high10_854x480.flv"), h264("High(10)", "3", 854, 480)},
		{"h264 high422 1918x1078", flv("h264_high422_1918x1078.flv"), h264("High(422)", "4", 1918, 1078)},
		{"h264 high444 1918x1078", flv("h264_high444_1918x1078.flv"), h264("High(444+Predictive)", "4", 1918, 1078)},
		{"h264 monochrome 1918x1078", flv("h264_gray_1918x1078.flv"), h264("High", "4", 1918, 1078)},
		{"h264 enhanced avc1", exVideo("avc1", avcRecord(tb, "h264_high_1280x720.flv")), h264("High", "3.1", 1280, 720)},

		{"h265 legacy main 3.1 1280x720", legacyHEVC(hvcC("h265_main_1280x720.mp4")), h265("Main", "3.1", 1280, 720)},
		{"h265 enhanced main 3.1 1280x720", exVideo("hvc1", hvcC("h265_main_1280x720.mp4")), h265("Main", "3.1", 1280, 720)},
		{"h265 main10 1918x1078 window", exVideo("hvc1", hvcC("h265_main10_1918x1078.mp4")), h265("Main10", "4", 1918, 1078)},
		{"h265 rext 4:4:4 1918x1078", exVideo("hvc1", hvcC("h265_rext444_1918x1078.mp4")), h265("Rext", "4", 1918, 1078)},
		{"h265 rext 4:0:0 1918x1078", legacyHEVC(hvcC("h265_gray_1918x1078.mp4")), h265("Rext", "4", 1918, 1078)},
		// sps_max_sub_layers_minus1 1.
		{"h265 two sub-layers 640x360", legacyHEVC(hvcC("h265_sublayers_640x360.mp4")), h265("Main", "2.1", 640, 360)},

		{"av1 aom 3.1 1280x720", exVideo("av01", av1C("av1_aom_1280x720.mp4")), av1("3.1", 1280, 720)},
		{"av1 aom 4.0 1918x1078", exVideo("av01", av1C("av1_aom_1918x1078.mp4")), av1("4.0", 1918, 1078)},
		{"av1 svt 4.0 1920x1080", exVideo("av01", av1C("av1_svt_1920x1080.mp4")), av1("4.0", 1920, 1080)},
		{"av1 without configOBUs", exVideo("av01", av1C("av1_svt_1920x1080.mp4")[:4]), av1("4.0", 0, 0)},
	}
}

// syntheticAVCEscaped is a Baseline SPS with pic_order_cnt_type 1 whose
// large offsets make zero runs, so it carries emulation prevention bytes.
func syntheticAVCEscaped() []byte {
	w := &bitWriter{}
	w.u(8, 66).u(8, 0xc0).u(8, 40).ue(0) // profile, flags, level, id
	w.ue(0).ue(1)                        // log2_max_frame_num_minus4, pic_order_cnt_type
	w.u(1, 0).se(-(1 << 24)).se(1 << 20) // offsets
	w.ue(2).se(1 << 23).se(-(1 << 22))   // num_ref_frames_in_pic_order_cnt_cycle, offsets
	w.ue(1).u(1, 0)                      // max_num_ref_frames, gaps
	w.ue(119).ue(67).u(1, 1).u(1, 1)     // 1920x1088, frame_mbs_only, direct_8x8
	w.u(1, 1).ue(0).ue(0).ue(0).ue(4)    // crop 8 rows
	w.u(1, 0)                            // vui_parameters_present_flag
	return append([]byte{0x67}, escape(w.rbsp())...)
}

// syntheticAVCScaling is a High 4:4:4 SPS with all twelve scaling lists:
// full lists, one that falls back to the default at once and one that
// repeats its last scale.
func syntheticAVCScaling(delta int64) []byte {
	w := &bitWriter{}
	w.u(8, 244).u(8, 0).u(8, 40).ue(0)  // profile, flags, level, id
	w.ue(3).u(1, 0).ue(2).ue(2).u(1, 0) // 4:4:4, not separate, 10 bits, bypass
	w.u(1, 1)                           // seq_scaling_matrix_present_flag
	for i := 0; i < 12; i++ {
		w.u(1, 1)
		switch size := map[bool]int{true: 16, false: 64}[i < 6]; i {
		case 2:
			w.se(-8) // nextScale 0: the default list
		case 7:
			for j := 0; j < 10; j++ {
				w.se(1)
			}
			w.se(-18) // nextScale 0: the last scale repeats
		default:
			for j := 0; j < size; j++ {
				w.se(delta * int64(1-2*(j%2)))
			}
		}
	}
	w.ue(0).ue(0).ue(2)               // log2_max_frame_num_minus4, poc type 0, lsb
	w.ue(1).u(1, 0)                   // refs, gaps
	w.ue(79).ue(44).u(1, 1).u(1, 1)   // 1280x720
	w.u(1, 1).ue(0).ue(1).ue(0).ue(2) // crop (4:4:4: luma samples)
	w.u(1, 0)
	return append([]byte{0x67}, escape(w.rbsp())...)
}

// syntheticHEVCSubLayers is an H.265 SPS with four sub-layers that carry
// their own profile and level, and a record that leaves the profile and
// level 0.
func syntheticHEVCSubLayers() []byte {
	w := &bitWriter{}
	w.u(4, 0).u(3, 3).u(1, 1)           // vps id, sps_max_sub_layers_minus1, nesting
	w.u(3, 0).u(5, 1).u(32, 0x60000000) // space, tier, Main, compatibility
	w.u(48, 0x900000000000).u(8, 93)    // flags, level 3.1
	w.u(2, 3).u(2, 1).u(2, 2)           // sub_layer_{profile,level}_present_flag
	w.u(10, 0)                          // reserved_zero_2bits for 3 to 7
	w.u(32, 0xdeadbeef).u(32, 0xffffffff).u(24, 0xabcdef).u(8, 90)
	w.u(8, 60)
	w.u(32, 0x12345678).u(32, 0).u(24, 0xffffff)
	w.ue(0).ue(1).ue(1920).ue(1088)   // id, 4:2:0, size
	w.u(1, 1).ue(0).ue(0).ue(0).ue(4) // window: 8 rows
	sps := append([]byte{0x42, 0x01}, escape(w.rbsp())...)
	rec := make([]byte, 23, 23+5+len(sps))
	rec[0], rec[22] = 1, 1
	rec = append(rec, 0x80|hevcNALSPS, 0, 1, byte(len(sps)>>8), byte(len(sps)))
	return legacyHEVC(append(rec, sps...))
}

// multitrack wraps records as Enhanced RTMP multitrack packets; fourCC
// "" is a many-codecs packet whose records each start with their FourCC.
func multitrack(mt byte, fourCC string, tracks ...[]byte) []byte {
	p := []byte{0x80 | 1<<4 | videoMultitrack, mt<<4 | packetSequenceStart}
	p = append(p, fourCC...)
	for i, t := range tracks {
		if mt == multitrackManyCodecs {
			p, t = append(p, t[:4]...), t[4:]
		}
		p = append(p, byte(i)) // track id
		if mt != multitrackOne {
			p = append(p, byte(len(t)>>16), byte(len(t)>>8), byte(len(t)))
		}
		p = append(p, t...)
	}
	return p
}

func TestParseVideo(t *testing.T) {
	avc := avcRecord(t, "h264_high_1280x720.flv")
	hevc := mp4SampleEntryBox(t, "h265_main_1280x720.mp4", "hvcC")
	av1 := mp4SampleEntryBox(t, "av1_aom_1280x720.mp4", "av1C")
	high := Video{"H264", "High", "3.1", 1280, 720}
	modEx := func(data []byte, next []byte) []byte {
		p := []byte{0x80 | 1<<4 | packetModEx}
		if len(data) <= 256 {
			p = append(p, byte(len(data)-1))
		} else {
			p = append(p, 0xff, byte((len(data)-1)>>8), byte(len(data)-1))
		}
		return append(append(p, data...), next...)
	}
	cases := append(realVideo(t), []videoCase{
		{"h264 emulation prevention, poc type 1", append([]byte{0x17, 0, 0, 0, 0}, avcRecordOf(syntheticAVCEscaped())...),
			Video{"H264", "Baseline", "4", 1920, 1080}},
		{"h264 4:4:4 scaling lists", append([]byte{0x17, 0, 0, 0, 0}, avcRecordOf(syntheticAVCScaling(1))...),
			Video{"H264", "High(444+Predictive)", "4", 1279, 718}},
		{"h265 sub-layer profiles, record without profile", syntheticHEVCSubLayers(), Video{"H265", "Main", "3.1", 1920, 1080}},
		{"modex timestamp offset", modEx([]byte{1, 2, 3}, append([]byte{0<<4 | packetSequenceStart}, append([]byte("avc1"), avc...)...)), high},
		{"modex 16-bit size, twice", modEx(make([]byte, 300), append([]byte{0<<4 | packetModEx, 0, 9, packetSequenceStart}, append([]byte("avc1"), avc...)...)), high},
		{"multitrack one track", multitrack(multitrackOne, "avc1", avc), high},
		{"multitrack many tracks", multitrack(1, "hvc1", hevc, avc), Video{"H265", "Main", "3.1", 1280, 720}},
		{"multitrack many codecs", multitrack(multitrackManyCodecs, "", append([]byte("av01"), av1...), append([]byte("avc1"), avc...)),
			Video{"AV1", "Main", "3.1", 1280, 720}},
	}...)
	runCases(t, ParseVideo, cases)
	if !bytes.Contains(syntheticAVCEscaped(), []byte{0, 0, 3}) {
		t.Error("the synthetic SPS has no emulation prevention byte")
	}
}

func TestParseVideoErrors(t *testing.T) {
	avc := avcRecord(t, "h264_high_1280x720.flv")
	av1 := mp4SampleEntryBox(t, "av1_aom_1280x720.mp4", "av1C")
	withAVC := func(head ...byte) []byte { return append(head, avc...) }
	runErrorCases(t, ParseVideo, func(v Video) string { return v.Codec }, []errorCase{
		{"empty", nil, ErrTruncated, ""},
		{"sorenson h263", []byte{0x12, 0, 0}, ErrUnsupported, ""},
		{"vp6", []byte{0x14, 0, 0}, ErrUnsupported, ""},
		{"avc short header", []byte{0x17, 0}, ErrTruncated, "H264"},
		{"avc coded frame", withAVC(0x17, 1, 0, 0, 0), ErrInvalid, "H264"},
		{"avc end of sequence", []byte{0x17, 2, 0, 0, 0}, ErrInvalid, "H264"},
		{"avc record version 0", append([]byte{0x17, 0, 0, 0, 0, 0}, avc[1:]...), ErrInvalid, "H264"},
		{"avc record without sps", []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0}, ErrInvalid, "H264"},
		{"avc pps in sps place", []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x68, 0xeb}, ErrInvalid, "H264"},
		{"avc sps delta_scale out of range", append([]byte{0x17, 0, 0, 0, 0}, avcRecordOf(syntheticAVCScaling(200))...), ErrInvalid, "H264"},
		{"avc sps cropped to nothing", append([]byte{0x17, 0, 0, 0, 0}, avcRecordOf(append([]byte{0x67},
			(&bitWriter{}).u(24, 0x42c01e).ue(0).ue(0).ue(2).ue(1).u(1, 0).ue(0).ue(0).u(1, 1).u(1, 1).
				u(1, 1).ue(8).ue(0).ue(0).ue(0).u(1, 0).rbsp()...))...), ErrInvalid, "H264"},
		{"hevc record without sps", legacyHEVC(make([]byte, 23)), ErrInvalid, "H265"},
		{"ex coded frames", []byte{0x91, 'a', 'v', 'c', '1', 0, 0, 0}, ErrInvalid, ""},
		{"ex command frame", []byte{0x80 | frameCommand<<4, 0}, ErrInvalid, ""},
		{"ex metadata", []byte{0x80 | videoMetadata, 'a', 'v', 'c', '1', 2}, ErrInvalid, ""},
		{"ex mpeg-2 ts start", append([]byte{0x90 | videoMPEG2TSStart, 'a', 'v', '0', '1'}, av1...), ErrUnsupported, ""},
		{"ex vp9", []byte{0x90, 'v', 'p', '0', '9', 1, 0, 0, 0}, ErrUnsupported, ""},
		{"ex unknown fourcc", []byte{0x90, 'x', 'y', 'z', 'w'}, ErrUnsupported, ""},
		{"ex short fourcc", []byte{0x90, 'a', 'v'}, ErrTruncated, ""},
		{"ex modex cut", []byte{0x97, 4, 1, 2}, ErrTruncated, ""},
		{"multitrack reserved type", append([]byte{0x96, 3 << 4, 'a', 'v', 'c', '1', 0}, avc...), ErrInvalid, ""},
		{"multitrack in multitrack", append([]byte{0x96, 1<<4 | videoMultitrack, 'a', 'v', 'c', '1', 0}, avc...), ErrInvalid, ""},
		{"multitrack track size past end", append([]byte{0x96, 1 << 4, 'a', 'v', 'c', '1', 0, 0xff, 0xff, 0xff}, avc...), ErrTruncated, ""},
		{"av1 bad marker", exVideo("av01", append([]byte{0x01}, av1[1:]...)), ErrInvalid, "AV1"},
		{"av1 obu size past end", exVideo("av01", append(append([]byte(nil), av1[:5]...), 0x7f, 0)), ErrTruncated, "AV1"},
		{"av1 obu forbidden bit", exVideo("av01", append(append([]byte(nil), av1[:4]...), 0x80)), ErrInvalid, "AV1"},
	})
}

func realAudio(tb testing.TB) []audioCase {
	flv := func(name string) []byte { return flvSequenceHeader(tb, name, 8) }
	opus := func(name string) []byte { return exAudio("Opus", oggFirstPacket(tb, name)) }
	aac := func(profile string, rate, channels int) Audio { return Audio{"AAC", profile, rate, channels} }
	mp3 := func(rate, channels int) Audio { return Audio{"MP3", "", rate, channels} }
	mp3Frame := readFixture(tb, "mp3_48000_1.mp3")
	return []audioCase{
		{"aac lc 44100 stereo", flv("aac_lc_44100_2.flv"), aac("LC", 44100, 2)},
		{"aac lc 48000 mono", flv("aac_lc_48000_1.flv"), aac("LC", 48000, 1)},
		{"aac lc 48000 5.1", flv("aac_lc_48000_6.flv"), aac("LC", 48000, 6)},
		{"aac lc 96000 stereo", flv("aac_lc_96000_2.flv"), aac("LC", 96000, 2)},
		{"aac main 44100 stereo", flv("aac_main_44100_2.flv"), aac("Main", 44100, 2)},
		{"aac ltp 22050 stereo", flv("aac_ltp_22050_2.flv"), aac("Other", 22050, 2)},
		// channelConfiguration 0: the channels are in a program_config_element.
		{"aac pce hexagonal", flv("aac_pce_48000_6.flv"), aac("LC", 48000, 6)},
		{"aac enhanced mp4a", exAudio("mp4a", aacConfig(tb, "aac_lc_44100_2.flv")), aac("LC", 44100, 2)},

		{"mp3 44100 stereo", flv("mp3_44100_2.flv"), mp3(44100, 2)},
		{"mp3 22050 mono", flv("mp3_22050_1.flv"), mp3(22050, 1)},
		{"mp3 11025 stereo", flv("mp3_11025_2.flv"), mp3(11025, 2)},
		// FLV has no code for 48 kHz; the frame header does.
		{"mp3 48000 mono frame", append([]byte{0x2f}, mp3Frame[:4]...), mp3(48000, 1)},

		{"opus 48000 stereo", opus("opus_48000_2.ogg"), Audio{"Opus", "", 48000, 2}},
		{"opus from 16000 mono", opus("opus_16000_1.ogg"), Audio{"Opus", "", 48000, 1}},
		{"opus 5.1 mapping family 1", opus("opus_48000_6.ogg"), Audio{"Opus", "", 48000, 6}},
	}
}

// asc writes an AudioSpecificConfig.
func asc(f func(w *bitWriter)) []byte {
	w := &bitWriter{}
	f(w)
	return append([]byte{0xaf, 0}, w.b...)
}

func TestParseAudio(t *testing.T) {
	aac := func(profile string, rate, channels int) Audio { return Audio{"AAC", profile, rate, channels} }
	head := oggFirstPacket(t, "opus_48000_2.ogg")
	cases := append(realAudio(t), []audioCase{
		// HE-AAC as encoders signal it explicitly (object type 5 or 29).
		{"he-aac explicit", []byte{0xaf, 0, 0x2b, 0x92, 0x08, 0x00}, aac("HE", 44100, 2)},
		{"he-aac v2 explicit", []byte{0xaf, 0, 0xeb, 0x8a, 0x08, 0x00}, aac("HEv2", 44100, 2)},
		// HE-AAC backward compatible: LC and sync extensions.
		{"he-aac implicit", asc(func(w *bitWriter) {
			w.u(5, 2).u(4, 7).u(4, 2).u(3, 0).u(11, 0x2b7).u(5, 5).u(1, 1).u(4, 4)
		}), aac("HE", 44100, 2)},
		{"he-aac v2 implicit", asc(func(w *bitWriter) {
			w.u(5, 2).u(4, 7).u(4, 1).u(3, 0).u(11, 0x2b7).u(5, 5).u(1, 1).u(4, 4).u(11, 0x548).u(1, 1)
		}), aac("HEv2", 44100, 2)},
		{"he-aac v2 over a core without GASpecificConfig", asc(func(w *bitWriter) {
			w.u(5, 29).u(4, 7).u(4, 1).u(4, 4).u(5, 31).u(6, 10)
		}), aac("HEv2", 44100, 2)},
		{"explicit 24-bit rate", asc(func(w *bitWriter) { w.u(5, 2).u(4, 15).u(24, 44056).u(4, 2).u(3, 0) }), aac("LC", 44056, 2)},
		{"object type escape", asc(func(w *bitWriter) { w.u(5, 31).u(6, 10).u(4, 3).u(4, 2) }), aac("Other", 48000, 2)},
		{"channel configuration 7", asc(func(w *bitWriter) { w.u(5, 2).u(4, 3).u(4, 7).u(3, 0) }), aac("LC", 48000, 8)},
		{"channel configuration 13", asc(func(w *bitWriter) { w.u(5, 2).u(4, 3).u(4, 13).u(3, 0) }), aac("LC", 48000, 24)},
		{"pce front, side, back, lfe", asc(func(w *bitWriter) {
			w.u(5, 1).u(4, 4).u(4, 0).u(3, 0)         // Main, 44100, PCE follows
			w.u(4, 0).u(2, 0).u(4, 4)                 // tag, object type, rate
			w.u(4, 2).u(4, 1).u(4, 1).u(2, 1)         // front, side, back, lfe
			w.u(3, 0).u(4, 0).u(1, 1).u(4, 0).u(1, 0) // assoc, cc, mono mixdown
			w.u(1, 1).u(2, 0).u(1, 0)                 // matrix mixdown
			w.u(5, 0).u(5, 0x10).u(5, 0x11).u(5, 0x12).u(4, 0)
		}), aac("Main", 44100, 8)},
		{"mp3 8 kHz format", []byte{0xe2}, Audio{"MP3", "", 8000, 1}},
		{"mp3 5.5 kHz header", []byte{0x22, 0xff}, Audio{"MP3", "", 5512, 1}},
		{"audio multitrack opus", append([]byte{soundExHeader<<4 | audioMultitrack, 0, 'O', 'p', 'u', 's', 0}, head...), Audio{"Opus", "", 48000, 2}},
		{"audio modex opus", append([]byte{soundExHeader<<4 | packetModEx, 2, 1, 2, 3, 0, 'O', 'p', 'u', 's'}, head...), Audio{"Opus", "", 48000, 2}},
	}...)
	runCases(t, ParseAudio, cases)
}

func TestParseAudioErrors(t *testing.T) {
	head := oggFirstPacket(t, "opus_48000_2.ogg")
	runErrorCases(t, ParseAudio, func(a Audio) string { return a.Codec }, []errorCase{
		{"empty", nil, ErrTruncated, ""},
		{"pcm", []byte{0x3e, 0, 0}, ErrUnsupported, ""},
		{"nellymoser", []byte{0x6e, 0}, ErrUnsupported, ""},
		{"g711", []byte{0x72, 0}, ErrUnsupported, ""},
		{"speex", []byte{0xb2, 0}, ErrUnsupported, ""},
		{"aac without packet type", []byte{0xaf}, ErrTruncated, "AAC"},
		{"aac raw frame", []byte{0xaf, 1, 0x21, 0x10}, ErrInvalid, "AAC"},
		{"aac empty config", []byte{0xaf, 0}, ErrTruncated, "AAC"},
		{"aac rate index 13", asc(func(w *bitWriter) { w.u(5, 2).u(4, 13).u(4, 2).u(3, 0) }), ErrInvalid, "AAC"},
		{"aac explicit rate 0", asc(func(w *bitWriter) { w.u(5, 2).u(4, 15).u(24, 0).u(4, 2).u(3, 0) }), ErrInvalid, "AAC"},
		{"aac channel configuration 9", asc(func(w *bitWriter) { w.u(5, 2).u(4, 3).u(4, 9).u(3, 0) }), ErrInvalid, "AAC"},
		{"aac pce cut", asc(func(w *bitWriter) { w.u(5, 2).u(4, 3).u(4, 0).u(3, 0).u(4, 0) }), ErrTruncated, "AAC"},
		{"ex flac", []byte{0x90, 'f', 'L', 'a', 'C', 0}, ErrUnsupported, ""},
		{"ex ac-3", []byte{0x90, 'a', 'c', '-', '3', 0}, ErrUnsupported, ""},
		{"ex opus coded frames", []byte{0x91, 'O', 'p', 'u', 's', 0xfc}, ErrInvalid, ""},
		{"opus comment header", exAudio("Opus", []byte("OpusTags\x00\x00\x00\x00")), ErrUnsupported, "Opus"},
		{"opus bad magic", exAudio("Opus", append([]byte("OpusHEAD"), head[8:]...)), ErrInvalid, "Opus"},
		{"opus version 16", exAudio("Opus", append(append([]byte(nil), head[:8]...), append([]byte{16}, head[9:]...)...)), ErrUnsupported, "Opus"},
		{"opus cut", exAudio("Opus", head[:18]), ErrTruncated, "Opus"},
		{"opus family 1 without table", exAudio("Opus", append(append([]byte(nil), head[:18]...), 1)), ErrTruncated, "Opus"},
		{"audio multitrack in multitrack", []byte{0x95, 1<<4 | audioMultitrack, 'O', 'p', 'u', 's'}, ErrInvalid, ""},
	})
}

// TestPrefixes cuts every real sequence header at every length: each cut
// either fails with one of the package's errors or reads what the whole
// does (a record may end after the parameter set read, an AV1 record
// after its header, an MP3 payload anywhere).
func TestPrefixes(t *testing.T) {
	runPrefixes(t, ParseVideo, realVideo(t), func(v Video) bool { return v.Codec == "AV1" && v.Width == 0 })
	runPrefixes(t, ParseAudio, realAudio(t), func(a Audio) bool { return a.Codec == "MP3" })
}

// runPrefixes parses every proper prefix of each case's payload; one
// that does not fail must read what the whole does, or be ok.
func runPrefixes[T comparable](t *testing.T, parse func([]byte) (T, error), cases []parseCase[T], ok func(T) bool) {
	for _, c := range cases {
		for i := range c.payload {
			got, err := parse(c.payload[:i])
			if err == nil && got != c.want && !ok(got) {
				t.Errorf("%s cut at %d: got %+v, want an error or %+v", c.name, i, got, c.want)
			}
			checkError(t, err)
		}
	}
}

// checkError fails unless err is nil or wraps one of the package's errors.
func checkError(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
		t.Errorf("error %v wraps none of the package's errors", err)
	}
}

func TestRBSP(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{[]byte{1, 2, 3}, []byte{1, 2, 3}},
		{[]byte{0, 0, 3, 1}, []byte{0, 0, 1}},
		{[]byte{0, 0, 3, 0, 0, 3}, []byte{0, 0, 0, 0}},
		{[]byte{0, 0, 3, 3}, []byte{0, 0, 3}},
		{[]byte{0, 3, 0, 0, 3, 0}, []byte{0, 3, 0, 0, 0}},
	} {
		if got := rbsp(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("rbsp(% x) = % x, want % x", c.in, got, c.want)
		}
	}
}

func TestLevels(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{avcLevel(9), "1b"}, {avcLevel(10), "1"}, {avcLevel(13), "1.3"}, {avcLevel(52), "5.2"}, {avcLevel(62), "6.2"},
		{avcLevel(0), "Other"}, {avcLevel(255), "Other"},
		{hevcLevel(30), "1"}, {hevcLevel(63), "2.1"}, {hevcLevel(186), "6.2"}, {hevcLevel(0), "Other"}, {hevcLevel(31), "Other"},
		{av1Level(0), "2.0"}, {av1Level(23), "7.3"}, {av1Level(31), "Other"},
		{hevcProfile(0, 1<<(31-2)), "Main10"}, {hevcProfile(9, 0), "Other"},
		{avcProfile(77), "Main"}, {avcProfile(44), "Other"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
