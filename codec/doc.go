// Package codec reads a stream's codec parameters from its FLV sequence
// headers: the payload of the RTMP video message (type 9) or audio
// message (type 8) that starts a sequence. The HTTP API reports them per
// stream in the fields SRS's /api/v1/streams has: the video codec,
// profile, level, width and height, and the audio codec, profile, sample
// rate and channel count.
//
// ParseVideo reads H.264 and H.265 in legacy FLV (codec id 7 and 12, the
// latter as SRS and ffmpeg send it) and H.264, H.265 and AV1 in Enhanced
// RTMP (FourCC avc1, hvc1, av01); the picture size comes from the H.264
// or H.265 sequence parameter set or the AV1 sequence header OBU.
// ParseAudio reads AAC (the AudioSpecificConfig), MP3 (the FLV header
// bits, or the MPEG audio frame header when the payload holds one), and
// in Enhanced RTMP AAC (mp4a) and Opus (its OpusHead).
//
// The functions are pure and safe on any input: they never panic, every
// loop is bounded by the input or a small constant, and they allocate no
// more than a copy of the parameter set they read and a few bytes
// besides. Errors wrap ErrUnsupported, ErrTruncated or ErrInvalid.
package codec
