// Package flv writes the FLV container as HTTP-FLV players read it: the
// file header, and the header and trailer around each tag's data. A
// tag's data is the RTMP message payload unchanged, so the server writes
// only these few bytes per message and shares the payload with its RTMP
// players.
package flv

import "encoding/binary"

// Tag types, the same numbers as the RTMP message types they carry.
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// Sizes of the fixed parts.
const (
	HeaderSize    = 13 // file header (9) and PreviousTagSize0 (4)
	TagHeaderSize = 11
	TrailerSize   = 4 // PreviousTagSize after each tag
)

// AppendHeader appends the FLV file header (version 1, with the audio and
// video flags) and PreviousTagSize0.
func AppendHeader(dst []byte, audio, video bool) []byte {
	var flags byte
	if audio {
		flags |= 4
	}
	if video {
		flags |= 1
	}
	return append(dst, 'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0)
}

// AppendTagHeader appends the header of a tag of type typ carrying dataLen
// bytes at timestamp ts in milliseconds (the top 8 bits in the extension
// byte, as FLV stores them). Stream ID is always 0.
func AppendTagHeader(dst []byte, typ uint8, dataLen int, ts uint32) []byte {
	return append(dst, typ,
		byte(dataLen>>16), byte(dataLen>>8), byte(dataLen),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24),
		0, 0, 0)
}

// AppendTrailer appends the PreviousTagSize that follows a tag of dataLen
// bytes of data.
func AppendTrailer(dst []byte, dataLen int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(TagHeaderSize+dataLen))
}
