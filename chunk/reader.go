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
	have     int    // payload bytes of the current message received
	buf      []byte // own reassembly buffer (len have), reused between messages
	placed   []byte // the Placer's buffer for the current message (nil: buf)
	layout   Layout
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

	// The chunk whose payload is arriving: its stream and the payload
	// bytes still to come (cur nil: the next byte starts a header).
	cur     *chunkStream
	curLeft int
	// The first bytes of a header that arrived without the rest.
	stash  [MaxHeaderSize]byte
	stashN int
	placer Placer

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

// Release drops the reassembly buffers of the chunk streams with no message
// in progress, for a connection that will send little from now on (they
// are allocated again when needed). The last message's payload stays
// valid: it is only no longer reused.
func (r *Reader) Release() {
	r.last = nil
	r.release(nil)
}

// SetPlacer makes p decide where the payloads of messages that start from
// now on go (nil: the Reader's own buffers).
func (r *Reader) SetPlacer(p Placer) { r.placer = p }

// Held returns the bytes of memory the Reader's reassembly buffers hold
// (their capacity, and placed buffers of unfinished messages), for
// process-wide accounting.
func (r *Reader) Held() int { return r.held }

// ChunkSize returns the chunk size currently used to parse the peer's chunks.
func (r *Reader) ChunkSize() int { return r.chunkSize }

// BytesRead returns the total number of bytes consumed, for acknowledgements.
func (r *Reader) BytesRead() uint64 { return r.bytesRead }

// Read parses chunks from buf and stops after the chunk that completes a
// message, or when buf is used up. It returns the bytes consumed and the
// completed message, if any. Everything up to the end of buf is consumed
// unless a message completed before it: the payload of a chunk that has
// not fully arrived is taken as far as it goes, and the first bytes of a
// header are kept until the rest comes, so the caller never needs to keep
// bytes for the next call. The returned message and its Payload are valid
// until the next call (a Placed buffer is the caller's).
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
	for {
		if cs := r.cur; cs != nil {
			if r.curLeft > 0 {
				if n == len(buf) {
					break
				}
				k := min(r.curLeft, len(buf)-n)
				r.appendPayload(cs, buf[n:n+k])
				n += k
				r.curLeft -= k
				if r.curLeft > 0 {
					break
				}
			}
			r.cur = nil
			if cs.have < int(cs.hdr.Length) {
				continue
			}
			m, err := r.complete(cs)
			r.bytesRead += uint64(n)
			if err != nil {
				r.err = err
				return n, nil, err
			}
			return n, m, nil
		}
		if n == len(buf) {
			break
		}
		used, err := r.header(buf[n:])
		n += used
		if err != nil {
			r.err = err
			r.bytesRead += uint64(n)
			return n, nil, err
		}
		if r.cur == nil {
			break // the header's first bytes are stashed: buf is used up
		}
	}
	r.bytesRead += uint64(n)
	return n, nil, nil
}

