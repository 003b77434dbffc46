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
	// Blocks over the biggest class are never reused.
	huge := b.Get(MaxBlock + 1)
	b.Retire(huge)
	if got := b.Get(MaxBlock + 1); got == huge || len(got.Buf) != MaxBlock+1 {
		t.Fatal("a block of no class was reused")
	}
}

func TestBlockClasses(t *testing.T) {
	for _, c := range []struct{ n, size int }{
		{1, 4 << 10}, {4 << 10, 4 << 10}, {4<<10 + 1, 8 << 10}, {10000, 12 << 10}, {64 << 10, 64 << 10},
		{64<<10 + 1, 80 << 10}, {262_400, 272 << 10}, {MaxBlock, MaxBlock},
	} {
		if got := len(NewBlocks(0).Get(c.n).Buf); got != c.size {
			t.Errorf("a block for %d bytes has %d, want %d", c.n, got, c.size)
		}
	}
	// A free block up to two classes bigger is taken rather than a new one made.
	b := NewBlocks(0)
	big := b.Get(96 << 10)
	b.Retire(big)
	if got := b.Get(70 << 10); got != big {
		t.Fatal("a free block two classes bigger was not taken")
	}
	b.Retire(big)
	if got := b.Get(60 << 10); got == big {
		t.Fatal("a free block three classes bigger was taken")
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

func TestBlocksDropTheClassAskedForLeastRecently(t *testing.T) {
	b := NewBlocks(60 << 10)
	big := b.Get(48 << 10)   // a class asked for once
	small := b.Get(16 << 10) // then one asked for since
	b.Retire(big)
	_ = b.Get(4 << 10) // reclaims: big is free (48 KiB of 60)
	b.Retire(small)
	_ = b.Get(4 << 10) // small makes the oldest class's block go
	if st := b.Stats(); st.FreeBytes != 16<<10 || st.Dropped != 1 {
		t.Fatalf("free %d bytes, %d dropped; want the 48 KiB block dropped for the 16 KiB one", st.FreeBytes, st.Dropped)
	}
	if got := b.Get(16 << 10); got != small {
		t.Fatal("the block of the class asked for recently was not kept")
	}
}
