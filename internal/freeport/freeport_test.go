package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreDistinctBelowTheEphemeralRangeAndUnbound(t *testing.T) {
	hi := ephemeralLow()
	if hi-lowest < 1000 {
		t.Skipf("ephemeral range starts at %d: nothing below it to hand out", hi)
	}
	// Hold the port Port would hand out next: it must be skipped.
	mu.Lock()
	if next == 0 {
		mu.Unlock()
		if _, err := Port(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
	}
	held := next
	mu.Unlock()
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(held)))
	if err != nil {
		t.Skipf("port %d is taken by someone else: %v", held, err)
	}
	defer l.Close()

	seen := map[int]bool{}
	for range 200 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowest || p >= hi {
			t.Fatalf("port %d outside %d-%d", p, lowest, hi-1)
		}
		if p == held {
			t.Fatalf("port %d handed out while a listener holds it", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	a, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", a)
	if err != nil {
		t.Fatalf("Addr %s cannot be bound: %v", a, err)
	}
	ln.Close()
}
