package codec

import (
	"errors"
	"fmt"
)

// Errors the parsers wrap; test for them with errors.Is.
var (
	// ErrUnsupported means the payload is of a codec or packet kind this
	// package does not read (such as VP6, Speex, VP9 or FLAC).
	ErrUnsupported = errors.New("codec: unsupported")
	// ErrTruncated means the payload ends inside a header or record.
	ErrTruncated = errors.New("codec: truncated")
	// ErrInvalid means the payload breaks its format, or is not a
	// sequence header.
	ErrInvalid = errors.New("codec: invalid")
)

// Video is what a video sequence header tells of a stream, named as SRS
// reports it.
type Video struct {
	// Codec is "H264", "H265" or "AV1".
	Codec string
	// Profile is the profile's name: for H.264 "Baseline", "Main",
	// "Extended", "High", "High(10)", "High(422)", "High(444)" or
	// "High(444+Predictive)"; for H.265 "Main", "Main10", "Main Still
	// Picture" or "Rext"; for AV1 "Main", "High" or "Professional";
	// "Other" for any other.
	Profile string
	// Level is the level as a number, such as "3.1", "4" or "5.2" ("1b"
	// for H.264 level_idc 9; AV1 levels always have a minor number, as in
	// "4.0"); "Other" for a value that is no level.
	Level string
	// Width and Height are the displayed picture size in pixels: the
	// coded size less the cropping (H.264 frame cropping, H.265
	// conformance window), or for AV1 the sequence's maximum frame size.
	// They are 0 for an AV1 record without a sequence header OBU.
	Width, Height int
}

// Audio is what an audio sequence header tells of a stream, named as SRS
// reports it.
type Audio struct {
	// Codec is "AAC", "MP3" or "Opus".
	Codec string
	// Profile is the AAC audio object type's name: "Main", "LC", "SSR",
	// "HE" (SBR) or "HEv2" (SBR and parametric stereo), or "Other". It is
	// empty for MP3 and Opus.
	Profile string
	// SampleRate is the decoded sample rate in Hz: for HE-AAC the SBR
	// output rate, for Opus always 48000.
	SampleRate int
	// Channels is the number of decoded channels (2 for HE-AAC v2 with
	// a mono core).
	Channels int
}

// maxDimension bounds a width or height (AV1's largest, 2^16).
const maxDimension = 1 << 16

// checkSize rejects a picture size that cropping made empty or that no
// encoder produces.
func checkSize(what string, w, h int64) (int, int, error) {
	if w <= 0 || h <= 0 || w > maxDimension || h > maxDimension {
		return 0, 0, fmt.Errorf("%s: picture size %dx%d: %w", what, w, h, ErrInvalid)
	}
	return int(w), int(h), nil
}

// FLV and Enhanced RTMP numbers.
const (
	videoAVC  = 7  // legacy CodecID
	videoHEVC = 12 // legacy CodecID, as SRS and ffmpeg use it

	frameCommand = 5 // FrameType of a video info/command frame

	packetSequenceStart = 0 // Enhanced RTMP packet type, audio and video
	videoMetadata       = 4
	videoMPEG2TSStart   = 5
	videoMultitrack     = 6
	audioMultitrack     = 5
	packetModEx         = 7 // audio and video

	multitrackOne           = 0 // AvMultitrackType
	multitrackManyCodecs    = 2
	multitrackReservedFirst = 3

	soundMP3      = 2
	soundExHeader = 9
	soundAAC      = 10
	soundMP38k    = 14
)

// ParseVideo reads an FLV VIDEODATA payload that is a sequence header:
// legacy AVC or HEVC (AVCPacketType 0) with its decoder configuration
// record, or Enhanced RTMP PacketTypeSequenceStart for FourCC avc1, hvc1
// or av01 (also inside ModEx and multitrack packets, where it reads the
// first track). On error the Video may hold what was read before the
// error, such as the Codec.
func ParseVideo(payload []byte) (Video, error) {
	if len(payload) == 0 {
		return Video{}, fmt.Errorf("video tag header: %w", ErrTruncated)
	}
	if payload[0]&0x80 != 0 {
		return exSequenceStart(payload, true, videoParsers)
	}
	var v Video
	switch id := payload[0] & 0x0f; id {
	case videoAVC:
		v.Codec = "H264"
	case videoHEVC:
		v.Codec = "H265"
	default:
		return Video{}, fmt.Errorf("video codec id %d: %w", id, ErrUnsupported)
	}
	// AVCPacketType and the 24-bit composition time.
	if len(payload) < 5 {
		return v, fmt.Errorf("%s video tag header: %w", v.Codec, ErrTruncated)
	}
	if payload[1] != 0 {
		return v, fmt.Errorf("%s packet type %d is not a sequence header: %w", v.Codec, payload[1], ErrInvalid)
	}
	if v.Codec == "H264" {
		return parseAVCRecord(payload[5:])
	}
	return parseHEVCRecord(payload[5:])
}

// videoParsers and audioParsers read the sequence start of each Enhanced
// RTMP FourCC this package knows.
var (
	videoParsers = map[string]func([]byte) (Video, error){
		"avc1": parseAVCRecord,
		"hvc1": parseHEVCRecord,
		"av01": parseAV1Record,
	}
	audioParsers = map[string]func([]byte) (Audio, error){
		"mp4a": parseAudioSpecificConfig,
		"Opus": parseOpusHead,
	}
)

