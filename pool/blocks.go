package pool

import (
	"sync"
	"sync/atomic"
)

// Recycled media blocks. A stream's packets are carved from blocks of a
// few KiB; left to the garbage collector, an edge with 200 streams
// allocated 30 MB of them a second and collected three times a second,
// which was a fifth of its CPU (marking a 50 MB heap each time) and kept
// 25% of the heap in reserve for the next cycle. Blocks instead go back to
// Blocks when their stream is done with them and are carved again.
//
// A block may be carved again only when nothing can still read it. Its
// stream retires it once no packet of its ring lies in it (the stream's
// own bookkeeping, under the stream's lock). Two kinds of reader may
// still hold its bytes then:
//
//   - a fan-out flush that copied the packets out of the ring before they
//     were dropped and writes them after: each flush runs inside
//     Reader.Enter/Exit, and a block retired while a flush that entered
//     earlier runs waits for that flush to exit (epochs);
//   - a player whose socket took part of a packet: it pins the block
//     until the rest is sent or the player leaves.
//
// Anything uncertain (a block whose stream ended, a placement abandoned
// half-way) is simply not retired: the garbage collector frees it, as
// before. Only the proof above makes a block reusable.

// Block classes: multiples of 4 KiB up to 64 KiB (the blocks streams
// carve packets from, and packets of their own up to that size), then of
// 16 KiB up to MaxBlock (packets of their own: keyframes, mostly).
const (
	MinBlock   = 4 << 10
	MaxBlock   = 320 << 10
	smallStep  = 4 << 10
	smallLimit = 64 << 10
	bigStep    = 16 << 10
	smallCount = smallLimit / smallStep
	classes    = smallCount + (MaxBlock-smallLimit)/bigStep
	// fallback: a request may take a free block up to this many classes
	// bigger than its own, rather than have a new one made.
	fallback = 2
)

// classFor returns the smallest class of at least n bytes (-1: over MaxBlock).
func classFor(n int) int {
	switch {
	case n <= 0:
		return 0
	case n <= smallLimit:
		return (n+smallStep-1)/smallStep - 1
	case n <= MaxBlock:
		return smallCount + (n-smallLimit+bigStep-1)/bigStep - 1
	}
	return -1
}

// classSize returns the size of the blocks of class c.
func classSize(c int) int {
	if c < smallCount {
		return (c + 1) * smallStep
	}
	return smallLimit + (c-smallCount+1)*bigStep
}

// DefaultMaxFree bounds the bytes of reusable blocks Blocks keeps: the
// blocks between a retirement and the next carving of their class (a GOP's
// blocks are retired together when the next keyframe comes); the rest go
// to the garbage collector. Measured with 200 streams of 5 players at an
// edge, 2 and 4 MiB cost the same CPU and 2 MiB peaked 5-8 MB lower.
const DefaultMaxFree = 2 << 20

// Block is a buffer carved into packets (or holding one big packet).
type Block struct {
	Buf   []byte
	pins  atomic.Int32
	stamp uint64 // the epoch it was retired in
	class int8
}

// Pin keeps b from being carved again until Unpin: for a reader that keeps
// slices of it beyond a flush.
func (b *Block) Pin() { b.pins.Add(1) }

// Unpin releases a Pin.
func (b *Block) Unpin() {
	if b.pins.Add(-1) < 0 {
		panic("pool: Block unpinned more than pinned")
	}
}

// Blocks hands out media blocks and takes them back. Its methods are safe
// for concurrent use.
type Blocks struct {
	epoch atomic.Uint64 // the current epoch; starts at 1 (0 means a reader is idle)

	mu        sync.Mutex
	free      [classes][]*Block
	freeBytes int
	maxFree   int
	limbo     []*Block // retired, waiting for their readers
	readers   []*Reader
	// When the free blocks would exceed maxFree, those of the class asked
	// for least recently go first (big packets' classes, which the next
	// keyframe may not fit, would otherwise crowd out the blocks every
	// stream carves).
	gets    uint64
	lastGet [classes]uint64

	allocated, reused, dropped uint64 // counters, for Stats (metrics, tests)
}

// NewBlocks returns a block pool keeping up to maxFree bytes of blocks for
// reuse (DefaultMaxFree when not positive).
func NewBlocks(maxFree int) *Blocks {
	if maxFree <= 0 {
		maxFree = DefaultMaxFree
	}
	b := &Blocks{maxFree: maxFree}
	b.epoch.Store(1)
	return b
}

