package httpflv

import (
	"strings"
	"testing"
)

func TestSplitStreamPath(t *testing.T) {
	tests := []struct {
		path, app, stream string
		status            int
	}{
		{"/live/x.flv", "live", "x", 0},
		{"/live/sub/x.flv", "live/sub", "x", 0},
		{"/live/x.y.flv", "live", "x.y", 0},
		{"/live/直播.flv", "live", "直播", 0},
		{"/live/.../x.flv", "live/...", "x", 0},
		{"/live/x.flv.flv", "live", "x.flv", 0},
		{"/live/a?b.flv", "live", "a?b", 0},
		{"/" + strings.Repeat("a", MaxTarget-7) + "/x.flv", strings.Repeat("a", MaxTarget-7), "x", 0},
		{"/", "", "", 404},
		{"/live/x", "", "", 404},
		{"/live/x.FLV", "", "", 404},
		{"/live/x.flv/", "", "", 404},
		{"/x.flv", "", "", 404},
		{"/.flv", "", "", 404},
		{"/live/.flv", "", "", 404},
		{"", "", "", 400},
		{"live/x.flv", "", "", 400},
		{"//x.flv", "", "", 400},
		{"/live//x.flv", "", "", 400},
		{"/../x.flv", "", "", 400},
		{"/live/../x.flv", "", "", 400},
		{"/live/./x.flv", "", "", 400},
		{"/./x.flv", "", "", 400},
		{"/live/..flv", "", "", 400},
		{"/live/...flv", "", "", 400},
		{"/live/x\x00.flv", "", "", 400},
		{"/live/x\n.flv", "", "", 400},
		{"/live/x\u0085.flv", "", "", 400},
		{"/live/x\xff.flv", "", "", 400},
		{"/" + strings.Repeat("a", MaxTarget-6) + "/x.flv", "", "", 414},
	}
	for _, tt := range tests {
		app, stream, err := SplitStreamPath(tt.path)
		if tt.status == 0 {
			if err != nil || app != tt.app || stream != tt.stream {
				t.Errorf("%q: %q %q %v, want %q %q", tt.path, app, stream, err, tt.app, tt.stream)
			}
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.Status != tt.status || app != "" || stream != "" {
			t.Errorf("%q: %q %q %v, want status %d", tt.path, app, stream, err, tt.status)
		}
	}
}

// TestSplitRequestPath runs paths through ParseRequest first: percent-encoded
// traversal is decoded before it is refused.
func TestSplitRequestPath(t *testing.T) {
	for target, status := range map[string]int{
		"/%2e%2e/%2E%2E/etc/passwd.flv": 400,
		"/live%2Fx.flv":                 0,
		"/live/%2e.flv":                 400,
		"/live/x%2eflv":                 0,
		"/live/x%C2%85.flv":             400,
		"/live/x%ff.flv":                400,
	} {
		_, req, err := ParseRequest([]byte("GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n"), 0)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		_, _, err = SplitStreamPath(req.Path)
		if got := 0; err != nil {
			got = err.(*Error).Status
			if got != status {
				t.Errorf("%s: %v, want %d", target, err, status)
			}
		} else if status != 0 {
			t.Errorf("%s: accepted, want %d", target, status)
		}
	}
}

func TestSplitStreamPathAllocs(t *testing.T) {
	if a := testing.AllocsPerRun(100, func() { SplitStreamPath("/live/sub/x.flv") }); a != 0 {
		t.Errorf("%v allocations, want 0", a)
	}
}
