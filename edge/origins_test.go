package edge

import (
	"slices"
	"testing"
	"time"
)

func TestOriginsFailoverOrderAndDeadMarks(t *testing.T) {
	now := time.Now()
	o := NewOrigins([]string{"a:1", "b:1", "c:1"}, false, 10*time.Second)
	if got := o.Order("s", now); !slices.Equal(got, []string{"a:1", "b:1", "c:1"}) {
		t.Fatalf("order %v", got)
	}
	o.Failed("a:1", now)
	if got := o.Order("s", now); !slices.Equal(got, []string{"b:1", "c:1", "a:1"}) {
		t.Fatalf("after a failed: %v", got)
	}
	if got := o.Order("s", now.Add(11*time.Second)); got[0] != "a:1" {
		t.Fatalf("a still last after its TTL: %v", got)
	}
	o.Failed("b:1", now)
	o.Worked("a:1")
	if got := o.Order("s", now); !slices.Equal(got, []string{"a:1", "c:1", "b:1"}) {
		t.Fatalf("after a worked and b failed: %v", got)
	}
}

func TestOriginsHashIsPerStreamAndStable(t *testing.T) {
	list := []string{"o1:1935", "o2:1935", "o3:1935"}
	e1 := NewOrigins(list, true, time.Second)
	e2 := NewOrigins([]string{"o3:1935", "o1:1935", "o2:1935"}, true, time.Second) // another edge, other order
	firsts := map[string]bool{}
	for _, s := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		x, y := e1.Order("live/"+s, time.Now()), e2.Order("live/"+s, time.Now())
		if !slices.Equal(x, y) {
			t.Fatalf("stream %s: edges disagree: %v vs %v", s, x, y)
		}
		firsts[x[0]] = true
	}
	if len(firsts) < 2 {
		t.Fatalf("hash sends every stream to the same origin: %v", firsts)
	}
}

func TestAttemptsRoundsBackoffAndRedirect(t *testing.T) {
	now := time.Now()
	a := NewOrigins([]string{"a:1", "b:1"}, false, time.Minute).NewAttempts("live/s", 100*time.Millisecond, 300*time.Millisecond)
	next := func() (string, time.Duration, bool) { return a.Next(now) }
	if addr, _, ok := next(); !ok || addr != "a:1" {
		t.Fatalf("first attempt %s", addr)
	}
	a.Failed("a:1", false, now)
	if addr, _, ok := next(); !ok || addr != "b:1" {
		t.Fatalf("second attempt %s", addr)
	}
	a.Failed("b:1", false, now)
	for _, want := range []time.Duration{100, 200, 300, 300} {
		_, wait, ok := next()
		if ok || wait != want*time.Millisecond {
			t.Fatalf("after a failed round: ok=%v wait=%s, want %dms", ok, wait, want)
		}
		for range 2 {
			addr, _, ok := next()
			if !ok {
				t.Fatal("no attempt after the wait")
			}
			a.Failed(addr, false, now)
		}
	}
	if to, ok := a.Redirect("rtmp://c.example.com/live"); !ok || to != "c.example.com:1935" {
		t.Fatalf("redirect to %s", to)
	}
	if addr, _, _ := next(); addr != "c.example.com:1935" {
		t.Fatalf("attempt after a redirect: %s", addr)
	}
	a.Worked("c.example.com:1935")
	a.Failed("a:1", true, now) // the serving origin died: a fresh round at once
	if _, _, ok := next(); !ok {
		t.Fatal("no immediate attempt after a serving origin failed")
	}
}

func TestOriginsUpdateTakesEffectAtTheNextRound(t *testing.T) {
	now := time.Now()
	o := NewOrigins([]string{"a:1", "b:1"}, false, time.Minute)
	a := o.NewAttempts("live/s", time.Millisecond, time.Second)
	if addr, _, _ := a.Next(now); addr != "a:1" {
		t.Fatalf("first %s", addr)
	}
	if !a.Failed("a:1", true, now) {
		t.Fatal("a:1 not marked dead")
	}
	o.Update([]string{"a:1", "c:1"}, false, time.Minute)
	// The serving origin failed: a fresh round, by the new list, a:1 (still dead) last.
	if addr, _, _ := a.Next(now); addr != "c:1" {
		t.Fatalf("after the update: %s, want c:1", addr)
	}
	st := o.States(now)
	if len(st) != 2 || st[0].Addr != "a:1" || st[0].DeadUntil.IsZero() || st[1].Addr != "c:1" || !st[1].DeadUntil.IsZero() {
		t.Fatalf("states %+v", st)
	}
	// An origin dropped from the list loses its mark.
	o.Failed("c:1", now)
	o.Update([]string{"a:1"}, false, 0)
	if st := o.States(now); len(st) != 1 || st[0].DeadUntil.IsZero() {
		t.Fatalf("states after the second update %+v", st)
	}
	if o.Failed("a:1", now) {
		t.Fatal("dead_origin_ttl 0 marks no origin dead")
	}
}

// A registry's answer goes first in a new round, listed or not, unless that
// origin failed recently; it applies to one round only.
func TestAttemptsPrefer(t *testing.T) {
	now := time.Now()
	o := NewOrigins([]string{"a:1", "b:1", "c:1"}, false, time.Minute)
	a := o.NewAttempts("live/s", 100*time.Millisecond, 300*time.Millisecond)
	round := func() []string {
		t.Helper()
		if !a.NewRound() {
			t.Fatal("not at the start of a round")
		}
		var got []string
		for {
			addr, _, ok := a.Next(now)
			if !ok {
				return got
			}
			got = append(got, addr)
			a.Failed(addr, false, now)
		}
	}
	a.Prefer("c:1")
	if got := round(); !slices.Equal(got, []string{"c:1", "a:1", "b:1"}) {
		t.Fatalf("round preferring c: %v", got)
	}
	o.Worked("a:1")
	o.Worked("b:1")
	a.Prefer("c:1") // c failed a moment ago: last
	if got := round(); !slices.Equal(got, []string{"a:1", "b:1", "c:1"}) {
		t.Fatalf("round preferring a dead origin: %v", got)
	}
	o.Worked("a:1")
	o.Worked("b:1")
	o.Worked("c:1")
	a.Prefer("d:1") // not in the list
	if got := round(); !slices.Equal(got, []string{"d:1", "a:1", "b:1", "c:1"}) {
		t.Fatalf("round preferring an unlisted origin: %v", got)
	}
	for _, addr := range []string{"a:1", "b:1", "c:1", "d:1"} {
		o.Worked(addr)
	}
	if got := round(); !slices.Equal(got, []string{"a:1", "b:1", "c:1"}) {
		t.Fatalf("the preference outlived its round: %v", got)
	}
}

// Origins that redirect to each other cost at most MaxRedirects attempts a
// round on top of the order.
func TestAttemptsRedirectLoopIsBounded(t *testing.T) {
	now := time.Now()
	a := NewOrigins([]string{"a:1", "b:1"}, false, time.Minute).NewAttempts("live/s", 100*time.Millisecond, 300*time.Millisecond)
	attempts := 0
	for attempts < 100 {
		addr, _, ok := a.Next(now)
		if !ok {
			break
		}
		attempts++
		to := "rtmp://b:1/live" // a and b each send the stream to the other
		if addr == "b:1" {
			to = "rtmp://a:1/live"
		}
		if _, ok := a.Redirect(to); !ok {
			a.Failed(addr, false, now)
		}
	}
	if want := 2 + MaxRedirects; attempts != want {
		t.Fatalf("%d attempts in a round of redirecting origins, want %d", attempts, want)
	}
}
