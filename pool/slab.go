// Package pool provides the buffers the hot path reuses: recycled blocks
// that streams carve their packets from (Blocks), slabs that carve
// garbage-collected message buffers out of large blocks (a forwarder's),
// and the pacing of the garbage collector.
package pool

// DefaultSlabSize is the block size a Slab allocates when none is given.
const DefaultSlabSize = 64 << 10

// Slab carves byte slices out of large blocks so that a forwarder allocates
// one block per block size of media instead of one buffer per message.
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
