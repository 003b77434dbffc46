package chunk

import "fmt"

// controlCSID is the chunk stream used for protocol control messages.
const controlCSID = 2

// The control message helpers below append a complete message on chunk
// stream 2, message stream 0, timestamp 0, with a type-0 header. Their bodies
// are at most 10 bytes and go out as a single chunk, which is correct for any
// outgoing chunk size of at least 10 bytes.

func appendControl(dst []byte, typeID uint8, payload []byte) []byte {
	return AppendMessage(dst, Header{CSID: controlCSID, TypeID: typeID}, payload, DefaultChunkSize)
}

func appendControl32(dst []byte, typeID uint8, v uint32) []byte {
	p := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	return appendControl(dst, typeID, p[:])
}

// AppendSetChunkSize appends a Set Chunk Size message (the top bit of size is
// cleared, as the spec requires).
func AppendSetChunkSize(dst []byte, size uint32) []byte {
	return appendControl32(dst, TypeSetChunkSize, size&0x7FFFFFFF)
}

// AppendAbort appends an Abort message for chunk stream csid.
func AppendAbort(dst []byte, csid uint32) []byte {
	return appendControl32(dst, TypeAbort, csid)
}

// AppendAck appends an Acknowledgement carrying the number of bytes received
// so far.
func AppendAck(dst []byte, sequence uint32) []byte {
	return appendControl32(dst, TypeAck, sequence)
}

// AppendWindowAckSize appends a Window Acknowledgement Size message.
func AppendWindowAckSize(dst []byte, size uint32) []byte {
	return appendControl32(dst, TypeWindowAckSize, size)
}

// AppendSetPeerBandwidth appends a Set Peer Bandwidth message; limitType is
// 0 (hard), 1 (soft) or 2 (dynamic).
func AppendSetPeerBandwidth(dst []byte, size uint32, limitType uint8) []byte {
	p := [5]byte{byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size), limitType}
	return appendControl(dst, TypeSetPeerBandwidth, p[:])
}

// AppendUserControl appends a user control message whose event data is a
// stream id: StreamBegin, StreamEOF, StreamDry or StreamIsRecorded.
func AppendUserControl(dst []byte, event uint16, streamID uint32) []byte {
	p := [6]byte{byte(event >> 8), byte(event), byte(streamID >> 24), byte(streamID >> 16), byte(streamID >> 8), byte(streamID)}
	return appendControl(dst, TypeUserControl, p[:])
}

// AppendSetBufferLength appends a SetBufferLength user control message.
func AppendSetBufferLength(dst []byte, streamID, millis uint32) []byte {
	p := [10]byte{0, byte(EventSetBufferLength),
		byte(streamID >> 24), byte(streamID >> 16), byte(streamID >> 8), byte(streamID),
		byte(millis >> 24), byte(millis >> 16), byte(millis >> 8), byte(millis)}
	return appendControl(dst, TypeUserControl, p[:])
}

// AppendPingRequest appends a PingRequest user control message.
func AppendPingRequest(dst []byte, timestamp uint32) []byte {
	return AppendUserControl(dst, EventPingRequest, timestamp)
}

// AppendPingResponse appends a PingResponse user control message.
func AppendPingResponse(dst []byte, timestamp uint32) []byte {
	return AppendUserControl(dst, EventPingResponse, timestamp)
}

// UserControl is a parsed user control message. StreamID is set for the
// stream events and SetBufferLength, BufferLength for SetBufferLength,
// Timestamp for PingRequest and PingResponse.
type UserControl struct {
	Event        uint16
	StreamID     uint32
	BufferLength uint32
	Timestamp    uint32
}

// ParseUserControl parses a user control message body. Unknown event types
// are returned with only Event set.
func ParseUserControl(payload []byte) (UserControl, error) {
	var uc UserControl
	if len(payload) < 2 {
		return uc, fmt.Errorf("rtmp user control: %w: %d bytes", errShortPayload, len(payload))
	}
	uc.Event = uint16(payload[0])<<8 | uint16(payload[1])
	data := payload[2:]
	need := 0
	switch uc.Event {
	case EventStreamBegin, EventStreamEOF, EventStreamDry, EventStreamIsRecorded, EventPingRequest, EventPingResponse:
		need = 4
	case EventSetBufferLength:
		need = 8
	default:
		return uc, nil
	}
	if len(data) < need {
		return UserControl{Event: uc.Event}, fmt.Errorf("rtmp user control event %d: %w: %d data bytes, need %d", uc.Event, errShortPayload, len(data), need)
	}
	switch uc.Event {
	case EventPingRequest, EventPingResponse:
		uc.Timestamp = be32(data)
	case EventSetBufferLength:
		uc.StreamID = be32(data)
		uc.BufferLength = be32(data[4:])
	default:
		uc.StreamID = be32(data)
	}
	return uc, nil
}

// ParseUint32 parses the 4-byte big-endian body of Set Chunk Size,
// Acknowledgement, Window Acknowledgement Size and Abort messages (and the
// size field of Set Peer Bandwidth).
func ParseUint32(payload []byte) (uint32, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("%w: %d bytes, need 4", errShortPayload, len(payload))
	}
	return be32(payload), nil
}
