package bench

import (
	"encoding/binary"
	"fmt"

	"github.com/rtmpedge/rtmpedge/chunk"
)

// skimMsg is a message as the skimmer reports it: header, the first bytes
// of the payload (enough to tell keyframes and sequence headers apart) and,
// for small control and command messages only, the whole payload.
type skimMsg struct {
	TypeID    uint8
	Timestamp uint32
	Length    uint32
	Head      []byte // up to headBytes of the payload
	Payload   []byte // whole payload for kept (non-media) messages, else nil
}

const (
	headBytes   = 8
	maxKept     = 256 << 10 // control/command/data messages kept whole up to this size
	maxSkimSize = 64 << 20
)

type skimStream struct {
	typeID    uint8
	streamID  uint32
	ts        uint32
	delta     uint32
	length    uint32
	extended  bool
	remaining uint32 // payload bytes of the current message still to come
	keep      bool
	buf       []byte
	head      [headBytes]byte
	headN     int
}

// skimmer parses RTMP chunks without copying media payloads: a load
// generator must cost far less than the server it loads. It consumes every
// byte it is given except an incomplete chunk header.
type skimmer struct {
	chunkSize int
	streams   map[uint32]*skimStream
	cur       *skimStream // chunk whose payload is being consumed
	chunkLeft int         // payload bytes left in the current chunk
	msg       skimMsg
}

func newSkimmer() *skimmer {
	return &skimmer{chunkSize: chunk.DefaultChunkSize, streams: make(map[uint32]*skimStream)}
}

// feed parses buf and calls fn for each completed message. It returns the
// bytes consumed; the rest (a partial chunk header) must be fed again with
// more data.
func (s *skimmer) feed(buf []byte, fn func(*skimMsg) error) (int, error) {
	p := 0
	for p < len(buf) {
		if s.chunkLeft == 0 {
			n, err := s.header(buf[p:])
			if err != nil {
				return p, err
			}
			if n == 0 {
				return p, nil // partial header
			}
			p += n
			if s.chunkLeft == 0 && s.cur.remaining == 0 { // empty message
				if err := s.complete(fn); err != nil {
					return p, err
				}
			}
			continue
		}
		st := s.cur
		k := min(s.chunkLeft, len(buf)-p)
		piece := buf[p : p+k]
		if st.headN < headBytes {
			st.headN += copy(st.head[st.headN:], piece)
		}
		if st.keep {
			st.buf = append(st.buf, piece...)
		}
		p += k
		s.chunkLeft -= k
		st.remaining -= uint32(k)
		if st.remaining == 0 {
			if err := s.complete(fn); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func (s *skimmer) complete(fn func(*skimMsg) error) error {
	st := s.cur
	s.chunkLeft = 0
	m := &s.msg
	*m = skimMsg{TypeID: st.typeID, Timestamp: st.ts, Length: st.length, Head: st.head[:st.headN]}
	if st.keep {
		m.Payload = st.buf
	}
	if st.typeID == chunk.TypeSetChunkSize && len(st.buf) >= 4 {
		n := int(binary.BigEndian.Uint32(st.buf) & 0x7fffffff)
		if n < 1 || n > chunk.MaxChunkSize {
			return fmt.Errorf("set chunk size %d", n)
		}
		s.chunkSize = n
	}
	err := fn(m)
	st.buf = st.buf[:0]
	return err
}

// header parses a chunk header at the start of b; 0 means incomplete.
func (s *skimmer) header(b []byte) (int, error) {
	if len(b) < 1 {
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
		csid, p = 64+uint32(b[1]), 2
	case 1:
		if len(b) < 3 {
			return 0, nil
		}
		csid, p = 64+uint32(b[1])+uint32(b[2])<<8, 3
	}
	size := [4]int{11, 7, 3, 0}[f]
	if len(b) < p+size {
		return 0, nil
	}
	h := b[p : p+size]
	st := s.streams[csid]
	if st == nil {
		if f != 0 && f != 1 {
			return 0, fmt.Errorf("chunk stream %d: format %d without a previous header", csid, f)
		}
		if len(s.streams) >= 256 {
			return 0, fmt.Errorf("too many chunk streams")
		}
		st = &skimStream{}
		s.streams[csid] = st
	}
	newMsg := st.remaining == 0
	if f < 3 && !newMsg {
		return 0, fmt.Errorf("chunk stream %d: new header inside a message", csid)
	}
	var tsField uint32
	ext := false
	if f < 3 {
		tsField = uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
		ext = tsField == 0xffffff
	} else {
		ext = st.extended
	}
	need := p + size
	if ext {
		need += 4
	}
	if len(b) < need {
		return 0, nil
	}
	if ext {
		v := binary.BigEndian.Uint32(b[p+size:])
		if f < 3 {
			tsField = v
		} else if newMsg {
			tsField = v
		}
	}
	if f < 3 {
		st.extended = ext
	}
	switch f {
	case 0:
		st.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
		st.typeID = h[6]
		st.streamID = binary.LittleEndian.Uint32(h[7:])
		st.ts, st.delta = tsField, tsField
	case 1:
		st.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
		st.typeID = h[6]
		st.ts += tsField
		st.delta = tsField
	case 2:
		st.ts += tsField
		st.delta = tsField
	case 3:
		if newMsg {
			st.ts += st.delta
		}
	}
	if newMsg {
		if st.length > maxSkimSize {
			return 0, fmt.Errorf("message of %d bytes", st.length)
		}
		st.remaining = st.length
		st.headN = 0
		st.keep = st.typeID != chunk.TypeAudio && st.typeID != chunk.TypeVideo && st.typeID != chunk.TypeAggregate && st.length <= maxKept
		st.buf = st.buf[:0]
	}
	s.cur = st
	s.chunkLeft = int(min(st.remaining, uint32(s.chunkSize)))
	return need, nil
}
