package codec

import "fmt"

// av1Profile names AV1 seq_profile.
func av1Profile(p uint8) string {
	switch p {
	case 0:
		return "Main"
	case 1:
		return "High"
	case 2:
		return "Professional"
	}
	return "Other"
}

// av1Level writes AV1 seq_level_idx as the level X.Y it stands for
// (AV1 Annex A.3: X = 2 + idx>>2, Y = idx&3); 24 to 30 are reserved and
// 31 means no level.
func av1Level(idx uint8) string {
	if idx > 23 {
		return "Other"
	}
	return fmt.Sprintf("%d.%d", 2+idx>>2, idx&3)
}

const av1OBUSequenceHeader = 1

// parseAV1Record reads an AV1CodecConfigurationRecord (AV1 ISOBMFF
// binding 2.3.3): the profile and level from its header, and the picture
// size from the sequence header OBU among its configOBUs, if any.
func parseAV1Record(rec []byte) (Video, error) {
	v := Video{Codec: "AV1"}
	if len(rec) < 4 {
		return v, fmt.Errorf("AV1 codec configuration record: %w", ErrTruncated)
	}
	if rec[0] != 0x81 { // marker 1, version 1
		return v, fmt.Errorf("AV1 codec configuration record marker and version %#x: %w", rec[0], ErrInvalid)
	}
	v.Profile, v.Level = av1Profile(rec[1]>>5), av1Level(rec[1]&0x1f)
	for obus := rec[4:]; len(obus) > 0; {
		// obu_header: forbidden bit, obu_type, extension flag, has size.
		h := obus[0]
		if h&0x80 != 0 {
			return v, fmt.Errorf("AV1 OBU header forbidden bit: %w", ErrInvalid)
		}
		n := 1
		if h&0x04 != 0 {
			n = 2 // obu_extension_header
		}
		if len(obus) < n {
			return v, fmt.Errorf("AV1 OBU header: %w", ErrTruncated)
		}
		size := uint64(len(obus) - n)
		if h&0x02 != 0 {
			s, m, err := leb128(obus[n:])
			if err != nil {
				return v, fmt.Errorf("AV1 OBU size: %w", err)
			}
			if n += m; s > uint64(len(obus)-n) {
				return v, fmt.Errorf("AV1 OBU of %d bytes: %w", s, ErrTruncated)
			}
			size = s
		}
		body := obus[n : n+int(size)]
		obus = obus[n+int(size):]
		if h>>3&0x0f == av1OBUSequenceHeader {
			var err error
			v.Width, v.Height, err = parseAV1SequenceHeader(body)
			return v, err
		}
	}
	return v, nil
}

// parseAV1SequenceHeader reads the maximum frame size from a
// sequence_header_obu (AV1 5.5).
func parseAV1SequenceHeader(b []byte) (width, height int, err error) {
	r := &bitReader{b: b}
	r.skip(4)     // seq_profile, still_picture
	if r.flag() { // reduced_still_picture_header
		r.skip(5) // seq_level_idx[0]
	} else {
		decoderModel, delayLength := false, 0
		if r.flag() { // timing_info_present_flag
			r.skip(64)    // num_units_in_display_tick, time_scale
			if r.flag() { // equal_picture_interval
				skipUVLC(r) // num_ticks_per_picture_minus_1
			}
			if decoderModel = r.flag(); decoderModel {
				delayLength = int(r.u(5)) + 1 // buffer_delay_length_minus_1
				r.skip(32 + 5 + 5)            // num_units_in_decoding_tick, two lengths
			}
		}
		displayDelay := r.flag()  // initial_display_delay_present_flag
		points := int(r.u(5)) + 1 // operating_points_cnt_minus_1
		for i := 0; i < points; i++ {
			r.skip(12)      // operating_point_idc
			if r.u(5) > 7 { // seq_level_idx
				r.skip(1) // seq_tier
			}
			if decoderModel && r.flag() { // decoder_model_present_for_this_op
				r.skip(2*delayLength + 1) // operating_parameters_info
			}
			if displayDelay && r.flag() { // initial_display_delay_present_for_this_op
				r.skip(4) // initial_display_delay_minus_1
			}
		}
	}
	widthBits, heightBits := int(r.u(4))+1, int(r.u(4))+1
	w, h := int64(r.u(widthBits))+1, int64(r.u(heightBits))+1
	if r.err != nil {
		return 0, 0, fmt.Errorf("AV1 sequence header: %w", r.err)
	}
	return checkSize("AV1 sequence header", w, h)
}

// skipUVLC passes over a uvlc() (AV1 4.10.3): leading zeros, a one, and
// as many bits as there were zeros (none beyond 32).
func skipUVLC(r *bitReader) {
	zeros := 0
	for r.err == nil && !r.flag() {
		zeros++
	}
	if zeros < 32 {
		r.skip(zeros)
	}
}
