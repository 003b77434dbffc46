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

// Headers returns the AVC and AAC sequence headers to send first.
func (s *Synthetic) Headers() []Frame {
	out := []Frame{{TypeID: chunk.TypeVideo, Payload: []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff}}}
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
		s.key = filler([]byte{0x17, 1, 0, 0, 0}, 4*s.FrameBytes)
		s.inter = filler([]byte{0x27, 1, 0, 0, 0}, s.FrameBytes)
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

func filler(prefix []byte, n int) []byte {
	b := make([]byte, max(n, len(prefix)))
	copy(b, prefix)
	for i := len(prefix); i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}
