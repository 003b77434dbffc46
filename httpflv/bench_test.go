package httpflv

import (
	"bytes"
	"testing"
)

func BenchmarkParseRequest(b *testing.B) {
	for _, bc := range []struct {
		name string
		head string
	}{
		{"chrome", chromeGET}, {"ffmpeg", ffmpegGET}, {"websocket", chromeWS},
		{"partial", chromeWS[:len(chromeWS)-2]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := []byte(bc.head)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				ParseRequest(buf, DefaultMaxHead)
			}
		})
	}
}

func BenchmarkSplitStreamPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		SplitStreamPath("/live/sub/test.flv")
	}
}

// BenchmarkParseFrame parses (and unmasks) a 1 KiB binary frame.
func BenchmarkParseFrame(b *testing.B) {
	frame := clientFrame(0x82, bytes.Repeat([]byte{7}, 1024), [4]byte{1, 2, 3, 4})
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		ParseFrame(frame, 1<<16)
	}
}

func BenchmarkAppendFrameHeader(b *testing.B) {
	dst := make([]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendFrameHeader(dst[:0], OpBinary, 70000)
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendResponse(dst[:0], 200, "Content-Type", "video/x-flv", "Connection", "close",
			"Access-Control-Allow-Origin", "*", "Cache-Control", "no-cache")
	}
}
