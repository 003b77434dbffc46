package amf

import "testing"

// obsConnect is a fuller connect command, as OBS and FMLE send it.
var obsConnect = func() []byte {
	b, err := AppendAll(nil, "connect", 1, Object{
		{"app", "live"},
		{"type", "nonprivate"},
		{"flashVer", "FMLE/3.0 (compatible; FMSc/1.0)"},
		{"swfUrl", "rtmp://127.0.0.1:1935/live"},
		{"tcUrl", "rtmp://127.0.0.1:1935/live"},
		{"fpad", false},
		{"capabilities", 15},
		{"audioCodecs", 4071},
		{"videoCodecs", 252},
		{"videoFunction", 1},
		{"objectEncoding", 0},
	})
	if err != nil {
		panic(err)
	}
	return b
}()

func BenchmarkDecodeConnect(b *testing.B) {
	b.Run("ffmpeg", func(b *testing.B) { benchDecode(b, connectBody) })
	b.Run("obs", func(b *testing.B) { benchDecode(b, obsConnect) })
}

func benchDecode(b *testing.B, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeAll(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendOnStatus(b *testing.B) {
	status := Object{
		{"level", "status"},
		{"code", "NetStream.Publish.Start"},
		{"description", "live/stream is now published."},
		{"details", "stream"},
		{"clientid", 1.0},
	}
	args := []any{"onStatus", 0, nil, status}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = AppendAll(buf[:0], args...)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
