// Package mediatest makes and checks video payloads that name themselves,
// for tests that must prove a byte reached a reader intact (media buffers
// recycled under the readers).
package mediatest

import "encoding/binary"

// Frame appends to dst a video payload of n bytes naming id: the FLV video
// header (keyframe or inter frame), id, and a filler byte derived from id.
func Frame(dst []byte, id uint64, n int, key bool) []byte {
	start := len(dst)
	dst = append(dst, 0x27, 1, 0, 0, 0)
	if key {
		dst[start] = 0x17
	}
	dst = binary.BigEndian.AppendUint64(dst, id)
	for len(dst)-start < n {
		dst = append(dst, filler(id))
	}
	return dst
}

// ID returns the id the start of a Frame payload names and whether the rest
// of b is that frame's filler (false when b is too short to name one).
func ID(b []byte) (uint64, bool) {
	if len(b) < 13 {
		return 0, false
	}
	id := binary.BigEndian.Uint64(b[5:13])
	for _, c := range b[13:] {
		if c != filler(id) {
			return id, false
		}
	}
	return id, true
}

func filler(id uint64) byte { return byte(id*7 + 3) }
