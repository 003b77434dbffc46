package httpflv

import "strconv"

// AppendResponse appends a response head to dst: the status line
// ("HTTP/1.1 200 OK"), one line per name/value pair in headers
// (AppendResponse(dst, 200, "Content-Type", "video/x-flv")), and the empty
// line. A trailing name without a value gets an empty value. Control
// characters in names and values (CR, LF, NUL, ...) are written as spaces,
// so no value can end the head or inject a header. A status outside
// 100..999 is written as 500. It allocates only if dst must grow.
func AppendResponse(dst []byte, status int, headers ...string) []byte {
	if status < 100 || status > 999 {
		status = 500
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, StatusText(status)...)
	dst = append(dst, "\r\n"...)
	for i := 0; i < len(headers); i += 2 {
		dst = appendFieldText(dst, headers[i])
		dst = append(dst, ": "...)
		if i+1 < len(headers) {
			dst = appendFieldText(dst, headers[i+1])
		}
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendFieldText appends s with control characters other than HTAB
// replaced by spaces.
func appendFieldText(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && (c < 0x20 || c == 0x7f) {
			dst = append(dst, s[:i]...)
			for ; i < len(s); i++ {
				c := s[i]
				if c != '\t' && (c < 0x20 || c == 0x7f) {
					c = ' '
				}
				dst = append(dst, c)
			}
			return dst
		}
	}
	return append(dst, s...)
}

// StatusText returns the reason phrase of an HTTP status code (RFC 9110),
// or "" for a code it does not know (the status line is then valid with an
// empty reason).
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 206:
		return "Partial Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 451:
		return "Unavailable For Legal Reasons"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}
