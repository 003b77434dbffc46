package edge

import (
	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// OnStatus returns an onStatus command for StreamID as chunks of chunkSize.
func OnStatus(dst []byte, chunkSize int, level, code, description string) []byte {
	body, err := amf.AppendAll(nil, "onStatus", 0.0, nil, amf.Object{
		{Key: "level", Value: level},
		{Key: "code", Value: code},
		{Key: "description", Value: description},
	})
	if err != nil {
		panic("edge: encoding a fixed onStatus failed: " + err.Error()) // only strings and numbers: cannot fail
	}
	hdr := chunk.Header{CSID: csidCmd, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0, StreamID: StreamID}
	return chunk.AppendMessage(dst, hdr, body, chunkSize)
}

func publishNotification(key Key, chunkSize int) []byte {
	b := chunk.AppendUserControl(nil, chunk.EventStreamBegin, StreamID)
	return OnStatus(b, chunkSize, "status", "NetStream.Play.PublishNotify", key.Stream+" is now published.")
}

func unpublishNotification(key Key, chunkSize int) []byte {
	b := chunk.AppendUserControl(nil, chunk.EventStreamEOF, StreamID)
	return OnStatus(b, chunkSize, "status", "NetStream.Play.UnpublishNotify", key.Stream+" is now unpublished.")
}
