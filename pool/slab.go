// Package pool provides the buffers the hot path reuses: slabs that carve
// immutable, garbage-collected message buffers out of large blocks, and
// size-classed scratch buffers for short-lived work.
package pool

// DefaultSlabSize is the block size a Slab allocates when none is given.
const DefaultSlabSize = 64 << 10

// Slab carves byte slices out of large blocks so that a stream allocates one
// block per DefaultSlabSize bytes of media instead of one buffer per message.
// Slices are owned by the garbage collector: a block is freed when no slice
// of it is referenced any more, so readers never need to return anything.
// A Slab is not safe for concurrent use.
type Slab struct {
	size  int
	block []byte
}

// NewSlab returns a Slab that allocates blocks of size bytes.
func NewSlab(size int) *Slab {
	if size <= 0 {
		size = DefaultSlabSize
	}
	return &Slab{size: size}
}

// SetSize makes the blocks allocated from now on size bytes (ignored when
// not positive); the current block is used up first.
func (s *Slab) SetSize(size int) {
	if size > 0 {
		s.size = size
	}
}

// Size returns the size of the blocks allocated from now on.
func (s *Slab) Size() int { return s.size }

// Alloc returns a slice of length and capacity n. Requests larger than
// half the block size get a buffer of their own; a request the rest of the
// block cannot take starts a new block (the rest, under half a block, is
// not used).
func (s *Slab) Alloc(n int) []byte {
	if n > s.size/2 {
		return make([]byte, n)
	}
	if len(s.block)+n > cap(s.block) {
		s.block = make([]byte, 0, s.size)
	}
	start := len(s.block)
	s.block = s.block[:start+n]
	return s.block[start : start+n : start+n]
}
