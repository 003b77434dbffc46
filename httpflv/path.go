package httpflv

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// SplitStreamPath splits a decoded request path of the form
// /{app}/{stream}.flv into app (which may have several segments, as in
// "live/sub") and stream; both are substrings of path. Names follow the
// rules for RTMP names: up to 4 KiB of UTF-8 without control characters.
// Errors are *Error with the status to answer:
//
//   - 414: path over MaxTarget bytes;
//   - 400: not UTF-8, a control character, no leading "/", an empty
//     segment ("//"), or a "." or ".." segment or stream name;
//   - 404: no ".flv" suffix, an empty app ("/x.flv") or stream ("/live/.flv").
func SplitStreamPath(path string) (app, stream string, err error) {
	if len(path) > MaxTarget {
		return "", "", newError(414, "stream path over 4 KiB")
	}
	if !utf8.ValidString(path) {
		return "", "", newError(400, "stream path is not UTF-8")
	}
	for _, r := range path {
		if unicode.IsControl(r) {
			return "", "", newError(400, "control character in stream path")
		}
	}
	if len(path) == 0 || path[0] != '/' {
		return "", "", newError(400, "stream path does not start with /")
	}
	file, ok := strings.CutSuffix(path, ".flv")
	if !ok {
		return "", "", newError(404, "stream path does not end in .flv")
	}
	for segs := file[1:]; ; {
		seg, more, found := strings.Cut(segs, "/")
		if seg == "." || seg == ".." {
			return "", "", newError(400, "dot segment in stream path")
		}
		if seg == "" && found {
			return "", "", newError(400, "empty segment in stream path")
		}
		if !found {
			break
		}
		segs = more
	}
	slash := strings.LastIndexByte(file, '/')
	app, stream = file[1:max(slash, 1)], file[slash+1:]
	if app == "" {
		return "", "", newError(404, "no app in stream path")
	}
	if stream == "" {
		return "", "", newError(404, "no stream name in stream path")
	}
	return app, stream, nil
}