// header reads the chunk header at the start of b (after the stashed bytes
// of its beginning, if any). When b ends before the header does, its bytes
// are stashed; a header is never longer than MaxHeaderSize.
func (r *Reader) header(b []byte) (used int, err error) {
	if r.stashN == 0 {
		h, err := r.parseHeader(b)
		if err != nil || h > 0 {
			return h, err
		}
		r.stashN = copy(r.stash[:], b)
		return len(b), nil
	}
	k := copy(r.stash[r.stashN:], b)
	h, err := r.parseHeader(r.stash[:r.stashN+k])
	if err != nil {
		return 0, err
	}
	if h == 0 {
		r.stashN += k
		return k, nil
	}
	if h >= r.stashN {
		used = h - r.stashN
		r.stashN = 0
		return used, nil
	}
	// The header ended inside the stash: a continuation chunk whose first
	// payload bytes looked like a repeated extended timestamp until the
	// rest came. They are its payload; what its chunk has no room for
	// begins the next header.
	extra := r.stash[h:r.stashN]
	f := min(len(extra), r.curLeft)
	r.appendPayload(r.cur, extra[:f])
	r.curLeft -= f
	r.stashN = copy(r.stash[:], extra[f:])
	return 0, nil
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

// parseHeader parses the chunk header at the start of b and makes its
// chunk the current one. It returns the header's length, or 0 and no error
// when b ends before the header does.
func (r *Reader) parseHeader(b []byte) (used int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	f := b[0] >> 6
	csid := uint32(b[0] & 0x3f)
	p := 1
	switch csid {
	case 0:
		if len(b) < 2 {
			return 0, nil
		}
		csid = 64 + uint32(b[1])
		p = 2
	case 1:
		if len(b) < 3 {
			return 0, nil
		}
		csid = 64 + uint32(b[1]) + uint32(b[2])<<8
		p = 3
	}

	cs := r.stream(csid)
	if cs == nil && f >= 2 {
		return 0, fmt.Errorf("rtmp chunk: chunk stream %d: format %d header without a previous header on this chunk stream", csid, f)
	}
	partial := cs != nil && cs.partial
	if partial && f != 3 {
		return 0, fmt.Errorf("rtmp chunk: chunk stream %d: new message header (format %d) before previous message completed (%d of %d bytes)",
			csid, f, cs.have, cs.hdr.Length)
	}

	hs := msgHeaderSize[f]
	if len(b) < p+hs {
		return 0, nil
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
				return 0, nil
			}
			tsField = be32(b[p:])
			p += 4
		}
	} else if cs.extended {
		if !partial {
			// A format-3 header starting a new message carries the
			// extended field: it is the delta.
			if len(b) < p+4 {
				return 0, nil
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
					return 0, nil // cannot decide yet
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
			return 0, fmt.Errorf("rtmp chunk: chunk stream %d: message length %d exceeds limit %d: %w", csid, hdr.Length, r.maxMessageSize, ErrMessageTooLong)
		}
	}

	have := 0
	if partial {
		have = cs.have
	}
	size := min(int(hdr.Length)-have, r.chunkSize)
	if r.buffered+size > r.maxBuffered {
		return 0, fmt.Errorf("rtmp chunk: chunk stream %d: %d bytes buffered in partial messages would exceed limit %d",
			csid, r.buffered+size, r.maxBuffered)
	}

	// The header is whole: commit.
	if cs == nil {
		if cs, err = r.newStream(csid); err != nil {
			return 0, err
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
		r.start(cs)
	}
	r.cur, r.curLeft = cs, size
	return p, nil
}

// start begins reassembling cs's message (its header set): in a buffer
// from the Placer, or in cs's own.
func (r *Reader) start(cs *chunkStream) {
	cs.partial, cs.have = true, 0
	cs.buf = cs.buf[:0]
	if r.placer == nil || cs.hdr.Length == 0 || cs.hdr.TypeID <= TypeSetPeerBandwidth {
		return
	}
	buf, l := r.placer.Place(&cs.hdr)
	if buf == nil || l.Off < 0 || l.Gap < 0 || l.End(int(cs.hdr.Length)) > len(buf) {
		return
	}
	cs.placed, cs.layout = buf, l
	r.held += len(buf)
}

// complete hands out cs's message, which has all its bytes.
func (r *Reader) complete(cs *chunkStream) (*Message, error) {
	cs.partial = false
	r.buffered -= cs.have
	r.last = cs
	if cs.placed != nil {
		r.held -= len(cs.placed)
		cs.out = Message{Header: cs.hdr, Placed: cs.placed, Layout: cs.layout}
		cs.placed = nil
		return &cs.out, nil
	}
	cs.out = Message{Header: cs.hdr, Payload: cs.buf}
	switch cs.hdr.TypeID {
	case TypeSetChunkSize:
		v, err := ParseUint32(cs.buf)
		if err != nil {
			return nil, fmt.Errorf("rtmp chunk: set chunk size: %w", err)
		}
		if v&0x80000000 != 0 || v == 0 || int64(v) > int64(r.maxChunkSize) {
			return nil, fmt.Errorf("rtmp chunk: set chunk size %d out of range 1..%d", v, r.maxChunkSize)
		}
		r.chunkSize = int(v)
	case TypeAbort:
		v, err := ParseUint32(cs.buf)
		if err != nil {
			return nil, fmt.Errorf("rtmp chunk: abort: %w", err)
		}
		if t := r.stream(v); t != nil && t.partial {
			r.buffered -= t.have
			if t.placed != nil {
				r.held -= len(t.placed)
				t.placed = nil
			}
			t.buf, t.have, t.partial = t.buf[:0], 0, false
		}
	}
	return &cs.out, nil
}

// appendPayload copies data into cs's placed buffer, or into its own
// reassembly buffer, growing that as bytes arrive (never beyond the message
// length) within the memory budget.
func (r *Reader) appendPayload(cs *chunkStream, data []byte) {
	r.buffered += len(data)
	if cs.placed != nil {
		cs.place(data)
		cs.have += len(data)
		return
	}
	need := len(cs.buf) + len(data)
	if need > cap(cs.buf) {
		// Along the growth steps (minGrow doubling, then maxGrowStep at
		// a time), however much arrived at once: the steps fall on the
		// chunk boundaries of the usual chunk sizes, so a message ends in
		// a buffer of its size rather than up to a step over it.
		newCap := cap(cs.buf)
		for newCap < need {
			newCap = max(min(2*newCap, newCap+maxGrowStep), minGrow)
		}
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
	cs.have = len(cs.buf)
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
	if cs.placed != nil {
		return // a placed buffer has the message's size from its start
	}
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
