package codec

import "bytes"

// bitReader reads big-endian bit fields. A read past the end returns zero
// and leaves ErrTruncated in err (a bad value found by a reader method,
// ErrInvalid); every later read returns zero, so a parser may read a run
// of fields and check err once, but must check it in any loop that does
// not otherwise end.
type bitReader struct {
	b   []byte
	pos int // in bits
	err error
}

// left is the number of unread bits.
func (r *bitReader) left() int { return len(r.b)*8 - r.pos }

// u reads n ≤ 32 bits as an unsigned number.
func (r *bitReader) u(n int) uint32 {
	if r.err != nil {
		return 0
	}
	if n > r.left() {
		r.err = ErrTruncated
		r.pos = len(r.b) * 8
		return 0
	}
	var v uint32
	for ; n > 0; n-- {
		v = v<<1 | uint32(r.b[r.pos>>3]>>(7-r.pos&7))&1
		r.pos++
	}
	return v
}

// flag reads one bit.
func (r *bitReader) flag() bool { return r.u(1) == 1 }

// skip passes over n bits.
func (r *bitReader) skip(n int) {
	if r.err != nil {
		return
	}
	if n > r.left() {
		r.err = ErrTruncated
		r.pos = len(r.b) * 8
		return
	}
	r.pos += n
}

// ue reads an unsigned exp-Golomb code, ue(v) in the H.264 and H.265
// syntax. A code of more than 31 leading zeros does not fit the 32-bit
// range those standards allow and sets ErrInvalid.
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.u(1) == 0 {
		if r.err != nil {
			return 0
		}
		if zeros++; zeros > 31 {
			r.err = ErrInvalid
			return 0
		}
	}
	return uint32(uint64(1)<<zeros - 1 + uint64(r.u(zeros)))
}

// se reads a signed exp-Golomb code, se(v).
func (r *bitReader) se() int64 {
	k := int64(r.ue())
	if k&1 == 1 {
		return (k + 1) / 2
	}
	return -k / 2
}

// rbsp returns a NAL unit's payload without its emulation prevention
// bytes: the 0x03 an encoder puts after two zero bytes so that the
// payload never looks like a start code. It returns nal itself when there
// is none, else a copy.
func rbsp(nal []byte) []byte {
	if !bytes.Contains(nal, []byte{0, 0, 3}) {
		return nal
	}
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// leb128 reads the unsigned LEB128 number AV1 sizes OBUs with (at most 8
// bytes), and the number of bytes it took.
func leb128(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 8; i++ {
		if i == len(b) {
			return 0, 0, ErrTruncated
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, ErrInvalid
}
