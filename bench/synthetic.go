package bench

import "github.com/rtmpedge/rtmpedge/chunk"

// Frame is one media message of a synthetic stream.
type Frame struct {
	TypeID    uint8
	Timestamp uint32
	Payload   []byte
}

// Synthetic generates an H.264-shaped video stream (FLV AVC packets with a
// sequence header and keyframes every GOP frames) of a given size per frame,
// with AAC-shaped audio. Payload bytes are filler: the server never decodes
// them, so they measure the transport alone.
type Synthetic struct {
	FPS        int // video frames per second
	GOP        int // frames per keyframe interval
	FrameBytes int // bytes per video frame (keyframes are 4x)
	Audio      bool

	n       int
	key     []byte
	inter   []byte
	audio   []byte
	pending []Frame
}

// NewSynthetic returns a stream of about bitrate bits per second with
// audio, fps video frames per second and a keyframe every gop frames.
func NewSynthetic(bitrate float64, fps, gop int) *Synthetic {
	// Per GOP: one 4x keyframe and gop-1 frames; audio adds ~128 kbit/s.
	video := max(bitrate-128e3, bitrate/2)
	frame := int(video / 8 / float64(fps) * float64(gop) / float64(gop+3))
	return &Synthetic{FPS: fps, GOP: gop, FrameBytes: max(frame, 16), Audio: true}
}

// avcSequenceHeader is x264's AVC decoder configuration for 1280x720 High
// profile (a real SPS and PPS: servers such as SRS parse them).
var avcSequenceHeader = []byte{0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00,
	0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1,
	0x83, 0x19, 0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0x8f, 0xcb, 0xfd, 0xf8, 0xf8, 0x00}

// Headers returns the AVC and AAC sequence headers to send first.
func (s *Synthetic) Headers() []Frame {
	out := []Frame{{TypeID: chunk.TypeVideo, Payload: avcSequenceHeader}}
	if s.Audio {
		out = append(out, Frame{TypeID: chunk.TypeAudio, Payload: []byte{0xaf, 0, 0x12, 0x10}})
	}
	return out
}

// Next returns the next message: one video frame, then (with Audio) the
// audio frames up to the next video frame's time.
func (s *Synthetic) Next() Frame {
	if len(s.pending) > 0 {
		f := s.pending[0]
		s.pending = s.pending[1:]
		return f
	}
	if s.key == nil {
		s.key = nalFrame(0x17, 0x65, 4*s.FrameBytes) // an IDR slice
		s.inter = nalFrame(0x27, 0x41, s.FrameBytes) // a non-IDR slice
		s.audio = filler([]byte{0xaf, 1}, 370)
	}
	ts := uint32(s.n * 1000 / s.FPS)
	payload := s.inter
	if s.n%s.GOP == 0 {
		payload = s.key
	}
	s.n++
	if s.Audio {
		next := uint32(s.n * 1000 / s.FPS)
		for a := (ts + 22) / 23 * 23; a < next; a += 23 {
			s.pending = append(s.pending, Frame{TypeID: chunk.TypeAudio, Timestamp: a, Payload: s.audio})
		}
	}
	return Frame{TypeID: chunk.TypeVideo, Timestamp: ts, Payload: payload}
}

// nalFrame returns an AVC video tag body of n bytes (frame type and codec
// in b0): one length-prefixed NAL unit of type nal, filled with filler, so
// that servers that walk the NAL units find them well formed.
func nalFrame(b0, nal byte, n int) []byte {
	n = max(n, 10)
	l := n - 9
	return filler([]byte{b0, 1, 0, 0, 0, byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l), nal}, n)
}

func filler(prefix []byte, n int) []byte {
	b := make([]byte, max(n, len(prefix)))
	copy(b, prefix)
	for i := len(prefix); i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}
