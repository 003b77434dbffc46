package chunk

// Message type ids.
const (
	TypeSetChunkSize     uint8 = 1
	TypeAbort                  = 2
	TypeAck                    = 3
	TypeUserControl            = 4
	TypeWindowAckSize          = 5
	TypeSetPeerBandwidth       = 6
	TypeAudio                  = 8
	TypeVideo                  = 9
	TypeDataAMF3               = 15
	TypeSharedObjectAMF3       = 16
	TypeCommandAMF3            = 17
	TypeDataAMF0               = 18
	TypeSharedObjectAMF0       = 19
	TypeCommandAMF0            = 20
	TypeAggregate              = 22
)

// User control event types.
const (
	EventStreamBegin      uint16 = 0
	EventStreamEOF               = 1
	EventStreamDry               = 2
	EventSetBufferLength         = 3
	EventStreamIsRecorded        = 4
	EventPingRequest             = 6
	EventPingResponse            = 7
)

// Sizes.
const (
	// DefaultChunkSize is the chunk size both directions start with.
	DefaultChunkSize = 128
	// MaxChunkSize is the largest chunk size accepted or produced
	// (16 MiB - 1, the practical limit implied by 3-byte message lengths).
	MaxChunkSize = 0xFFFFFF
	// HandshakeSize is the size of C1, C2, S1 and S2.
	HandshakeSize = 1536
	// MaxHeaderSize is the longest chunk header: a 3-byte basic header, an
	// 11-byte type-0 message header and a 4-byte extended timestamp.
	MaxHeaderSize = 3 + 11 + 4
)

// Header is an RTMP message header as carried in chunk headers.
type Header struct {
	CSID      uint32 // chunk stream id, 2..65599
	Timestamp uint32 // absolute timestamp in milliseconds (wraps)
	Length    uint32 // payload length in bytes
	TypeID    uint8  // message type id
	StreamID  uint32 // message stream id
}

// Message is a complete reassembled message. Payload is owned by the Reader
// and valid until its next Read call. A message the Reader's Placer gave a
// buffer for has no Payload: its bytes are in Placed, laid out by Layout,
// and Placed belongs to the caller.
type Message struct {
	Header
	Payload []byte
	Placed  []byte
	Layout  Layout
}

// Head returns up to n of the message's first payload bytes (fewer when
// the payload is shorter, or, for a placed message, than its first piece).
func (m *Message) Head(n int) []byte {
	if m.Placed == nil {
		return m.Payload[:min(n, len(m.Payload))]
	}
	n = min(n, int(m.Length))
	if m.Layout.Piece > 0 {
		n = min(n, m.Layout.Piece)
	}
	return m.Placed[m.Layout.Off : m.Layout.Off+n]
}

// AppendPayload appends the message's payload to dst.
func (m *Message) AppendPayload(dst []byte) []byte {
	if m.Placed == nil {
		return append(dst, m.Payload...)
	}
	l, rest, at := m.Layout, int(m.Length), m.Layout.Off
	for rest > 0 {
		k := rest
		if l.Piece > 0 {
			k = min(k, l.Piece)
		}
		dst = append(dst, m.Placed[at:at+k]...)
		rest -= k
		at += k + l.Gap
	}
	return dst
}

// Big-endian / little-endian helpers (kept local so the hot paths inline).

func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func appendBE24(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>16), byte(v>>8), byte(v))
}

func appendBE32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendLE32(dst []byte, v uint32) []byte {
	return append(dst, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}
