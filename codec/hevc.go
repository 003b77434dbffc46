package codec

import (
	"encoding/binary"
	"fmt"
)

// hevcProfile names H.265 general_profile_idc as SRS does. An idc of 0
// with compatibility flags set takes the first profile they name, as
// ffmpeg does.
func hevcProfile(idc uint8, compatibility uint32) string {
	if idc == 0 {
		for j := uint8(1); j <= 4; j++ {
			if compatibility&(1<<(31-j)) != 0 {
				idc = j
				break
			}
		}
	}
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main10"
	case 3:
		return "Main Still Picture"
	case 4:
		return "Rext"
	}
	return "Other"
}

// hevcLevel writes H.265 general_level_idc (thirty times the level).
func hevcLevel(idc uint8) string {
	switch {
	case idc == 0 || idc%3 != 0:
		return "Other"
	case idc%30 == 0:
		return fmt.Sprint(idc / 30)
	}
	return fmt.Sprintf("%d.%d", idc/30, idc%30/3)
}

const hevcNALSPS = 33

// parseHEVCRecord reads an HEVCDecoderConfigurationRecord (ISO/IEC
// 14496-15 8.3.3.1): the profile and level from its header, as SRS does
// (or from the SPS where the header leaves them 0), and the picture size
// from its first SPS.
func parseHEVCRecord(rec []byte) (Video, error) {
	v := Video{Codec: "H265"}
	// 22 bytes of fixed fields, then numOfArrays.
	if len(rec) < 23 {
		return v, fmt.Errorf("HEVC decoder configuration record: %w", ErrTruncated)
	}
	profile, compatibility, level := rec[1]&0x1f, binary.BigEndian.Uint32(rec[2:]), rec[12]
	v.Profile, v.Level = hevcProfile(profile, compatibility), hevcLevel(level)
	var sps []byte
	p := rec[23:]
	for i := 0; i < int(rec[22]) && sps == nil; i++ {
		// array_completeness, reserved, NAL_unit_type; numNalus.
		if len(p) < 3 {
			return v, fmt.Errorf("HEVC decoder configuration record array %d: %w", i, ErrTruncated)
		}
		nalType, count := p[0]&0x3f, int(binary.BigEndian.Uint16(p[1:]))
		p = p[3:]
		for j := 0; j < count; j++ {
			if len(p) < 2 {
				return v, fmt.Errorf("HEVC decoder configuration record NAL unit: %w", ErrTruncated)
			}
			n := int(binary.BigEndian.Uint16(p))
			if len(p) < 2+n {
				return v, fmt.Errorf("HEVC decoder configuration record NAL unit: %w", ErrTruncated)
			}
			if nalType == hevcNALSPS && sps == nil {
				sps = p[2 : 2+n]
			}
			p = p[2+n:]
		}
	}
	if sps == nil {
		return v, fmt.Errorf("HEVC decoder configuration record without SPS: %w", ErrInvalid)
	}
	s, err := parseHEVCSPS(sps)
	if err != nil {
		return v, err
	}
	if profile == 0 && compatibility == 0 {
		v.Profile = hevcProfile(s.profile, s.compatibility)
	}
	if level == 0 {
		v.Level = hevcLevel(s.level)
	}
	v.Width, v.Height = s.width, s.height
	return v, nil
}

// hevcSPS is what parseHEVCSPS reads.
type hevcSPS struct {
	profile, level uint8
	compatibility  uint32
	width, height  int
}

// parseHEVCSPS reads the general profile and level and the picture size
// from an H.265 sequence parameter set NAL unit (H.265 7.3.2.2.1,
// 7.3.3): it stops after the conformance window, so it never reaches the
// later lists (short-term reference picture sets and the like).
func parseHEVCSPS(nal []byte) (hevcSPS, error) {
	var s hevcSPS
	if len(nal) < 2 {
		return s, fmt.Errorf("H.265 SPS: %w", ErrTruncated)
	}
	if t := nal[0] >> 1 & 0x3f; t != hevcNALSPS {
		return s, fmt.Errorf("H.265 SPS NAL unit type %d: %w", t, ErrInvalid)
	}
	r := &bitReader{b: rbsp(nal[2:])}
	r.skip(4)                // sps_video_parameter_set_id
	subLayers := int(r.u(3)) // sps_max_sub_layers_minus1
	if subLayers > 6 {
		return s, fmt.Errorf("H.265 SPS sps_max_sub_layers_minus1 %d: %w", subLayers, ErrInvalid)
	}
	r.skip(1) // sps_temporal_id_nesting_flag
	// profile_tier_level(1, sps_max_sub_layers_minus1)
	r.skip(3) // general_profile_space, general_tier_flag
	s.profile = uint8(r.u(5))
	s.compatibility = r.u(32)
	r.skip(48) // progressive, interlaced, non-packed, frame-only; 43 + 1 bits
	s.level = uint8(r.u(8))
	var profilePresent, levelPresent [6]bool
	for i := 0; i < subLayers; i++ {
		profilePresent[i], levelPresent[i] = r.flag(), r.flag()
	}
	if subLayers > 0 {
		r.skip(2 * (8 - subLayers)) // reserved_zero_2bits
	}
	for i := 0; i < subLayers; i++ {
		if profilePresent[i] {
			r.skip(88)
		}
		if levelPresent[i] {
			r.skip(8)
		}
	}
	r.ue() // sps_seq_parameter_set_id
	chroma := r.ue()
	if chroma > 3 {
		return s, fmt.Errorf("H.265 SPS chroma_format_idc %d: %w", chroma, ErrInvalid)
	}
	if chroma == 3 {
		r.skip(1) // separate_colour_plane_flag
	}
	width, height := int64(r.ue()), int64(r.ue())
	var left, right, top, bottom int64
	if r.flag() { // conformance_window_flag
		left, right = int64(r.ue()), int64(r.ue())
		top, bottom = int64(r.ue()), int64(r.ue())
	}
	if r.err != nil {
		return s, fmt.Errorf("H.265 SPS: %w", r.err)
	}
	// The window is in chroma samples (Table 6-1): SubWidthC and
	// SubHeightC are 2 for 4:2:0, SubWidthC alone is 2 for 4:2:2, and
	// monochrome and 4:4:4 (separate planes or not) count luma samples.
	subWidth, subHeight := int64(1), int64(1)
	switch chroma {
	case 1:
		subWidth, subHeight = 2, 2
	case 2:
		subWidth = 2
	}
	var err error
	s.width, s.height, err = checkSize("H.265 SPS",
		width-subWidth*(left+right), height-subHeight*(top+bottom))
	return s, err
}
