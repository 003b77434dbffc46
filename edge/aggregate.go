package edge

import (
	"encoding/binary"
	"fmt"
)

// SplitAggregate calls fn for each FLV tag inside an RTMP aggregate message
// (type 22) received with timestamp ts. Sub-message timestamps are made
// relative to the first one and added to ts, as the RTMP spec describes.
func SplitAggregate(ts uint32, payload []byte, fn func(typeID uint8, ts uint32, body []byte) error) error {
	var first uint32
	for i := 0; len(payload) > 0; i++ {
		if len(payload) < 11 {
			return fmt.Errorf("aggregate: tag header truncated (%d bytes left)", len(payload))
		}
		typeID := payload[0]
		size := int(payload[1])<<16 | int(payload[2])<<8 | int(payload[3])
		subTS := uint32(payload[4])<<16 | uint32(payload[5])<<8 | uint32(payload[6]) | uint32(payload[7])<<24
		if len(payload) < 11+size+4 {
			return fmt.Errorf("aggregate: tag %d declares %d bytes, %d left", i, size, len(payload)-11)
		}
		if i == 0 {
			first = subTS
		}
		body := payload[11 : 11+size]
		if back := binary.BigEndian.Uint32(payload[11+size:]); back != uint32(11+size) && back != 0 {
			return fmt.Errorf("aggregate: tag %d back pointer %d, want %d", i, back, 11+size)
		}
		if err := fn(typeID, ts+(subTS-first), body); err != nil {
			return err
		}
		payload = payload[11+size+4:]
	}
	return nil
}
