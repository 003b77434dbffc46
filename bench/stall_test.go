package bench

import (
	"context"
	"os"
	"strings"
	"testing"
)

func stallSamples(ts []float64, fds []int) []StallSample {
	s := make([]StallSample, len(ts))
	for i := range ts {
		s[i] = StallSample{T: ts[i], FDs: fds[i], RSSMB: float64(fds[i]) / 10, HWMMB: float64(fds[i]) / 5}
	}
	return s
}

func TestDisconnectedAfter(t *testing.T) {
	ts := []float64{-2, -1, 0, 5, 10, 15, 15.25, 20}
	for _, c := range []struct {
		name      string
		fds       []int
		threshold int
		want      float64
		ok        bool
	}{
		// Baseline 20 + 3 canaries + 5 slack = 28.
		{"drops at 15.25 s", []int{20, 300, 523, 523, 523, 400, 27, 23}, 28, 15.25, true},
		{"exactly at the threshold", []int{20, 300, 523, 523, 28, 28, 28, 28}, 28, 10, true},
		{"never drops", []int{20, 300, 523, 523, 523, 523, 523, 510}, 28, 0, false},
		// Under the threshold before the last player started does not count.
		{"low only during the ramp", []int{20, 25, 523, 523, 523, 523, 523, 523}, 28, 0, false},
		{"gone during the ramp", []int{20, 300, 24, 24, 24, 24, 24, 24}, 28, 0, true},
	} {
		got, ok := disconnectedAfter(stallSamples(ts, c.fds), c.threshold)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: disconnectedAfter = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if _, ok := disconnectedAfter(nil, 10); ok {
		t.Error("no samples: disconnected")
	}
}

func TestStillConnected(t *testing.T) {
	for _, c := range []struct{ fds, base, admitted, want int }{
		{523, 23, 500, 500},
		{540, 23, 500, 500}, // more fds than players: at most the admitted
		{123, 23, 500, 100},
		{20, 23, 500, 0}, // under the baseline (a canary left)
		{23, 23, 0, 0},
	} {
		if got := stillConnected(c.fds, c.base, c.admitted); got != c.want {
			t.Errorf("stillConnected(%d, %d, %d) = %d, want %d", c.fds, c.base, c.admitted, got, c.want)
		}
	}
}

func TestMinBaseline(t *testing.T) {
	b := -1
	for _, v := range []int{21, 19, 24, 20} {
		b = minBaseline(b, v)
	}
	if b != 19 {
		t.Errorf("baseline %d, want 19", b)
	}
}

func TestSummarizeStall(t *testing.T) {
	r := StallResult{Name: "x", Players: 500, Admitted: 500, Canaries: 3, Baseline: 20, BaselineCanaries: 23, Threshold: 28, ServerAlive: true,
		Samples: stallSamples([]float64{-1, 0, 10, 16, 30}, []int{200, 523, 523, 26, 24})}
	summarizeStall(&r)
	if r.PeakFDs != 523 || r.EndFDs != 24 || r.StillConnected != 1 || !r.AllGone || r.AllGoneAfter != 16 {
		t.Errorf("%+v", r)
	}
	if r.PeakRSSMB != 523.0/5 || r.MaxRSSMB != 52.3 || r.EndRSSMB != 2.4 {
		t.Errorf("rss: peak %v max %v end %v", r.PeakRSSMB, r.MaxRSSMB, r.EndRSSMB)
	}
	row := StallRow(r)
	if len(row) != len(StallHeader) || row[7] != "16.0 s" || row[len(row)-1] != "yes" {
		t.Errorf("row %q", row)
	}
	r.AllGone, r.ServerAlive, r.DiedAt = false, false, 3.5
	if row := StallRow(r); row[7] != "not within the window" || !strings.HasPrefix(row[len(row)-1], "NO") {
		t.Errorf("row %q", row)
	}
}

func TestCountLocalPort(t *testing.T) {
	// Port 19471 is 0x4C0F.
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4C0F 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 100 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4C0F 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1000        0 101 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:4C0F 0100007F:A001 01 0001F000:00000000 01:00000020 00000000  1000        0 102 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:4C0F 0100007F:A002 08 00000000:00000000 00:00000000 00000000  1000        0 103 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:A000 0100007F:4C0F 01 00000000:00000000 00:00000000 00000000  1000        0 201 1 0000000000000000 20 4 30 10 -1
   5: 0100007F:4C0E 0100007F:A003 01 00000000:00000000 00:00000000 00000000  1000        0 104 1 0000000000000000 20 4 30 10 -1
`
	inodes := map[string]bool{"100": true, "101": true, "102": true, "103": true, "104": true}
	// 101, 102 and 103 (CLOSE_WAIT) are connections on the port; 100 is the
	// listener, 201 another process's, 104 on another port.
	if n := countLocalPort([]byte(table), inodes, 19471); n != 3 {
		t.Errorf("countLocalPort = %d, want 3", n)
	}
}

func TestStatusField(t *testing.T) {
	status := "Name:\trtmpedge\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
	if v := statusField([]byte(status), "VmRSS:"); v != 40960 {
		t.Errorf("VmRSS %d", v)
	}
	if v := statusField([]byte(status), "VmHWM:"); v != 51200 {
		t.Errorf("VmHWM %d", v)
	}
	if v := statusField([]byte(status), "VmSwap:"); v != 0 {
		t.Errorf("VmSwap %d", v)
	}
}

func TestSockstatTCP(t *testing.T) {
	sockstat := "sockets: used 127\nTCP: inuse 119 orphan 7 tw 3 alloc 119 mem 51499\nUDP: inuse 0 mem 12\n"
	if pages, orphans := sockstatTCP([]byte(sockstat)); pages != 51499 || orphans != 7 {
		t.Errorf("sockstatTCP = %d, %d", pages, orphans)
	}
	if pages, orphans := sockstatTCP(nil); pages != 0 || orphans != 0 {
		t.Errorf("sockstatTCP(nil) = %d, %d", pages, orphans)
	}
}

func TestSampleStallSelf(t *testing.T) {
	s, ok := sampleStall(os.Getpid(), 1)
	if !ok || s.FDs < 3 || s.RSSMB <= 0 || s.HWMMB < s.RSSMB {
		t.Errorf("sampleStall(self) = %+v, %v", s, ok)
	}
	if _, ok := sampleStall(1<<30, 1); ok {
		t.Error("a process that does not exist was sampled")
	}
}

func TestStallLoadRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := StallLoad(ctx, StallConfig{URL: "http://x/y/z", Server: &ProcWatch{PID: os.Getpid()}}); err == nil {
		t.Error("a bad URL was accepted")
	}
	if _, err := StallLoad(ctx, StallConfig{URL: "rtmp://127.0.0.1:1/live/x"}); err == nil {
		t.Error("no server process was accepted")
	}
}