// exSequenceStart reads an Enhanced RTMP video or audio header and hands
// the body of a sequence start to the parser of its FourCC.
func exSequenceStart[T any](payload []byte, video bool, parsers map[string]func([]byte) (T, error)) (T, error) {
	var zero T
	pt, fourCC, body, err := exHeader(payload, video)
	switch {
	case err != nil:
		return zero, fmt.Errorf("enhanced RTMP header: %w", err)
	case parsers[fourCC] == nil:
		return zero, fmt.Errorf("FourCC %q: %w", fourCC, ErrUnsupported)
	case pt == packetSequenceStart:
		return parsers[fourCC](body)
	case video && pt == videoMPEG2TSStart:
		return zero, fmt.Errorf("%s MPEG-2 TS sequence start: %w", fourCC, ErrUnsupported)
	}
	return zero, fmt.Errorf("%s packet type %d is not a sequence header: %w", fourCC, pt, ErrInvalid)
}

// ParseAudio reads an FLV AUDIODATA payload: an AAC sequence header
// (AACPacketType 0, AudioSpecificConfig), any MP3 payload, or Enhanced
// RTMP AudioPacketType SequenceStart for FourCC mp4a (AAC) or Opus
// (OpusHead), also inside ModEx and multitrack packets, where it reads
// the first track. On error the Audio may hold what was read before the
// error, such as the Codec.
func ParseAudio(payload []byte) (Audio, error) {
	if len(payload) == 0 {
		return Audio{}, fmt.Errorf("audio tag header: %w", ErrTruncated)
	}
	switch format := payload[0] >> 4; format {
	case soundAAC:
		if len(payload) < 2 {
			return Audio{Codec: "AAC"}, fmt.Errorf("AAC audio tag header: %w", ErrTruncated)
		}
		if payload[1] != 0 {
			return Audio{Codec: "AAC"}, fmt.Errorf("AAC packet type %d is not a sequence header: %w", payload[1], ErrInvalid)
		}
		return parseAudioSpecificConfig(payload[2:])
	case soundMP3, soundMP38k:
		return parseMP3(payload), nil
	case soundExHeader:
		return exSequenceStart(payload, false, audioParsers)
	default:
		return Audio{}, fmt.Errorf("audio sound format %d: %w", format, ErrUnsupported)
	}
}

// exHeader reads the Enhanced RTMP header that audio and video share
// after the first byte (whose low 4 bits are the packet type): any ModEx
// blocks, the multitrack header, the FourCC, and for a multitrack packet
// the first track's id and size. It returns the packet type, the FourCC
// and the body of the (first) track.
func exHeader(p []byte, video bool) (pt byte, fourCC string, body []byte, err error) {
	multitrack, command := byte(audioMultitrack), false
	if video {
		// A command frame carries a command byte rather than a body.
		multitrack, command = videoMultitrack, p[0]>>4&7 == frameCommand
	}
	pt, p = p[0]&0x0f, p[1:]
	for pt == packetModEx {
		// Each turn takes at least 2 bytes, so the loop ends.
		if len(p) < 1 {
			return 0, "", nil, ErrTruncated
		}
		size, n := int(p[0])+1, 1
		if size == 256 {
			if len(p) < 3 {
				return 0, "", nil, ErrTruncated
			}
			size, n = (int(p[1])<<8|int(p[2]))+1, 3
		}
		if len(p) < n+size+1 {
			return 0, "", nil, ErrTruncated
		}
		pt, p = p[n+size]&0x0f, p[n+size+1:]
	}
	if command && pt != videoMetadata {
		return 0, "", nil, fmt.Errorf("command frame, not a sequence header: %w", ErrInvalid)
	}
	mt := -1
	if pt == multitrack {
		if len(p) < 1 {
			return 0, "", nil, ErrTruncated
		}
		mt, pt, p = int(p[0]>>4), p[0]&0x0f, p[1:]
		if mt >= multitrackReservedFirst {
			return 0, "", nil, fmt.Errorf("multitrack type %d: %w", mt, ErrInvalid)
		}
		if pt == multitrack || pt == packetModEx {
			return 0, "", nil, fmt.Errorf("packet type %d inside a multitrack packet: %w", pt, ErrInvalid)
		}
	}
	if mt != multitrackManyCodecs {
		if len(p) < 4 {
			return 0, "", nil, ErrTruncated
		}
		fourCC, p = string(p[:4]), p[4:]
	}
	if mt < 0 {
		return pt, fourCC, p, nil
	}
	if mt == multitrackManyCodecs {
		if len(p) < 4 {
			return 0, "", nil, ErrTruncated
		}
		fourCC, p = string(p[:4]), p[4:]
	}
	if len(p) < 1 { // track id
		return 0, "", nil, ErrTruncated
	}
	p = p[1:]
	if mt != multitrackOne {
		if len(p) < 3 {
			return 0, "", nil, ErrTruncated
		}
		size := int(p[0])<<16 | int(p[1])<<8 | int(p[2])
		if len(p) < 3+size {
			return 0, "", nil, ErrTruncated
		}
		p = p[3 : 3+size]
	}
	return pt, fourCC, p, nil
}
