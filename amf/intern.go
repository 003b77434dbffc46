package amf

import "math"

// maxInternLen is the longest string looked up in the intern table.
const maxInternLen = 40

// interned maps strings that recur in RTMP command and data messages
// (command names, connect and status keys, metadata keys) to a
// pre-boxed string value, so decoding them allocates nothing.
var interned = func() map[string]any {
	words := []string{
		// Commands and data handlers.
		"connect", "_result", "_error", "onStatus", "createStream",
		"releaseStream", "FCPublish", "FCUnpublish", "onFCPublish",
		"onFCUnpublish", "FCSubscribe", "onFCSubscribe", "publish", "play",
		"play2", "deleteStream", "closeStream", "receiveAudio",
		"receiveVideo", "pause", "seek", "getStreamLength", "onBWDone",
		"_checkbw", "close", "@setDataFrame", "@clearDataFrame",
		"onMetaData", "|RtmpSampleAccess", "onTextData", "onCuePoint",
		// connect command object and response.
		"app", "type", "flashVer", "swfUrl", "tcUrl", "fpad",
		"capabilities", "audioCodecs", "videoCodecs", "videoFunction",
		"pageUrl", "objectEncoding", "fourCcList", "videoFourCcInfoMap",
		"audioFourCcInfoMap", "capsEx", "nonprivate", "fmsVer", "mode",
		// Status objects.
		"level", "code", "description", "details", "clientid", "status",
		"error", "warning", "data", "version",
		"NetConnection.Connect.Success", "NetConnection.Connect.Rejected",
		"NetConnection.Connect.Closed", "NetStream.Publish.Start",
		"NetStream.Publish.BadName", "NetStream.Unpublish.Success",
		"NetStream.Play.Start", "NetStream.Play.Reset",
		"NetStream.Play.Stop", "NetStream.Play.StreamNotFound",
		"NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify",
		"NetStream.Data.Start", "NetStream.Pause.Notify",
		"NetStream.Unpause.Notify", "NetStream.Seek.Notify",
		// Publishing types.
		"live", "record", "append",
		// onMetaData keys.
		"duration", "width", "height", "videodatarate", "framerate",
		"videocodecid", "audiodatarate", "audiosamplerate",
		"audiosamplesize", "stereo", "audiocodecid", "audiochannels",
		"encoder", "filesize", "avc1", "mp4a",
	}
	m := make(map[string]any, len(words)+1)
	m[""] = ""
	for _, w := range words {
		m[w] = w
	}
	return m
}()

// smallNumbers holds pre-boxed float64 values 0..255 (transaction IDs,
// codec flags, stream IDs), so decoding them allocates nothing.
var smallNumbers = func() (t [256]any) {
	for i := range t {
		t[i] = float64(i)
	}
	return t
}()

// boxNumber returns f as an interface value, avoiding an allocation for
// small non-negative integers.
func boxNumber(f float64) any {
	if f >= 0 && f < float64(len(smallNumbers)) && f == math.Trunc(f) && !math.Signbit(f) {
		return smallNumbers[int(f)]
	}
	return f
}

// internString returns raw as a string that does not alias raw.
func internString(raw []byte) string {
	if len(raw) <= maxInternLen {
		if v, ok := interned[string(raw)]; ok {
			return v.(string)
		}
	}
	return string(raw)
}

// internValue returns raw as a boxed string that does not alias raw.
func internValue(raw []byte) any {
	if len(raw) <= maxInternLen {
		if v, ok := interned[string(raw)]; ok {
			return v
		}
	}
	return string(raw)
}
