package chunk

import (
	"errors"
	"fmt"
)

// Reader defaults.
const (
	defaultMaxMessageSize  = 8 << 20
	defaultMaxChunkStreams = 64
	// minGrow is the smallest capacity a reassembly buffer grows to (bounded
	// by the message length), so small chunk sizes do not cause a cascade of
	// tiny reallocations.
	minGrow = 4096
	// maxGrowStep bounds how far a buffer grows past the bytes that arrived:
	// it doubles up to this, then grows by this much, so a half-sent big
	// message holds about what was sent, not its declared length.
	maxGrowStep = 1 << 20
	// retainCap is the largest reassembly buffer kept for the next message
	// of its chunk stream; a bigger one is dropped once its message was
	// handed out, so a rare big message does not pin its memory.
	retainCap = 64 << 10
)

// ErrMessageTooLong is returned (wrapped) when a peer declares a message
// longer than the Reader's current limit.
var ErrMessageTooLong = errors.New("message too long")

// ReaderConfig bounds what a peer can make a Reader hold.
//
// Memory held by a Reader is about 2*MaxBuffered plus 4 KiB per chunk stream
// at most: reassembly buffers of idle chunk streams are released when the
// total would exceed 2*MaxBuffered. A buffer grows with the bytes that
// arrive (to at most twice them, and at most 1 MiB past them), and one over
// 64 KiB is dropped when its message has been handed out.
type ReaderConfig struct {
	MaxMessageSize  int // largest accepted message length (0 -> 8 MiB default); a larger declared length is an error
	MaxChunkSize    int // largest accepted Set Chunk Size from the peer (0 -> MaxChunkSize); the caller must be able to buffer one whole chunk
	MaxChunkStreams int // most distinct chunk stream ids with state (0 -> 64); a new csid beyond it is an error
	MaxBuffered     int // most bytes held in partial messages over all chunk streams (0 -> 2*MaxMessageSize)
}

// chunkStream is the per-csid reassembly state.
type chunkStream struct {
	hdr      Header // header of the current (or last) message
	delta    uint32 // timestamp delta re-added by a format-3 header starting a new message
	extVal   uint32 // extended timestamp value carried by the current message's first chunk
	extended bool   // the last format 0/1/2 header used the extended timestamp field
	partial  bool   // a message is being reassembled
	buf      []byte // reassembly buffer, reused between messages
	out      Message
}

// Reader reassembles RTMP messages from chunks. It is not safe for
// concurrent use. After Read returns an error the Reader is unusable and
// returns the same error from every later call.
type Reader struct {
	chunkSize       int
	maxMessageSize  int
	maxChunkSize    int
	maxChunkStreams int
	maxBuffered     int
	capBudget       int
	bufferedDefault bool // maxBuffered follows maxMessageSize

	last *chunkStream // the stream whose message the last Read returned

	low     [64]*chunkStream
	high    map[uint32]*chunkStream
	streams int

	buffered  int // bytes held in partial messages
	held      int // total capacity of all reassembly buffers
	bytesRead uint64
	err       error
}

// NewReader returns a Reader with chunk size DefaultChunkSize and the given
// limits (zero fields take their defaults).
func NewReader(cfg ReaderConfig) *Reader {
	r := &Reader{
		chunkSize:       DefaultChunkSize,
		maxMessageSize:  cfg.MaxMessageSize,
		maxChunkSize:    cfg.MaxChunkSize,
		maxChunkStreams: cfg.MaxChunkStreams,
		maxBuffered:     cfg.MaxBuffered,
	}
	if r.maxMessageSize <= 0 {
		r.maxMessageSize = defaultMaxMessageSize
	}
	if r.maxMessageSize > MaxChunkSize { // 3-byte length field
		r.maxMessageSize = MaxChunkSize
	}
	if r.maxChunkSize <= 0 || r.maxChunkSize > MaxChunkSize {
		r.maxChunkSize = MaxChunkSize
	}
	if r.maxChunkStreams <= 0 {
		r.maxChunkStreams = defaultMaxChunkStreams
	}
	if r.maxBuffered <= 0 {
		r.bufferedDefault = true
		r.maxBuffered = 2 * r.maxMessageSize
	}
	r.capBudget = 2 * r.maxBuffered
	return r
}

