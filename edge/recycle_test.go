package edge

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/internal/mediatest"
	"github.com/rtmpedge/rtmpedge/pool"
)

// TestHubRecyclesBlocksOnlyWhenUnread publishes a stream into a hub whose
// blocks are recycled while readers copy its packets and use them after
// the lock, as flushes do, some keeping a part of a packet pinned for a
// while, as players whose socket took part of a write do. Every packet's
// payload names its sequence number and is filled with a byte derived from
// it: a block carved again too early shows as a packet with someone else's
// bytes (and, under -race, as a race between the carving and the reader).
func TestHubRecyclesBlocksOnlyWhenUnread(t *testing.T) {
	blocks := pool.NewBlocks(0)
	h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 1 << 20, Blocks: blocks})
	pub := new(int)
	if err := h.Publish(pub); err != nil {
		t.Fatal(err)
	}
	const packets = 30000
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readAndCheck(blocks.NewReader(), h, uint64(r), done, errs)
		}()
	}

	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, 0, 12000)
	// A placed message that arrives slowly: placed now, written and
	// appended 60 packets later (its chunks interleaved with others').
	var slow []byte
	var slowLayout chunk.Layout
	place := func(buf []byte, l chunk.Layout, ts uint32, payload []byte) {
		for off, p := 0, payload; len(p) > 0; off += l.Piece + l.Gap {
			k := min(len(p), l.Piece)
			copy(buf[l.Off+off:], p[:k])
			p = p[k:]
		}
		msg := chunk.Message{Header: chunk.Header{Timestamp: ts, Length: uint32(len(payload)), TypeID: chunk.TypeVideo}, Placed: buf, Layout: l}
		if err := h.AppendPlaced(pub, &msg); err != nil {
			t.Fatal(err)
		}
	}
	for i := range packets {
		switch i % 97 {
		case 0:
			slow, slowLayout = h.Place(chunk.TypeVideo, uint32(i*10), 1500)
		case 60:
			place(slow, slowLayout, uint32(i*10), mediatest.Frame(nil, h.Head(), 1500, false))
		}
		seq := h.Head()
		n := 16 + rng.IntN(3000)
		if i%40 == 0 {
			n = 9000 // a keyframe over half a block: a buffer of its own
		}
		payload = mediatest.Frame(payload[:0], seq, n, i%40 == 0)
		ts := uint32(i * 10)
		if i%3 == 0 {
			if err := h.Append(pub, chunk.TypeVideo, ts, payload); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Placed, as a chunk reader does: the payload written into the
		// packet-to-be, one piece at a time.
		buf, l := h.Place(chunk.TypeVideo, ts, len(payload))
		place(buf, l, ts, payload)
		if i%500 == 0 {
			_, _ = h.Place(chunk.TypeVideo, ts, 100) // a placement given up: its block is never reused
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	st := blocks.Stats()
	if st.Reused == 0 {
		t.Fatalf("no block was reused (%+v): the test did not exercise recycling", st)
	}
	t.Logf("blocks: %+v", st)
}

// checkPacket reports whether p's payload is the one published as seq.
func checkPacket(p *Packet, seq uint64) bool {
	if p.Kind != KindVideo {
		return true
	}
	d := p.Data[p.Body:]
	if int(p.Len) > 4096 { // over a chunk: the payload's pieces have headers between them
		d = d[:4096]
	} else {
		d = d[:p.Len]
	}
	id, ok := mediatest.ID(d)
	return ok && id == seq
}

// readAndCheck copies packets out of h until done, checks them after the
// lock and keeps one pinned across some rounds.
func readAndCheck(r *pool.Reader, h *Hub, id uint64, done <-chan struct{}, errs chan<- string) {
	rng := rand.New(rand.NewPCG(id, 9))
	var s Snapshot
	var kept Packet
	var keptSeq uint64
	keptRounds := 0
	for {
		select {
		case <-done:
			if kept.Block != nil {
				kept.Block.Unpin()
			}
			return
		default:
		}
		r.Enter()
		h.Snapshot(0, &s)
		for range rng.IntN(200) { // the writes to players take a while
			_ = rng.Uint64()
		}
		for i := range s.Packets {
			if !checkPacket(&s.Packets[i], s.Start+uint64(i)) {
				errs <- "a packet changed while a reader that copied it was in"
				r.Exit()
				return
			}
		}
		if kept.Data == nil && len(s.Packets) > 0 && rng.IntN(4) == 0 {
			i := rng.IntN(len(s.Packets))
			kept, keptSeq, keptRounds = s.Packets[i], s.Start+uint64(i), 1+rng.IntN(20)
			if kept.Block != nil {
				kept.Block.Pin() // within the flush, as a player's partial write
			}
		}
		clear(s.Packets)
		r.Exit()
		if kept.Data != nil {
			if !checkPacket(&kept, keptSeq) {
				errs <- "a pinned packet changed"
				return
			}
			if keptRounds--; keptRounds == 0 {
				if kept.Block != nil {
					kept.Block.Unpin()
				}
				kept = Packet{}
			}
		}
	}
}

// TestHubRetiresPastTheBlockBeingCarved: a stream whose packets are all
// over half a block but for a few early small ones keeps carving nothing
// from its current block; the blocks of its own behind that one are still
// retired (they were held back by it, without bound).
func TestHubRetiresPastTheBlockBeingCarved(t *testing.T) {
	blocks := pool.NewBlocks(0)
	h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 8 << 20, Blocks: blocks})
	pub := new(int)
	_ = h.Publish(pub)
	_ = h.Append(pub, chunk.TypeAudio, 0, []byte{0xaf, 1, 2, 3}) // carved: the current block
	_, _ = h.Place(chunk.TypeVideo, 0, 100)                      // a placement given up
	frame := mediatest.Frame(nil, 0, 40000, false)
	most := 0
	for i := range 3000 {
		frame[0] = 0x27
		if i%60 == 0 {
			frame[0] = 0x17
		}
		if err := h.Append(pub, chunk.TypeVideo, uint32(i*33), frame); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		most = max(most, len(h.blocks))
		h.mu.Unlock()
	}
	// A GOP is 60 frames of a block each; the list holds at most about two.
	if most > 130 {
		t.Fatalf("the hub tracked up to %d blocks (%+v)", most, blocks.Stats())
	}
	if st := blocks.Stats(); st.Reused < 2000 {
		t.Fatalf("blocks were not reused: %+v", st)
	}
}

// TestHubBoundsPlacementsGivenUp: a publisher that starts messages and
// never finishes them (aborts, half-sent messages) and sends nothing else
// cannot make the hub keep blocks without bound.
func TestHubBoundsPlacementsGivenUp(t *testing.T) {
	for _, blocks := range []*pool.Blocks{nil, pool.NewBlocks(0)} {
		h := newHub(Key{"v", "a", "s"}, Options{ChunkSize: 4096, GopCache: true, GopCacheMaxBytes: 8 << 20, Blocks: blocks})
		_ = h.Publish(new(int))
		for range 20000 {
			_, _ = h.Place(chunk.TypeVideo, 0, 5000)
		}
		h.mu.Lock()
		n := len(h.blocks)
		h.mu.Unlock()
		if n > maxAwaiting+2 {
			t.Fatalf("pool %v: the hub keeps %d blocks for placements given up", blocks != nil, n)
		}
	}
}
