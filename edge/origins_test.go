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