// SetMaxMessageSize changes the largest accepted message length for
// messages that start from now on, as when a connection may send big media
// once it publishes. Without an explicit MaxBuffered, the buffered limit
// follows (twice the message limit).
func (r *Reader) SetMaxMessageSize(n int) {
	r.maxMessageSize = min(max(n, 1), MaxChunkSize)
	if r.bufferedDefault {
		r.maxBuffered = 2 * r.maxMessageSize
		r.capBudget = 2 * r.maxBuffered
	}
}

// MaxMessageSize returns the largest message length currently accepted.
func (r *Reader) MaxMessageSize() int { return r.maxMessageSize }

// Held returns the bytes of memory the Reader's reassembly buffers hold
// (their capacity), for process-wide accounting.
func (r *Reader) Held() int { return r.held }

// ChunkSize returns the chunk size currently used to parse the peer's chunks.
func (r *Reader) ChunkSize() int { return r.chunkSize }

// BytesRead returns the total number of bytes consumed, for acknowledgements.
func (r *Reader) BytesRead() uint64 { return r.bytesRead }

// Read parses complete chunks from buf and stops after the chunk that
// completes a message, or when buf holds no further complete chunk.
// It returns the bytes consumed (only whole chunks are consumed; a partial
// chunk is left for the next call with more data) and the completed message,
// if any. The returned message and its payload are valid until the next call.
//
// The Reader never keeps a reference to buf. A Set Chunk Size message is
// applied by the Reader itself and also returned; an Abort message discards
// the named chunk stream's partial message and is also returned.
func (r *Reader) Read(buf []byte) (n int, msg *Message, err error) {
	if r.err != nil {
		return 0, nil, r.err
	}
	if cs := r.last; cs != nil {
		// The message handed out last is no longer the caller's: drop a
		// big buffer rather than keep it for a next message that may
		// never be as big.
		r.last = nil
		if !cs.partial && cap(cs.buf) > retainCap {
			r.held -= cap(cs.buf)
			cs.buf = nil
		}
	}
	for n < len(buf) {
		used, m, err := r.readChunk(buf[n:])
		n += used
		if err != nil {
			r.err = err
			r.bytesRead += uint64(n)
			return n, nil, err
		}
		if m != nil {
			r.bytesRead += uint64(n)
			return n, m, nil
		}
		if used == 0 {
			break
		}
	}
	r.bytesRead += uint64(n)
	return n, nil, nil
}

// stream returns the state of csid, or nil.
func (r *Reader) stream(csid uint32) *chunkStream {
	if csid < 64 {
		return r.low[csid]
	}
	return r.high[csid] // nil map lookup is fine
}

func (r *Reader) newStream(csid uint32) (*chunkStream, error) {
	if r.streams >= r.maxChunkStreams {
		return nil, fmt.Errorf("rtmp chunk: chunk stream %d: too many chunk streams (limit %d)", csid, r.maxChunkStreams)
	}
	cs := &chunkStream{}
	if csid < 64 {
		r.low[csid] = cs
	} else {
		if r.high == nil {
			r.high = make(map[uint32]*chunkStream)
		}
		r.high[csid] = cs
	}
	r.streams++
	return cs, nil
}

var msgHeaderSize = [4]int{11, 7, 3, 0}

