package bench

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// Captured from `tc -s qdisc show dev rbs-PID` under load (iproute2 6.1),
// with a child qdisc added to check that the root's counters are read.
const tcSample = `qdisc bfifo 10: parent 8001:1 limit 1000000b
 Sent 5 bytes 1 pkt (dropped 7, overlimits 0 requeues 0)
 backlog 0b 0p requeues 0
qdisc tbf 8001: root refcnt 3 rate 1Gbit burst 131000b lat 12ms 
 Sent 1183350866 bytes 802931 pkt (dropped 1245, overlimits 402335 requeues 3) 
 backlog 1.2Mb 812p requeues 3
`

func TestParseQdisc(t *testing.T) {
	st, err := ParseQdisc(tcSample)
	if err != nil {
		t.Fatal(err)
	}
	want := QdiscStats{Kind: "tbf", SentBytes: 1183350866, SentPackets: 802931, Dropped: 1245, Overlimits: 402335,
		Requeues: 3, BacklogBytes: 1258291, BacklogPackets: 812} // 1.2 MiB
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	idle := "qdisc tbf 8001: root refcnt 3 rate 1Gbit burst 131000b lat 12ms \n Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) \n backlog 0b 0p requeues 0\n"
	if st, err := ParseQdisc(idle); err != nil || st.SentBytes != 0 || st.Kind != "tbf" {
		t.Fatalf("idle: %+v %v", st, err)
	}
	kb := strings.Replace(idle, "backlog 0b 0p", "backlog 61Kb 42p", 1)
	if st, err := ParseQdisc(kb); err != nil || st.BacklogBytes != 61<<10 || st.BacklogPackets != 42 {
		t.Fatalf("Kb backlog: %+v %v", st, err)
	}
	for _, bad := range []string{"", "Cannot find device \"rbs-1\"\n", "qdisc tbf 8001: root\n"} {
		if _, err := ParseQdisc(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestLinkAt(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := []LinkSample{
		{At: t0, Stats: QdiscStats{SentBytes: 0, Dropped: 0}},
		{At: t0.Add(time.Second), Stats: QdiscStats{SentBytes: 1000, Dropped: 10}},
		{At: t0.Add(2 * time.Second), Stats: QdiscStats{SentBytes: 3000, Dropped: 10}},
	}
	if sent, drops, _, ok := linkAt(s, t0.Add(1500*time.Millisecond)); !ok || sent != 2000 || drops != 10 {
		t.Fatalf("at 1.5 s: %v %v %v", sent, drops, ok)
	}
	if _, _, _, ok := linkAt(s, t0.Add(3*time.Second)); ok {
		t.Fatal("after the last sample: ok")
	}
}

func TestMergeYAML(t *testing.T) {
	base := "listen: [\"198.18.0.1:19461\"]\nvhost_defaults:\n  merged_write: 350ms\nvhosts:\n  __defaultVhost__:\n    cluster: {mode: remote, origin: [\"127.0.0.1:19460\"]}\n"
	if got, err := mergeYAML(base, " "); err != nil || got != base {
		t.Fatalf("no extra: %q %v", got, err)
	}
	got, err := mergeYAML(base, "capacity: {max_egress: 900Mbit}\nvhost_defaults: {player_backlog: 5s}")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max_egress: 900Mbit", "player_backlog: 5s", "merged_write: 350ms", "mode: remote", "127.0.0.1:19460", "198.18.0.1:19461"} {
		if !strings.Contains(got, want) {
			t.Errorf("merged config lacks %q:\n%s", want, got)
		}
	}
	if _, err := mergeYAML(base, "capacity: [unclosed"); err == nil {
		t.Error("bad YAML: no error")
	}
}

func TestSRSConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := writeSRSConfig(dir, "srs-edge", "198.18.0.1:19461", 350*time.Millisecond, "", "cluster { mode remote; origin 127.0.0.1:19460; }")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := string(raw)
	for _, want := range []string{"listen 198.18.0.1:19461;", "daemon off;", "pid " + dir + "/srs-edge.pid;", "srs_log_file " + dir + "/srs-edge.log;",
		"play { mw_latency 350; }", "cluster { mode remote; origin 127.0.0.1:19460; }"} {
		if !strings.Contains(b, want) {
			t.Errorf("config lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(b, "min_latency") {
		t.Error("min_latency with a 350 ms window")
	}
	path, _ = writeSRSConfig(dir, "srs-origin", "127.0.0.1:19460", 0, "", "")
	if raw, _ := os.ReadFile(path); !strings.Contains(string(raw), "min_latency on; play { mw_latency 0; }") {
		t.Errorf("0 ms: %s", b)
	}
}

// TestRefusedShare checks that players refused at play are counted apart
// from failed ones and that admitted players' stream share is computed.
func TestRefusedShare(t *testing.T) {
	var ps []*Player
	media0 := []int64{}
	add := func(state int32, started bool, refusedAfter, m0, m1 int64) {
		p := &Player{}
		p.State.Store(state)
		p.Started.Store(started)
		p.RefusedAfter.Store(refusedAfter)
		p.MediaNs.Store(m1)
		if state == StateFailed {
			s := "x"
			p.Reason.Store(&s)
		}
		ps = append(ps, p)
		media0 = append(media0, m0)
	}
	sec := int64(time.Second)
	add(StateDone, true, 0, 5*sec, 15*sec)     // all of a 10 s window
	add(StateDone, true, 0, 5*sec, 14*sec)     // 90%
	add(StateFailed, true, 0, 5*sec, 10*sec)   // admitted, then failed: 50%
	add(StateFailed, false, int64(40e6), 0, 0) // refused after 40 ms
	add(StateFailed, false, int64(80e6), 0, 0) // refused after 80 ms
	add(StateFailed, false, 0, 0, 0)           // failed before play
	add(StateDone, false, 0, 0, 0)             // never answered
	r := Result{Players: len(ps), Seconds: 10}
	r.summarize(ps, media0, nil, nil, time.Now())
	if r.Refused != 2 || r.Failed != 2 || r.Admitted != 3 || r.StillConnecting != 1 {
		t.Fatalf("refused %d failed %d admitted %d still connecting %d", r.Refused, r.Failed, r.Admitted, r.StillConnecting)
	}
	if r.RefusedP99Ms != 40 && r.RefusedP99Ms != 80 {
		t.Errorf("refused p99 %v ms", r.RefusedP99Ms)
	}
	if r.ShareMin != 0.5 || r.ShareP50 != 0.9 {
		t.Errorf("share min %v p50 %v", r.ShareMin, r.ShareP50)
	}

	// With the freshest messages of the window's first and last spans: the
	// first player fell 80 ms behind over the 8 s between them (99%), the
	// second kept up, the third got nothing at the end (media time: 50%).
	t0 := time.Now()
	mark := func(at, behind time.Duration) *BehindMark { return &BehindMark{At: t0.Add(at), Behind: behind} }
	b0 := []*BehindMark{mark(0, 100*time.Millisecond), mark(time.Second, 300*time.Millisecond), mark(0, 0), nil, nil, nil, nil}
	b1 := []*BehindMark{mark(8*time.Second, 180*time.Millisecond), mark(9*time.Second, 300*time.Millisecond), nil, nil, nil, nil, nil}
	r = Result{Players: len(ps), Seconds: 10}
	r.summarize(ps, media0, b0, b1, t0)
	if r.ShareMin != 0.5 || math.Abs(r.ShareP50-0.99) > 1e-9 {
		t.Errorf("share min %v p50 %v", r.ShareMin, r.ShareP50)
	}
}
