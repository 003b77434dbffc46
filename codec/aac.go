package codec

import "fmt"

// AAC audio object types (ISO/IEC 14496-3 1.5.1.1).
const (
	aotMain = 1
	aotLC   = 2
	aotSSR  = 3
	aotSBR  = 5  // HE-AAC
	aotPS   = 29 // HE-AAC v2

	syncExtensionSBR = 0x2b7
	syncExtensionPS  = 0x548
)

// aacProfile names an audio object type as SRS does.
func aacProfile(aot uint32) string {
	switch aot {
	case aotMain:
		return "Main"
	case aotLC:
		return "LC"
	case aotSSR:
		return "SSR"
	case aotSBR:
		return "HE"
	case aotPS:
		return "HEv2"
	}
	return "Other"
}

// aacRates are the rates of samplingFrequencyIndex 0 to 12.
var aacRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// aacChannels are the channel counts of channelConfiguration 1 to 14; 0
// marks the reserved ones.
var aacChannels = [...]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8, 15: 0}

// parseAudioSpecificConfig reads an AudioSpecificConfig (ISO/IEC 14496-3
// 1.6.2.1) with the explicit (object type 5 or 29) and the backward
// compatible (sync extension) signalling of SBR and parametric stereo.
func parseAudioSpecificConfig(b []byte) (Audio, error) {
	a := Audio{Codec: "AAC"}
	r := &bitReader{b: b}
	aot := audioObjectType(r)
	rate, err := samplingFrequency(r)
	if err != nil {
		return a, err
	}
	config := r.u(4) // channelConfiguration
	if r.err != nil {
		return a, fmt.Errorf("AAC AudioSpecificConfig: %w", r.err)
	}
	a.Profile, a.SampleRate = aacProfile(aot), rate
	sbr, ps := aot == aotSBR || aot == aotPS, aot == aotPS
	// done names the profile after SBR and parametric stereo, which may be
	// signalled at the end, and counts the channels parametric stereo
	// makes of a mono core.
	done := func() (Audio, error) {
		switch {
		case ps:
			a.Profile = aacProfile(aotPS)
			if a.Channels == 1 {
				a.Channels = 2
			}
		case sbr:
			a.Profile = aacProfile(aotSBR)
		}
		return a, nil
	}
	if sbr {
		// The SBR output rate, then the core's object type.
		if a.SampleRate, err = samplingFrequency(r); err != nil {
			return a, err
		}
		if aot = audioObjectType(r); aot == 22 {
			r.skip(4) // extensionChannelConfiguration
		}
		if r.err != nil {
			return a, fmt.Errorf("AAC AudioSpecificConfig: %w", r.err)
		}
	}
	if config != 0 {
		if a.Channels = aacChannels[config]; a.Channels == 0 {
			return a, fmt.Errorf("AAC channelConfiguration %d: %w", config, ErrInvalid)
		}
	}
	if !generalAudio(aot) {
		return done() // no GASpecificConfig: channels from the configuration alone
	}
	// GASpecificConfig (4.4.1).
	r.skip(1)     // frameLengthFlag
	if r.flag() { // dependsOnCoreCoder
		r.skip(14) // coreCoderDelay
	}
	extension := r.flag()
	if config == 0 {
		if a.Channels, err = programConfigChannels(r); err != nil {
			return a, err
		}
		// The program config element ends byte-aligned with a comment;
		// nothing after it is read.
		return done()
	}
	if aot == 6 || aot == 20 {
		r.skip(3) // layerNr
	}
	if extension {
		if aot == 22 {
			r.skip(5 + 11) // numOfSubFrame, layer_length
		}
		if aot == 17 || aot == 19 || aot == 20 || aot == 23 {
			r.skip(3) // the three resilience flags
		}
		r.skip(1) // extensionFlag3
	}
	if r.err != nil {
		return a, fmt.Errorf("AAC GASpecificConfig: %w", r.err)
	}
	// Backward compatible signalling: a sync extension after the
	// GASpecificConfig of a plain object type (1.6.5.2). Error resilient
	// types would have an epConfig first; they are left alone.
	if !sbr && aot <= 7 && r.left() >= 16 && r.u(11) == syncExtensionSBR {
		if audioObjectType(r) == aotSBR && r.flag() { // sbrPresentFlag
			if rate, err := samplingFrequency(r); err == nil {
				sbr, a.SampleRate = true, rate
				if r.left() >= 12 && r.u(11) == syncExtensionPS {
					ps = r.flag()
				}
			}
		}
	}
	return done()
}

// audioObjectType reads GetAudioObjectType(): 5 bits, 31 escaping to 32
// plus 6 more.
func audioObjectType(r *bitReader) uint32 {
	if aot := r.u(5); aot != 31 {
		return aot
	}
	return 32 + r.u(6)
}

// samplingFrequency reads samplingFrequencyIndex and, for index 15, the
// 24-bit rate that follows.
func samplingFrequency(r *bitReader) (int, error) {
	i := r.u(4)
	rate := 0
	switch {
	case i == 15:
		rate = int(r.u(24))
	case int(i) < len(aacRates):
		rate = aacRates[i]
	}
	if r.err != nil {
		return 0, fmt.Errorf("AAC sampling frequency: %w", r.err)
	}
	if rate == 0 {
		return 0, fmt.Errorf("AAC samplingFrequencyIndex %d: %w", i, ErrInvalid)
	}
	return rate, nil
}

// generalAudio tells whether an object type's specific config is a
// GASpecificConfig.
func generalAudio(aot uint32) bool {
	switch aot {
	case 1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23:
		return true
	}
	return false
}

// programConfigChannels counts the channels a program_config_element
// (4.4.1.1) lays out: one or two per front, side and back element (two
// for a channel pair), one per LFE element.
func programConfigChannels(r *bitReader) (int, error) {
	r.skip(4 + 2 + 4) // element_instance_tag, object_type, sampling_frequency_index
	front, side, back := int(r.u(4)), int(r.u(4)), int(r.u(4))
	lfe := int(r.u(2))
	r.skip(3 + 4) // num_assoc_data_elements, num_valid_cc_elements
	if r.flag() { // mono_mixdown_present
		r.skip(4)
	}
	if r.flag() { // stereo_mixdown_present
		r.skip(4)
	}
	if r.flag() { // matrix_mixdown_idx_present
		r.skip(3)
	}
	channels := lfe
	for i := 0; i < front+side+back; i++ {
		channels++
		if r.flag() { // *_element_is_cpe
			channels++
		}
		r.skip(4) // *_element_tag_select
	}
	if r.err != nil {
		return 0, fmt.Errorf("AAC program_config_element: %w", r.err)
	}
	if channels == 0 {
		return 0, fmt.Errorf("AAC program_config_element without channels: %w", ErrInvalid)
	}
	return channels, nil
}
