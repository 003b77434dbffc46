package pool

import "testing"

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
