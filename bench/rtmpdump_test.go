package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseProcIO(t *testing.T) {
	in := "rchar: 13020\nwchar: 1843200\nsyscr: 19\nsyscw: 436\nread_bytes: 114688\nwrite_bytes: 0\ncancelled_write_bytes: 0\n"
	got, err := ParseProcIO([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got != (ProcIO{RChar: 13020, WChar: 1843200}) {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"", "rchar: 1\n", "rchar: x\nwchar: 2\n", "syscr: 1\nsyscw: 2\n"} {
		if _, err := ParseProcIO([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestReadProcIOOfSelf(t *testing.T) {
	before, err := ReadProcIO(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	after, err := ReadProcIO(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.WChar-before.WChar < 10000 {
		t.Fatalf("wchar grew by %d after writing 10000 bytes", after.WChar-before.WChar)
	}
}

// fakeDump writes a script standing in for rtmpdump.
func fakeDump(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-rtmpdump")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func children() int { return len(tree(os.Getpid())) - 1 }

func TestRtmpdumpLoadCountsOutputAndStopsAll(t *testing.T) {
	if n := children(); n != 0 {
		t.Fatalf("%d child processes before the test", n)
	}
	// The shell's own writes (a builtin's) count in its wchar: 4 KiB every 20 ms.
	bin := fakeDump(t, `while :; do printf '%4096s' x > /dev/null; sleep 0.02; done`)
	r := RtmpdumpLoad(context.Background(), RtmpdumpConfig{URL: "rtmp://127.0.0.1:1/live/x", Players: 3,
		Duration: time.Second, Interval: 200 * time.Millisecond, Bin: bin, Server: &ProcWatch{PID: os.Getpid()}})
	if r.Players != 3 || r.Received != 3 || r.Failed != 0 {
		t.Fatalf("players %d received %d failed %d: %v", r.Players, r.Received, r.Failed, r.Reasons)
	}
	// About 200 KB/s each; a loaded machine runs the loop slower.
	if r.Bytes < 3*20<<10 || r.Seconds < 0.9 || r.Mbps <= 0 || r.PerPlayer <= 0 || r.Server == nil || len(r.Samples) == 0 {
		t.Fatalf("implausible result: %+v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for children() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the scripts' last sleep may linger
	}
	if n := children(); n != 0 {
		t.Fatalf("%d processes left running", n)
	}
}

func TestRtmpdumpLoadReportsExits(t *testing.T) {
	r := RtmpdumpLoad(context.Background(), RtmpdumpConfig{URL: "rtmp://127.0.0.1:1/live/x", Players: 2,
		Duration: 300 * time.Millisecond, Interval: 100 * time.Millisecond, Settle: 300 * time.Millisecond, Bin: fakeDump(t, "exit 3")})
	if r.Failed != 2 || r.Received != 0 || len(r.Reasons) != 1 || !strings.Contains(r.Reasons[0], "exit status 3") {
		t.Fatalf("failed %d received %d reasons %v", r.Failed, r.Received, r.Reasons)
	}
	r = RtmpdumpLoad(context.Background(), RtmpdumpConfig{Players: 2, Bin: "/nonexistent/rtmpdump"})
	if r.Failed != 2 || len(r.Reasons) != 1 {
		t.Fatalf("missing binary: failed %d reasons %v", r.Failed, r.Reasons)
	}
}