// readChunk parses one chunk from b. It returns used == 0 and no error when b
// does not yet hold the whole chunk.
func (r *Reader) readChunk(b []byte) (used int, msg *Message, err error) {
	if len(b) == 0 {
		return 0, nil, nil
	}
	f := b[0] >> 6
	csid := uint32(b[0] & 0x3f)
	p := 1
	switch csid {
	case 0:
		if len(b) < 2 {
			return 0, nil, nil
		}
		csid = 64 + uint32(b[1])
		p = 2
	case 1:
		if len(b) < 3 {
			return 0, nil, nil
		}
		csid = 64 + uint32(b[1]) + uint32(b[2])<<8
		p = 3
	}

	cs := r.stream(csid)
	if cs == nil && f >= 2 {
		return 0, nil, fmt.Errorf("rtmp chunk: chunk stream %d: format %d header without a previous header on this chunk stream", csid, f)
	}
	partial := cs != nil && cs.partial
	if partial && f != 3 {
		return 0, nil, fmt.Errorf("rtmp chunk: chunk stream %d: new message header (format %d) before previous message completed (%d of %d bytes)",
			csid, f, len(cs.buf), cs.hdr.Length)
	}

	hs := msgHeaderSize[f]
	if len(b) < p+hs {
		return 0, nil, nil
	}
	h := b[p : p+hs]
	p += hs

	var (
		tsField uint32 // absolute timestamp (format 0) or delta (formats 1, 2)
		length  uint32
		typeID  uint8
		sid     uint32
		ext     bool // this header's timestamp field is extended
	)
	switch f {
	case 0:
		tsField, length, typeID, sid = be24(h), be24(h[3:]), h[6], le32(h[7:])
	case 1:
		tsField, length, typeID = be24(h), be24(h[3:]), h[6]
	case 2:
		tsField = be24(h)
	}
	if f < 3 {
		ext = tsField == 0xFFFFFF
		if ext {
			if len(b) < p+4 {
				return 0, nil, nil
			}
			tsField = be32(b[p:])
			p += 4
		}
	} else if cs.extended {
		if !partial {
			// A format-3 header starting a new message carries the
			// extended field: it is the delta.
			if len(b) < p+4 {
				return 0, nil, nil
			}
			tsField = be32(b[p:])
			p += 4
			ext = true
		} else {
			// Continuation: some encoders omit the repeated extended
			// field. Consume it only when it equals the value of the
			// message's first chunk; otherwise it is payload.
			rest := b[p:]
			k := min(4, len(rest))
			v := cs.extVal
			want := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
			if string(rest[:k]) == string(want[:k]) {
				if k < 4 {
					return 0, nil, nil // cannot decide yet
				}
				p += 4
			}
		}
	}

	// Work out the message header this chunk belongs to.
	var hdr Header
	if partial {
		hdr = cs.hdr
	} else {
		var prev Header
		if cs != nil {
			prev = cs.hdr
		}
		switch f {
		case 0:
			hdr = Header{CSID: csid, Timestamp: tsField, Length: length, TypeID: typeID, StreamID: sid}
		case 1:
			hdr = Header{CSID: csid, Timestamp: prev.Timestamp + tsField, Length: length, TypeID: typeID, StreamID: prev.StreamID}
		case 2:
			hdr = prev
			hdr.Timestamp += tsField
		case 3:
			if !ext {
				tsField = cs.delta
			}
			hdr = prev
			hdr.Timestamp += tsField
		}
		if int64(hdr.Length) > int64(r.maxMessageSize) {
			return 0, nil, fmt.Errorf("rtmp chunk: chunk stream %d: message length %d exceeds limit %d: %w", csid, hdr.Length, r.maxMessageSize, ErrMessageTooLong)
		}
	}

	have := 0
	if partial {
		have = len(cs.buf)
	}
	size := min(int(hdr.Length)-have, r.chunkSize)
	if r.buffered+size > r.maxBuffered {
		return 0, nil, fmt.Errorf("rtmp chunk: chunk stream %d: %d bytes buffered in partial messages would exceed limit %d",
			csid, r.buffered+size, r.maxBuffered)
	}
	if cs == nil {
		// Check the stream limit before waiting for the payload, so a
		// flood of new chunk stream ids fails fast.
		if r.streams >= r.maxChunkStreams {
			return 0, nil, fmt.Errorf("rtmp chunk: chunk stream %d: too many chunk streams (limit %d)", csid, r.maxChunkStreams)
		}
	}
	if len(b) < p+size {
		return 0, nil, nil
	}

	// The whole chunk is here: commit.
	if cs == nil {
		if cs, err = r.newStream(csid); err != nil {
			return 0, nil, err
		}
	}
	if !partial {
		cs.hdr = hdr
		if f < 3 {
			cs.extended = ext
		}
		if ext {
			cs.extVal = tsField
		}
		cs.delta = tsField
		cs.buf = cs.buf[:0]
		cs.partial = true
	}
	r.appendPayload(cs, b[p:p+size])
	used = p + size
	if len(cs.buf) < int(cs.hdr.Length) {
		return used, nil, nil
	}

	// Message complete.
	cs.partial = false
	r.buffered -= len(cs.buf)
	cs.out = Message{Header: cs.hdr, Payload: cs.buf}
	r.last = cs
	switch cs.hdr.TypeID {
	case TypeSetChunkSize:
		v, err := ParseUint32(cs.buf)
		if err != nil {
			return used, nil, fmt.Errorf("rtmp chunk: set chunk size: %w", err)
		}
		if v&0x80000000 != 0 || v == 0 || int64(v) > int64(r.maxChunkSize) {
			return used, nil, fmt.Errorf("rtmp chunk: set chunk size %d out of range 1..%d", v, r.maxChunkSize)
		}
		r.chunkSize = int(v)
	case TypeAbort:
		v, err := ParseUint32(cs.buf)
		if err != nil {
			return used, nil, fmt.Errorf("rtmp chunk: abort: %w", err)
		}
		if t := r.stream(v); t != nil && t.partial {
			r.buffered -= len(t.buf)
			t.buf = t.buf[:0]
			t.partial = false
		}
	}
	return used, &cs.out, nil
}

