// Package httpflv implements the wire format that HTTP-FLV and
// WebSocket-FLV players speak: HTTP/1.1 request heads, response heads, the
// stream path convention (/{app}/{stream}.flv) and RFC 6455 WebSocket
// framing. It opens no connections and keeps no state between calls.
//
// Like package chunk it is built for gnet's shared read buffer: ParseRequest
// and ParseFrame are fed whatever bytes have arrived, report how many they
// consumed, return "need more" (0 and no error) for an incomplete head or
// frame, and never retain the caller's buffer. ParseRequest copies the few
// header values it keeps into one allocation (plus the Request itself);
// headers it does not keep are validated and skipped without allocating.
// ParseFrame unmasks in place and allocates nothing. Every limit is checked
// before anything is waited for or allocated, so hostile input costs at most
// maxHead bytes of buffer and one bounded copy.
//
// Failures are *Error (an HTTP status to answer with) for requests and paths,
// and *CloseError (a WebSocket close code) for frames. The package logs
// nothing and does not panic on any input.
package httpflv
