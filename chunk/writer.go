package chunk

import "slices"

// basicHeaderSize returns the size of the basic header for csid.
func basicHeaderSize(csid uint32) int {
	switch {
	case csid < 64:
		return 1
	case csid < 320:
		return 2
	default:
		return 3
	}
}

// appendBasicHeader appends the 1-, 2- or 3-byte basic header.
func appendBasicHeader(dst []byte, f uint8, csid uint32) []byte {
	switch {
	case csid < 64:
		return append(dst, f<<6|byte(csid))
	case csid < 320:
		return append(dst, f<<6, byte(csid-64))
	default:
		c := csid - 64
		return append(dst, f<<6|1, byte(c), byte(c>>8))
	}
}

// wireSize returns the size of a message chunked with a first header of
// format f (message header size mh) and extended timestamp fields if ext.
func wireSize(csid uint32, mh int, ext bool, payloadLen, chunkSize int) int {
	if chunkSize < 1 {
		chunkSize = DefaultChunkSize
	}
	bh := basicHeaderSize(csid)
	e := 0
	if ext {
		e = 4
	}
	chunks := 1
	if payloadLen > chunkSize {
		chunks = (payloadLen + chunkSize - 1) / chunkSize
	}
	return bh + mh + e + payloadLen + (chunks-1)*(bh+e)
}

// appendChunks appends payload as one message whose first chunk has a header
// of format f. tsField is the absolute timestamp (format 0) or the delta
// (formats 1, 2, and 3 when ext). ext says whether the first chunk carries an
// extended timestamp field; continuation chunks then repeat it.
func appendChunks(dst []byte, f uint8, h Header, tsField uint32, ext bool, payload []byte, chunkSize int) []byte {
	if chunkSize < 1 {
		chunkSize = DefaultChunkSize
	}
	dst = slices.Grow(dst, wireSize(h.CSID, msgHeaderSize[f], ext, len(payload), chunkSize))
	dst = appendBasicHeader(dst, f, h.CSID)
	field := tsField
	if ext {
		field = 0xFFFFFF
	}
	switch f {
	case 0:
		dst = appendBE24(dst, field)
		dst = appendBE24(dst, uint32(len(payload)))
		dst = append(dst, h.TypeID)
		dst = appendLE32(dst, h.StreamID)
	case 1:
		dst = appendBE24(dst, field)
		dst = appendBE24(dst, uint32(len(payload)))
		dst = append(dst, h.TypeID)
	case 2:
		dst = appendBE24(dst, field)
	}
	if ext {
		dst = appendBE32(dst, tsField)
	}
	n := min(len(payload), chunkSize)
	dst = append(dst, payload[:n]...)
	for rest := payload[n:]; len(rest) > 0; rest = rest[n:] {
		dst = appendBasicHeader(dst, 3, h.CSID)
		if ext {
			dst = appendBE32(dst, tsField)
		}
		n = min(len(rest), chunkSize)
		dst = append(dst, rest[:n]...)
	}
	return dst
}

// AppendMessage appends payload as one message: a type-0 chunk header
// (absolute timestamp; extended timestamp field when >= 0xFFFFFF) then
// payload pieces of chunkSize bytes, each continuation preceded by a type-3
// header (which repeats the 4-byte extended timestamp when the type-0 header
// had one, as ffmpeg, SRS and nginx-rtmp expect).
//
// The message length is len(payload) (h.Length is ignored) and must be below
// 16 MiB; h.CSID must be within 2..65599 (1-, 2- and 3-byte basic headers).
// A chunkSize below 1 means DefaultChunkSize. When dst has enough capacity
// (see WireSize) nothing is allocated.
func AppendMessage(dst []byte, h Header, payload []byte, chunkSize int) []byte {
	return appendChunks(dst, 0, h, h.Timestamp, h.Timestamp >= 0xFFFFFF, payload, chunkSize)
}

// WireSize returns the number of bytes AppendMessage produces for these
// arguments.
func WireSize(h Header, payloadLen int, chunkSize int) int {
	return wireSize(h.CSID, 11, h.Timestamp >= 0xFFFFFF, payloadLen, chunkSize)
}

// writerStream is the Writer's record of the last message on a chunk stream.
type writerStream struct {
	hdr        Header
	delta      uint32 // delta of the last message (valid if deltaValid)
	deltaValid bool   // last header was format 1, 2 or 3: a format 3 may re-add delta
	ext        bool   // last format 0/1/2 header used the extended timestamp field
	valid      bool
}

// Writer keeps the previous header of each chunk stream and compresses
// headers to formats 1, 2 and 3 where the spec allows (same stream id ->
// format 1; same length and type too -> format 2; same delta too -> format 3).
// A timestamp lower than the previous one on the chunk stream is sent with a
// format 0 header. Writer is used by clients and tests; the server's fan-out
// uses AppendMessage. It is not safe for concurrent use.
type Writer struct {
	chunkSize int
	low       [64]writerStream
	high      map[uint32]*writerStream
}

// NewWriter returns a Writer that cuts messages into chunks of chunkSize
// bytes (values outside 1..MaxChunkSize mean DefaultChunkSize).
func NewWriter(chunkSize int) *Writer {
	w := &Writer{chunkSize: DefaultChunkSize}
	w.SetChunkSize(chunkSize)
	return w
}

// SetChunkSize changes the chunk size used for later messages; values outside
// 1..MaxChunkSize are ignored. The caller is responsible for sending the
// matching Set Chunk Size message (AppendSetChunkSize) first.
func (w *Writer) SetChunkSize(n int) {
	if n >= 1 && n <= MaxChunkSize {
		w.chunkSize = n
	}
}

// ChunkSize returns the chunk size in use.
func (w *Writer) ChunkSize() int { return w.chunkSize }

func (w *Writer) stream(csid uint32) *writerStream {
	if csid < 64 {
		return &w.low[csid]
	}
	if s, ok := w.high[csid]; ok {
		return s
	}
	if w.high == nil {
		w.high = make(map[uint32]*writerStream)
	}
	s := &writerStream{}
	w.high[csid] = s
	return s
}

// Append appends payload as one message on h.CSID (2..65599), choosing the
// most compact header format. The message length is len(payload); h.Length is
// ignored.
func (w *Writer) Append(dst []byte, h Header, payload []byte) []byte {
	h.Length = uint32(len(payload))
	s := w.stream(h.CSID)
	delta := h.Timestamp - s.hdr.Timestamp
	var f uint8
	switch {
	case !s.valid || h.StreamID != s.hdr.StreamID || h.Timestamp < s.hdr.Timestamp:
		f = 0
	case h.Length != s.hdr.Length || h.TypeID != s.hdr.TypeID:
		f = 1
	case s.deltaValid && delta == s.delta:
		f = 3
	default:
		f = 2
	}
	var tsField uint32
	var ext bool
	switch f {
	case 0:
		tsField, ext = h.Timestamp, h.Timestamp >= 0xFFFFFF
		s.ext = ext
		s.deltaValid = false
	case 1, 2:
		tsField, ext = delta, delta >= 0xFFFFFF
		s.ext = ext
		s.deltaValid = true
	case 3:
		tsField, ext = delta, s.ext
	}
	s.hdr = h
	s.delta = delta
	s.valid = true
	return appendChunks(dst, f, h, tsField, ext, payload, w.chunkSize)
}
