package loop

import (
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/internal/mediatest"
)

// TestPlayersGetIntactBytesFromRecycledBlocks streams 3,000 frames, copied
// and placed, to three players whose sockets take little at a time (their
// writes are cut short inside packets all the while), one pausing and
// resuming, one leaving, while the stream's blocks are recycled: every
// message each player reads back must carry its own bytes. It fails when a
// player's partly sent packet is not pinned (its block is carved again
// under the rest of the write).
func TestPlayersGetIntactBytesFromRecycledBlocks(t *testing.T) {
	ft := newFanoutTest(t, 3, 0, 50*time.Second, 100*time.Second)
	for _, c := range ft.conns {
		_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<10)
	}
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	rng := rand.New(rand.NewPCG(3, 4))
	got := make([][]byte, len(ft.conns))
	buf := make([]byte, 1<<16)
	now := time.Now()
	ts := uint32(0)
	for i := 0; i < 3000; i++ {
		n := 20 + rng.IntN(6000)
		key := i%25 == 0
		if key {
			n = 12000
		}
		if i%2 == 0 {
			_ = ft.hub.Append(ft.pub, chunk.TypeVideo, ts, mediatest.Frame(nil, uint64(i), n, key))
		} else {
			p := mediatest.Frame(nil, uint64(i), n, key)
			b, l := ft.hub.Place(chunk.TypeVideo, ts, len(p))
			for off, q := 0, p; len(q) > 0; off += l.Piece + l.Gap {
				k := min(len(q), l.Piece)
				copy(b[l.Off+off:], q[:k])
				q = q[k:]
			}
			msg := chunk.Message{Header: chunk.Header{Timestamp: ts, Length: uint32(len(p)), TypeID: chunk.TypeVideo}, Placed: b, Layout: l}
			_ = ft.hub.AppendPlaced(ft.pub, &msg)
		}
		ts += 40
		switch {
		case i%300 == 150:
			ft.srv.pause(ft.conns[2].ss, true)
		case i%300 == 0:
			ft.srv.pause(ft.conns[2].ss, false)
		}
		if i == 2000 {
			_ = ft.conns[1].Close()
		}
		ft.g.flush(now)
		for j, c := range ft.conns {
			if rng.IntN(3) == 0 {
				if m, _ := unix.Read(c.peer, buf[:1+rng.IntN(20000)]); m > 0 {
					got[j] = append(got[j], buf[:m]...)
				}
			}
		}
	}
	if st := ft.srv.blocks.Stats(); st.Reused == 0 {
		t.Fatalf("no block was reused (%+v): the test did not exercise recycling", st)
	}
	for j := range ft.conns {
		for range 100000 {
			ft.g.flush(now)
			m, _ := unix.Read(ft.conns[j].peer, buf)
			if m <= 0 {
				p := ft.conns[j].ss.player
				if p == nil || len(p.pending) == 0 && p.cursor == ft.hub.Head() {
					break
				}
				continue
			}
			got[j] = append(got[j], buf[:m]...)
		}
		rd := chunk.NewReader(chunk.ReaderConfig{MaxMessageSize: 1 << 20})
		_, _, _ = rd.Read(chunk.AppendSetChunkSize(nil, 4096))
		g := got[j]
		msgs := 0
		for len(g) > 0 {
			n, msg, err := rd.Read(g)
			if err != nil {
				t.Fatalf("player %d: %v after %d messages", j, err, msgs)
			}
			g = g[n:]
			if msg == nil {
				break
			}
			msgs++
			if msg.TypeID != chunk.TypeVideo || len(msg.Payload) < 13 {
				continue
			}
			if id, ok := mediatest.ID(msg.Payload); !ok {
				t.Fatalf("player %d: message %d (id %d) corrupted", j, msgs, id)
			}
		}
		if msgs < 100 {
			t.Fatalf("player %d read back only %d messages", j, msgs)
		}
	}
}
