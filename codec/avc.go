package codec

import (
	"encoding/binary"
	"fmt"
)

// avcProfiles names H.264 profile_idc values as SRS does.
var avcProfiles = map[uint8]string{
	66:  "Baseline",
	77:  "Main",
	88:  "Extended",
	100: "High",
	110: "High(10)",
	122: "High(422)",
	144: "High(444)",
	244: "High(444+Predictive)",
}

func avcProfile(idc uint8) string {
	if s, ok := avcProfiles[idc]; ok {
		return s
	}
	return "Other"
}

// avcLevel writes H.264 level_idc (ten times the level) as the level.
func avcLevel(idc uint8) string {
	switch {
	case idc == 9:
		return "1b"
	case idc < 10 || idc > 62:
		return "Other"
	case idc%10 == 0:
		return fmt.Sprint(idc / 10)
	}
	return fmt.Sprintf("%d.%d", idc/10, idc%10)
}

// parseAVCRecord reads an AVCDecoderConfigurationRecord (ISO/IEC
// 14496-15 5.3.3.1): the profile and level from its header, as SRS does,
// and the picture size from its first SPS.
func parseAVCRecord(rec []byte) (Video, error) {
	v := Video{Codec: "H264"}
	// configurationVersion, AVCProfileIndication, profile_compatibility,
	// AVCLevelIndication, lengthSizeMinusOne, numOfSequenceParameterSets.
	if len(rec) < 6 {
		return v, fmt.Errorf("AVC decoder configuration record: %w", ErrTruncated)
	}
	if rec[0] != 1 {
		return v, fmt.Errorf("AVC decoder configuration record version %d: %w", rec[0], ErrInvalid)
	}
	v.Profile, v.Level = avcProfile(rec[1]), avcLevel(rec[3])
	if rec[5]&0x1f == 0 {
		return v, fmt.Errorf("AVC decoder configuration record without SPS: %w", ErrInvalid)
	}
	if len(rec) < 8 {
		return v, fmt.Errorf("AVC decoder configuration record: %w", ErrTruncated)
	}
	n := int(binary.BigEndian.Uint16(rec[6:]))
	if len(rec) < 8+n {
		return v, fmt.Errorf("AVC decoder configuration record SPS: %w", ErrTruncated)
	}
	var err error
	v.Width, v.Height, err = parseAVCSPS(rec[8 : 8+n])
	return v, err
}

// avcHighProfile tells whether an SPS of this profile_idc carries
// chroma_format_idc, the bit depths and the scaling matrix (H.264
// 7.3.2.1.1; 144 is the withdrawn High 4:4:4, which ffmpeg still reads so).
func avcHighProfile(idc uint32) bool {
	switch idc {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135, 144:
		return true
	}
	return false
}

// parseAVCSPS reads the picture size from an H.264 sequence parameter set
// NAL unit (H.264 7.3.2.1.1, 7.4.2.1.1).
func parseAVCSPS(nal []byte) (width, height int, err error) {
	if len(nal) < 1 {
		return 0, 0, fmt.Errorf("H.264 SPS: %w", ErrTruncated)
	}
	if t := nal[0] & 0x1f; t != 7 {
		return 0, 0, fmt.Errorf("H.264 SPS NAL unit type %d: %w", t, ErrInvalid)
	}
	r := &bitReader{b: rbsp(nal[1:])}
	profile := r.u(8)
	r.skip(16) // constraint_set flags, reserved_zero_2bits, level_idc
	r.ue()     // seq_parameter_set_id
	chroma := uint32(1)
	if avcHighProfile(profile) {
		if chroma = r.ue(); chroma > 3 {
			return 0, 0, fmt.Errorf("H.264 SPS chroma_format_idc %d: %w", chroma, ErrInvalid)
		}
		if chroma == 3 {
			r.skip(1) // separate_colour_plane_flag
		}
		r.ue()        // bit_depth_luma_minus8
		r.ue()        // bit_depth_chroma_minus8
		r.skip(1)     // qpprime_y_zero_transform_bypass_flag
		if r.flag() { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if !r.flag() { // seq_scaling_list_present_flag
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				if err := skipScalingList(r, size); err != nil {
					return 0, 0, fmt.Errorf("H.264 SPS scaling list %d: %w", i, err)
				}
			}
		}
	}
	r.ue() // log2_max_frame_num_minus4
	switch poc := r.ue(); poc {
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.skip(1) // delta_pic_order_always_zero_flag
		r.se()    // offset_for_non_ref_pic
		r.se()    // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return 0, 0, fmt.Errorf("H.264 SPS num_ref_frames_in_pic_order_cnt_cycle %d: %w", n, ErrInvalid)
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.se() // offset_for_ref_frame
		}
	case 2:
	default:
		return 0, 0, fmt.Errorf("H.264 SPS pic_order_cnt_type %d: %w", poc, ErrInvalid)
	}
	r.ue()    // max_num_ref_frames
	r.skip(1) // gaps_in_frame_num_value_allowed_flag
	widthMbs := int64(r.ue()) + 1
	heightMapUnits := int64(r.ue()) + 1
	fields := int64(1) // 2 - frame_mbs_only_flag
	if !r.flag() {
		fields = 2
		r.skip(1) // mb_adaptive_frame_field_flag
	}
	r.skip(1) // direct_8x8_inference_flag
	var left, right, top, bottom int64
	if r.flag() { // frame_cropping_flag
		left, right = int64(r.ue()), int64(r.ue())
		top, bottom = int64(r.ue()), int64(r.ue())
	}
	if r.err != nil {
		return 0, 0, fmt.Errorf("H.264 SPS: %w", r.err)
	}
	// Crop units (7-19 to 7-22): SubWidthC and SubHeightC for 4:2:0 and
	// 4:2:2; luma samples for monochrome and 4:4:4 (with separate colour
	// planes or not), whose chroma, if any, is full size.
	cropX, cropY := int64(1), fields
	switch chroma {
	case 1:
		cropX, cropY = 2, 2*fields
	case 2:
		cropX = 2
	}
	return checkSize("H.264 SPS",
		widthMbs*16-cropX*(left+right),
		fields*heightMapUnits*16-cropY*(top+bottom))
}

// skipScalingList passes over a scaling_list() of size entries (H.264
// 7.3.2.1.1.1).
func skipScalingList(r *bitReader, size int) error {
	last, next := int64(8), int64(8)
	for j := 0; j < size; j++ {
		if next != 0 {
			delta := r.se()
			if r.err != nil {
				return r.err
			}
			if delta < -128 || delta > 127 {
				return fmt.Errorf("delta_scale %d: %w", delta, ErrInvalid)
			}
			next = (last + delta + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
	return nil
}
