package codec

import "fmt"

// flvRates are the rates of the FLV SoundRate bits (SRS says 5512 for
// 5.5 kHz too).
var flvRates = [4]int{5512, 11025, 22050, 44100}

// parseMP3 reads an FLV MP3 payload. MP3 has no sequence header, so the
// FLV header's SoundRate and SoundType give the rate and channels, unless
// the payload starts with an MPEG audio frame header, which also knows
// the rates FLV has no code for (48 kHz, 32 kHz, ...).
func parseMP3(p []byte) Audio {
	a := Audio{Codec: "MP3", SampleRate: flvRates[p[0]>>2&3], Channels: int(p[0]&1) + 1}
	if p[0]>>4 == soundMP38k {
		a.SampleRate = 8000
	}
	if rate, channels, ok := mpegAudioHeader(p[1:]); ok {
		a.SampleRate, a.Channels = rate, channels
	}
	return a
}

// mpegAudioHeader reads the rate and channels from an MPEG-1, -2 or 2.5
// audio frame header (ISO/IEC 11172-3 2.4.1.3, 13818-3).
func mpegAudioHeader(b []byte) (rate, channels int, ok bool) {
	if len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 {
		return 0, 0, false
	}
	version, layer := b[1]>>3&3, b[1]>>1&3 // version 1 and layer 0 are reserved
	bitrate, rateIndex := b[2]>>4, b[2]>>2&3
	if version == 1 || layer == 0 || bitrate == 15 || rateIndex == 3 {
		return 0, 0, false
	}
	rate = [3]int{44100, 48000, 32000}[rateIndex]
	switch version {
	case 2: // MPEG-2
		rate /= 2
	case 0: // MPEG-2.5
		rate /= 4
	}
	channels = 2
	if b[3]>>6 == 3 { // single channel mode
		channels = 1
	}
	return rate, channels, true
}

// parseOpusHead reads the Opus identification header (RFC 7845 5.1) that
// Enhanced RTMP sends as Opus's sequence start. Opus always decodes at
// 48 kHz; the header's input sample rate only tells what was encoded.
func parseOpusHead(b []byte) (Audio, error) {
	a := Audio{Codec: "Opus", SampleRate: 48000}
	if len(b) >= 8 && string(b[:8]) == "OpusTags" {
		return a, fmt.Errorf("Opus comment header carries no stream parameters: %w", ErrUnsupported)
	}
	// Magic, version, channel count, pre-skip, input rate, output gain,
	// mapping family.
	if len(b) < 19 {
		return a, fmt.Errorf("OpusHead: %w", ErrTruncated)
	}
	if string(b[:8]) != "OpusHead" {
		return a, fmt.Errorf("OpusHead magic %q: %w", b[:8], ErrInvalid)
	}
	if b[8]>>4 != 0 {
		return a, fmt.Errorf("OpusHead version %d: %w", b[8], ErrUnsupported)
	}
	channels := int(b[9])
	if channels == 0 {
		return a, fmt.Errorf("OpusHead without channels: %w", ErrInvalid)
	}
	if b[18] != 0 && len(b) < 21+channels { // stream counts and mapping table
		return a, fmt.Errorf("OpusHead channel mapping: %w", ErrTruncated)
	}
	if b[18] == 0 && channels > 2 {
		return a, fmt.Errorf("OpusHead mapping family 0 with %d channels: %w", channels, ErrInvalid)
	}
	a.Channels = channels
	return a, nil
}
