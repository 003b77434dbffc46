package chunk

// A Placer decides where the payload of a message goes while it arrives.
// Place is called when a message's first chunk header has been read (h is
// its header, Length its payload length) and returns a buffer for the
// payload and where in it the bytes go, or nil to let the Reader reassemble
// the message in its own buffer. The Reader writes only the payload bytes
// Layout names, and hands the buffer back in Message.Placed when the
// message is complete; a message aborted or left unfinished drops it.
// Protocol control messages (types 1 to 6) are never placed.
type Placer interface {
	Place(h *Header) ([]byte, Layout)
}

// Layout says where a placed message's payload lies in its buffer: its
// first byte at Off, then Piece bytes at a time with Gap bytes left between
// two pieces. A buffer laid out by ChunkLayout becomes the message's
// chunked form in place (ChunkPlaced), so the payload is copied once, from
// the socket's bytes to the bytes every reader of the message is sent.
// Piece 0 means contiguous.
type Layout struct {
	Off, Piece, Gap int
}

// End returns the index in the buffer just after the last byte of a payload
// of n bytes.
func (l Layout) End(n int) int {
	if n == 0 || l.Piece <= 0 {
		return l.Off + n
	}
	return l.Off + n + (n-1)/l.Piece*l.Gap
}

// ChunkLayout is the layout of a message sent on csid in chunks of
// chunkSize bytes with a type-0 first header: room for the longest header
// before the payload, and between pieces room for a type-3 header (with the
// extended timestamp repeated when extended).
func ChunkLayout(csid uint32, extended bool, chunkSize int) Layout {
	gap := basicHeaderSize(csid)
	if extended {
		gap += 4
	}
	return Layout{Off: MaxHeaderSize, Piece: max(chunkSize, 1), Gap: gap}
}

// ChunkPlaced writes the chunk headers of a message whose n payload bytes
// were placed in buf by a ChunkLayout(h.CSID, extended, chunkSize) layout
// l: a type-0 header (absolute timestamp h.Timestamp, length n, h.TypeID,
// h.StreamID) just before the payload and a type-3 header in every gap. It
// returns the message's chunked form, a slice of buf equal to what
// AppendMessage(nil, h, payload, l.Piece) makes, or false (writing nothing)
// when l does not fit h: its gaps are not the size h's continuation headers
// need, or buf is too short.
func ChunkPlaced(buf []byte, l Layout, h Header, n int) ([]byte, bool) {
	ext := h.Timestamp >= 0xFFFFFF
	bh := basicHeaderSize(h.CSID)
	gap, hs := bh, bh+11
	if ext {
		gap += 4
		hs += 4
	}
	end := l.End(n)
	if l.Piece < 1 || l.Gap != gap || l.Off < hs || end > len(buf) {
		return nil, false
	}
	start := l.Off - hs
	tsField := h.Timestamp
	if ext {
		tsField = 0xFFFFFF
	}
	d := appendBasicHeader(buf[start:start], 0, h.CSID)
	d = appendBE24(d, tsField)
	d = appendBE24(d, uint32(n))
	d = append(d, h.TypeID)
	d = appendLE32(d, h.StreamID)
	if ext {
		_ = appendBE32(d, h.Timestamp)
	}
	for at := l.Off + l.Piece; at < end; at += l.Piece + gap {
		d = appendBasicHeader(buf[at:at], 3, h.CSID)
		if ext {
			_ = appendBE32(d, h.Timestamp)
		}
	}
	return buf[start:end:end], true
}

// place copies data, the payload bytes from offset have on, into the
// placed buffer of cs.
func (cs *chunkStream) place(data []byte) {
	l, off := cs.layout, cs.have
	for len(data) > 0 {
		at, k := l.Off+off, len(data)
		if l.Piece > 0 {
			at += off / l.Piece * l.Gap
			k = min(k, l.Piece-off%l.Piece)
		}
		copy(cs.placed[at:at+k], data[:k])
		data = data[k:]
		off += k
	}
}

// SetStreamID rewrites the message stream id in the type-0 header that
// starts wire (a message as AppendMessage or ChunkPlaced make it).
func SetStreamID(wire []byte, sid uint32) {
	at := 1 + 7 // basic header, timestamp, length, type
	switch wire[0] & 0x3f {
	case 0:
		at++
	case 1:
		at += 2
	}
	_ = appendLE32(wire[at:at], sid)
}

// StreamIDOf returns the message stream id in the type-0 header that
// starts wire.
func StreamIDOf(wire []byte) uint32 {
	at := 1 + 7
	switch wire[0] & 0x3f {
	case 0:
		at++
	case 1:
		at += 2
	}
	return le32(wire[at:])
}
