package pool

import (
	"testing"
	"time"
)

func TestSlabAllocDoesNotOverlap(t *testing.T) {
	s := NewSlab(1024)
	a := s.Alloc(100)
	b := s.Alloc(100)
	for i := range a {
		a[i] = 1
	}
	for i := range b {
		b[i] = 2
	}
	if a[99] != 1 || b[0] != 2 {
		t.Fatal("slices overlap")
	}
	if cap(a) != 100 {
		t.Fatalf("cap(a) = %d, want 100 so appends cannot run into the next slice", cap(a))
	}
	big := s.Alloc(600)
	if len(big) != 600 {
		t.Fatalf("len(big) = %d", len(big))
	}
	// Filling past the block makes a new block.
	for range 20 {
		x := s.Alloc(200)
		if len(x) != 200 || cap(x) != 200 {
			t.Fatalf("len/cap = %d/%d", len(x), cap(x))
		}
	}
}

func BenchmarkSlabAlloc(b *testing.B) {
	s := NewSlab(0)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Alloc(5000)
	}
}

func TestSlabSizeAndOwnBuffers(t *testing.T) {
	s := NewSlab(1024)
	a := s.Alloc(512) // half a block: carved
	b := s.Alloc(100)
	if &s.block[0] != &a[0] || &s.block[512] != &b[0] || cap(a) != 512 {
		t.Fatal("half a block and the next request were not carved one after the other from the block")
	}
	own := s.Alloc(513) // over half: a buffer of its own
	if len(s.block) != 612 || len(own) != 513 {
		t.Fatalf("block used %d after an own buffer", len(s.block))
	}
	s.Alloc(500) // does not fit the rest (412): a new block
	if cap(s.block) != 1024 || len(s.block) != 500 {
		t.Fatalf("new block cap %d len %d", cap(s.block), len(s.block))
	}
}

// The GC tuner puts the next collection at base% over the recent peak of
// the live heap, which halves every half-life, never under base.
func TestGCTunerPacesOnTheRecentPeak(t *testing.T) {
	tu := &gcTuner{base: 25, most: 400, halfLife: 10 * time.Second}
	at := time.Unix(0, 0)
	step := func(sec int, live uint64, want int) {
		t.Helper()
		if got := tu.next(at.Add(time.Duration(sec)*time.Second), live); got != want {
			t.Fatalf("at %d s, live %d: GOGC %d, want %d", sec, live, got, want)
		}
	}
	step(0, 8<<20, 25)   // a peak of 8 MiB: 10 MiB is the target
	step(0, 4<<20, 150)  // 4 MiB live: 6 more before the target
	step(10, 4<<20, 25)  // the peak halved to 4 MiB: 5 is the target
	step(10, 12<<20, 25) // a new peak
	step(10, 1<<20, 400) // at most 400
	step(40, 1<<20, 87)  // 12 MiB halved three times: (1.875-1)/1
}
