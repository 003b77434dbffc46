package pool

import "testing"

func TestBlocksWaitForReadersThatEnteredBefore(t *testing.T) {
	b := NewBlocks(0)
	r := b.NewReader()
	r.Enter()
	blk := b.Get(16 << 10)
	b.Retire(blk)
	if got := b.Get(16 << 10); got == blk {
		t.Fatal("a block was carved again while a reader that entered before its retirement was in")
	}
	r.Exit()
	if got := b.Get(16 << 10); got != blk {
		t.Fatal("a retired block was not reused once its readers exited")
	}

	// A reader that enters after the retirement cannot have copied it.
	blk = b.Get(16 << 10)
	b.Retire(blk)
	r.Enter()
	r.Enter() // nested: the outermost counts
	r.Exit()
	if got := b.Get(16 << 10); got != blk {
		t.Fatal("a block retired before the reader entered was held back")
	}
	r.Exit()
}

func TestBlocksWaitForPins(t *testing.T) {
	b := NewBlocks(0)
	blk := b.Get(8 << 10)
	blk.Pin()
	b.Retire(blk)
	if got := b.Get(8 << 10); got == blk {
		t.Fatal("a pinned block was carved again")
	}
	blk.Unpin()
	if got := b.Get(8 << 10); got != blk {
		t.Fatal("an unpinned retired block was not reused")
	}
}

func TestBlocksKeepAtMostMaxFree(t *testing.T) {
	b := NewBlocks(32 << 10)
	var blks []*Block
	for range 3 {
		blks = append(blks, b.Get(16<<10))
	}
	for _, blk := range blks {
		b.Retire(blk)
	}
	_ = b.Get(4 << 10) // reclaims
	st := b.Stats()
	if st.FreeBytes != 32<<10 || st.Dropped != 1 || st.Limbo != 0 {
		t.Fatalf("free %d bytes, %d dropped, %d in limbo; want 32 KiB, 1, 0", st.FreeBytes, st.Dropped, st.Limbo)
	}
	// Sizes that are not a class are never reused.
	odd := b.Get(10000)
	b.Retire(odd)
	if got := b.Get(10000); got == odd || len(got.Buf) != 10000 {
		t.Fatal("a block of no class was reused")
	}
}

func TestBlocksUnpinnedMoreThanPinnedPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewBlocks(0).Get(MinBlock).Unpin()
}