// Get returns a block of at least n bytes: of the smallest class that
// holds n, or a bigger one that is free (n over MaxBlock gets a block that
// is never reused). Its bytes are whatever its last use left.
func (b *Blocks) Get(n int) *Block {
	c := classFor(n)
	if c < 0 {
		return &Block{Buf: make([]byte, n), class: -1}
	}
	b.mu.Lock()
	b.gets++
	b.lastGet[c] = b.gets
	if len(b.limbo) > 0 {
		b.reclaimLocked()
	}
	for k := c; k < min(c+1+fallback, classes); k++ {
		if m := len(b.free[k]); m > 0 {
			blk := b.free[k][m-1]
			b.free[k][m-1] = nil
			b.free[k] = b.free[k][:m-1]
			b.freeBytes -= len(blk.Buf)
			b.reused++
			b.mu.Unlock()
			return blk
		}
	}
	b.allocated++
	b.mu.Unlock()
	return &Block{Buf: make([]byte, classSize(c)), class: int8(c)}
}

// Retire gives back a block no packet of its stream lies in any more. It
// is carved again once every reader that could have copied packets of it
// is done and no one pins it.
func (b *Blocks) Retire(blk *Block) {
	if blk.class < 0 {
		return
	}
	blk.stamp = b.epoch.Add(1)
	b.mu.Lock()
	b.limbo = append(b.limbo, blk)
	b.mu.Unlock()
}

// reclaimLocked moves the blocks of limbo that nobody can read any more to
// the free lists (or to the garbage collector, past maxFree).
func (b *Blocks) reclaimLocked() {
	// The oldest epoch a reader is in: blocks retired after a reader entered
	// (stamp > its epoch) may be in its copy of the packets.
	oldest := ^uint64(0)
	for _, r := range b.readers {
		if a := r.active.Load(); a != 0 && a < oldest {
			oldest = a
		}
	}
	kept := b.limbo[:0]
	for _, blk := range b.limbo {
		// Readers first, pins after: a reader pins within its flush, so a
		// pin taken before the reader exited is seen here.
		if blk.stamp > oldest || blk.pins.Load() != 0 {
			kept = append(kept, blk)
			continue
		}
		if b.makeRoomLocked(blk) {
			b.free[blk.class] = append(b.free[blk.class], blk)
			b.freeBytes += len(blk.Buf)
		} else {
			b.dropped++
		}
	}
	clear(b.limbo[len(kept):])
	b.limbo = kept
}

// makeRoomLocked makes room for blk among the free blocks by dropping the
// oldest free blocks of the classes asked for less recently than blk's. It
// reports false when blk's class is the one asked for least recently (blk
// is then the one to drop).
func (b *Blocks) makeRoomLocked(blk *Block) bool {
	for b.freeBytes+len(blk.Buf) > b.maxFree {
		lru := int(blk.class)
		for k := range b.free {
			if len(b.free[k]) > 0 && b.lastGet[k] < b.lastGet[lru] {
				lru = k
			}
		}
		if lru == int(blk.class) {
			return false
		}
		old := b.free[lru][0] // the bottom of the stack: freed first
		copy(b.free[lru], b.free[lru][1:])
		b.free[lru][len(b.free[lru])-1] = nil
		b.free[lru] = b.free[lru][:len(b.free[lru])-1]
		b.freeBytes -= len(old.Buf)
		b.dropped++
	}
	return true
}

// BlockStats are a pool's counters (for metrics).
type BlockStats struct {
	Allocated, Reused, Dropped uint64 // blocks made, carved again, left to the GC
	FreeBytes, Limbo           int    // bytes ready for reuse; blocks waiting for readers
}

// Stats returns the pool's counters.
func (b *Blocks) Stats() BlockStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BlockStats{
		Allocated: b.allocated, Reused: b.reused, Dropped: b.dropped,
		FreeBytes: b.freeBytes, Limbo: len(b.limbo),
	}
}

// Reader is one goroutine that copies packets out of streams and uses
// their bytes after the streams' locks are released (an event loop's
// flushes). Enter and Exit are called by that goroutine only.
type Reader struct {
	b      *Blocks
	active atomic.Uint64 // the epoch it entered in; 0 when out
	depth  int           // Enters not yet exited (its goroutine only)
}

// NewReader registers a reader.
func (b *Blocks) NewReader() *Reader {
	r := &Reader{b: b}
	b.mu.Lock()
	b.readers = append(b.readers, r)
	b.mu.Unlock()
	return r
}

// Enter starts a use of packets: blocks retired from now on are not
// carved again until Exit. It must come before the packets are copied
// from their stream. Uses may nest; the outermost one counts.
func (r *Reader) Enter() {
	if r.depth == 0 {
		r.active.Store(r.b.epoch.Load())
	}
	r.depth++
}

// Exit ends the use begun by the matching Enter.
func (r *Reader) Exit() {
	r.depth--
	if r.depth == 0 {
		r.active.Store(0)
	}
}
