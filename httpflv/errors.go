package httpflv

import "strconv"

// Error is a request or path the server must refuse; Status is the HTTP
// status to answer with (400, 404, 414, 431, 501, 505, or 426 from
// CheckWebSocket) and Reason says what was wrong, for logs.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return "httpflv: " + strconv.Itoa(e.Status) + " " + StatusText(e.Status) + ": " + e.Reason
}

func newError(status int, reason string) *Error { return &Error{Status: status, Reason: reason} }

// CloseError is a client frame the server must refuse; Code is the
// WebSocket close code to send (1002 protocol error, 1007 invalid payload,
// 1009 message too big) before closing, and Reason says what was wrong. The
// reason fits in a close frame.
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string {
	return "httpflv: websocket close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}