// appendPayload copies data into cs's reassembly buffer, growing it as bytes
// arrive (never beyond the message length) within the memory budget.
func (r *Reader) appendPayload(cs *chunkStream, data []byte) {
	need := len(cs.buf) + len(data)
	if need > cap(cs.buf) {
		newCap := max(min(2*cap(cs.buf), cap(cs.buf)+maxGrowStep), need, minGrow)
		newCap = min(newCap, int(cs.hdr.Length))
		if r.held-cap(cs.buf)+newCap > r.capBudget {
			r.release(cs)
		}
		nb := make([]byte, len(cs.buf), newCap)
		copy(nb, cs.buf)
		r.held += newCap - cap(cs.buf)
		cs.buf = nb
	}
	cs.buf = append(cs.buf, data...)
	r.buffered += len(data)
}

// release drops the reassembly buffers of idle chunk streams other than keep,
// and shrinks oversized buffers of partial ones.
func (r *Reader) release(keep *chunkStream) {
	for _, cs := range r.low {
		if cs != nil && cs != keep {
			r.releaseOne(cs)
		}
	}
	for _, cs := range r.high {
		if cs != keep {
			r.releaseOne(cs)
		}
	}
}

func (r *Reader) releaseOne(cs *chunkStream) {
	if !cs.partial {
		r.held -= cap(cs.buf)
		cs.buf = nil
		return
	}
	if c := 2*len(cs.buf) + minGrow; cap(cs.buf) > c {
		c = min(c, int(cs.hdr.Length))
		nb := make([]byte, len(cs.buf), c)
		copy(nb, cs.buf)
		r.held += c - cap(cs.buf)
		cs.buf = nb
	}
}

// errShortPayload is returned (wrapped) when a control message body is too
// short for its type.
var errShortPayload = errors.New("payload too short")
