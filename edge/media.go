package edge

import "github.com/rtmpedge/rtmpedge/chunk"

// Kind says what a Packet carries.
type Kind uint8

// Packet kinds.
const (
	KindAudio Kind = iota + 1
	KindVideo
	KindData    // onMetaData and other data messages
	KindControl // notifications for players (onStatus, user control), never cached
)

// Output chunk stream ids, as nginx-rtmp uses them.
const (
	csidData  = 5
	csidAudio = 6
	csidVideo = 7
	csidCmd   = 3
)

// MediaCSID is the chunk stream a message of typeID goes out on: audio,
// video and data each on their own, as nginx-rtmp sends them.
func MediaCSID(typeID uint8) uint32 {
	switch typeID {
	case chunk.TypeAudio:
		return csidAudio
	case chunk.TypeVideo:
		return csidVideo
	}
	return csidData
}

// StreamID is the message stream id of every stream the server hands out:
// createStream always answers 1, so all players share the same chunk bytes.
const StreamID = 1

// Media describes one audio or video message for caching decisions.
type Media struct {
	Kind      Kind
	Keyframe  bool // a video frame a player can start decoding at
	SeqHeader bool // a decoder configuration record (AVC/HEVC/AAC/enhanced)
}

// Classify inspects the first bytes of an FLV audio or video tag body.
// It understands legacy FLV (AVC, HEVC, AV1 codec ids; AAC) and enhanced
// RTMP (the IsExHeader bit for video, sound format 9 for audio).
func Classify(typeID uint8, payload []byte) Media {
	switch typeID {
	case chunk.TypeVideo:
		m := Media{Kind: KindVideo}
		if len(payload) == 0 {
			return m
		}
		b0 := payload[0]
		frameType := (b0 >> 4) & 0x07
		if b0&0x80 != 0 { // enhanced RTMP: [IsExHeader|FrameType(3)|PacketType(4)] FourCC ...
			switch b0 & 0x0f {
			case 0, 5: // SequenceStart, MPEG2TSSequenceStart
				m.SeqHeader = true
			case 1, 3: // CodedFrames, CodedFramesX
				m.Keyframe = frameType == 1
			}
			return m
		}
		switch b0 & 0x0f {
		case 7, 12, 13: // AVC, HEVC and AV1 in their legacy FLV spelling
			if len(payload) < 2 {
				return m
			}
			switch payload[1] {
			case 0:
				m.SeqHeader = true
			case 1:
				m.Keyframe = frameType == 1
			}
		default:
			m.Keyframe = frameType == 1
		}
		return m
	case chunk.TypeAudio:
		m := Media{Kind: KindAudio}
		if len(payload) < 2 {
			return m
		}
		switch payload[0] >> 4 {
		case 10: // AAC
			m.SeqHeader = payload[1] == 0
		case 9: // enhanced audio: [SoundFormat=9|PacketType(4)]
			m.SeqHeader = payload[0]&0x0f == 0
		}
		return m
	}
	return Media{Kind: KindData}
}

// setDataFrame is the AMF0 string "@setDataFrame" as publishers prefix
// metadata with it.
var setDataFrame = []byte{0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}

// onMetaData is the AMF0 string "onMetaData".
var onMetaData = []byte{0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}

// MetadataBody returns the body of a data message as players must see it
// (the "@setDataFrame" prefix removed, the AMF3 marker byte of a type-15
// message dropped) and whether it is onMetaData.
func MetadataBody(typeID uint8, payload []byte) (body []byte, isMeta bool) {
	if typeID == chunk.TypeDataAMF3 && len(payload) > 0 && payload[0] == 0 {
		payload = payload[1:]
	}
	if hasPrefix(payload, setDataFrame) {
		payload = payload[len(setDataFrame):]
	}
	return payload, hasPrefix(payload, onMetaData)
}

func hasPrefix(b, prefix []byte) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i, c := range prefix {
		if b[i] != c {
			return false
		}
	}
	return true
}
