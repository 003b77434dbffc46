package chunk

import (
	"bytes"
	"testing"
)

func TestControlMessages(t *testing.T) {
	type want struct {
		typ     uint8
		payload []byte
	}
	var b []byte
	var ws []want
	add := func(nb []byte, typ uint8, payload ...byte) {
		b = nb
		ws = append(ws, want{typ, payload})
	}
	add(AppendSetChunkSize(b, 4096), TypeSetChunkSize, 0, 0, 0x10, 0)
	add(AppendSetChunkSize(b, 0x80001000), TypeSetChunkSize, 0, 0, 0x10, 0) // top bit cleared
	add(AppendAbort(b, 6), TypeAbort, 0, 0, 0, 6)
	add(AppendAck(b, 0x01020304), TypeAck, 1, 2, 3, 4)
	add(AppendWindowAckSize(b, 2500000), TypeWindowAckSize, 0, 0x26, 0x25, 0xA0)
	add(AppendSetPeerBandwidth(b, 2500000, 2), TypeSetPeerBandwidth, 0, 0x26, 0x25, 0xA0, 2)
	add(AppendUserControl(b, EventStreamBegin, 1), TypeUserControl, 0, 0, 0, 0, 0, 1)
	add(AppendUserControl(b, EventStreamEOF, 1), TypeUserControl, 0, 1, 0, 0, 0, 1)
	add(AppendUserControl(b, EventStreamDry, 1), TypeUserControl, 0, 2, 0, 0, 0, 1)
	add(AppendUserControl(b, EventStreamIsRecorded, 1), TypeUserControl, 0, 4, 0, 0, 0, 1)
	add(AppendSetBufferLength(b, 1, 3000), TypeUserControl, 0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8)
	add(AppendPingRequest(b, 0xAABBCCDD), TypeUserControl, 0, 6, 0xAA, 0xBB, 0xCC, 0xDD)
	add(AppendPingResponse(b, 0xAABBCCDD), TypeUserControl, 0, 7, 0xAA, 0xBB, 0xCC, 0xDD)

	// Exact wire bytes of one: csid 2, fmt 0, ts 0, length 4, type 1, sid 0.
	if w := []byte{2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0}; !bytes.Equal(b[:16], w) {
		t.Fatalf("set chunk size bytes % x", b[:16])
	}
	msgs := readAll(t, ReaderConfig{}, b)
	if len(msgs) != len(ws) {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, m := range msgs {
		if m.CSID != 2 || m.StreamID != 0 || m.Timestamp != 0 || m.TypeID != ws[i].typ || !bytes.Equal(m.Payload, ws[i].payload) {
			t.Fatalf("message %d: %v % x, want type %d % x", i, m, m.Payload, ws[i].typ, ws[i].payload)
		}
	}

	ucs := []UserControl{}
	for _, m := range msgs {
		if m.TypeID == TypeUserControl {
			uc, err := ParseUserControl(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			ucs = append(ucs, uc)
		}
	}
	wantUC := []UserControl{
		{Event: EventStreamBegin, StreamID: 1},
		{Event: EventStreamEOF, StreamID: 1},
		{Event: EventStreamDry, StreamID: 1},
		{Event: EventStreamIsRecorded, StreamID: 1},
		{Event: EventSetBufferLength, StreamID: 1, BufferLength: 3000},
		{Event: EventPingRequest, Timestamp: 0xAABBCCDD},
		{Event: EventPingResponse, Timestamp: 0xAABBCCDD},
	}
	for i := range wantUC {
		if ucs[i] != wantUC[i] {
			t.Fatalf("user control %d: %+v, want %+v", i, ucs[i], wantUC[i])
		}
	}
}

func TestParseErrors(t *testing.T) {
	if v, err := ParseUint32([]byte{0, 0, 1, 0, 9}); err != nil || v != 256 {
		t.Fatal(v, err)
	}
	for _, p := range [][]byte{nil, {1}, {1, 2, 3}} {
		if _, err := ParseUint32(p); err == nil {
			t.Fatalf("ParseUint32(% x) accepted", p)
		}
	}
	for _, p := range [][]byte{nil, {0}, {0, 0, 0, 0, 1}, {0, 3, 0, 0, 0, 1, 0, 0, 0}, {0, 6, 1, 2}, {0, 7}} {
		if _, err := ParseUserControl(p); err == nil {
			t.Fatalf("ParseUserControl(% x) accepted", p)
		}
	}
	// Unknown events parse with only Event set.
	uc, err := ParseUserControl([]byte{0, 31, 1, 2, 3, 4, 5, 6})
	if err != nil || uc != (UserControl{Event: 31}) {
		t.Fatal(uc, err)
	}
}
