package loop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// testConn is the gnet.Conn of a test player: one end of a real socket pair
// (the fan-out writes to its fd), the other end read by the test. Close
// behaves as gnet's does when a write fails inside a flush at worst: it
// runs OnClose (here: the session's close) at once.
type testConn struct {
	gnet.Conn
	fd, peer int
	srv      *Server
	ss       *session
	closed   bool
}

func (c *testConn) Fd() int               { return c.fd }
func (c *testConn) OutboundBuffered() int { return 0 }
func (c *testConn) Write(b []byte) (int, error) {
	return unix.Write(c.fd, b)
}
func (c *testConn) Close() error {
	if !c.closed {
		c.closed = true
		c.ss.gone = true
		c.srv.leave(c.ss)
	}
	return nil
}

// read drains what the player was sent and returns the byte count.
func (c *testConn) read(t testing.TB) int {
	t.Helper()
	total := 0
	buf := make([]byte, 1<<16)
	for {
		n, err := unix.Read(c.peer, buf)
		if errors.Is(err, unix.EAGAIN) || n == 0 {
			return total
		}
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
}

// testLoop runs nothing: the tests flush by hand.
type testLoop struct{ gnet.EventLoop }

func (testLoop) Execute(context.Context, gnet.Runnable) error { return nil }

type fanoutTest struct {
	srv   *Server
	hub   *edge.Hub
	g     *group
	pub   any
	conns []*testConn
	ts    uint32
}

// newFanoutTest makes a stream with a publisher and players on one group,
// with the given merged-write window, backlog and lag limit.
func newFanoutTest(t testing.TB, players int, window, backlog, lagLimit time.Duration) *fanoutTest {
	cfg, err := conf.Default()
	if err != nil {
		t.Fatal(err)
	}
	v := *cfg.Vhosts[conf.DefaultVhost]
	v.MergedWrite, v.PlayerBacklog, v.PlayerLagTimeout = window, backlog, lagLimit
	srv := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hub := srv.hubs.Acquire(edge.Key{Vhost: "v", App: "a", Stream: "s"}, srv.hubOptions(&v))
	ft := &fanoutTest{srv: srv, hub: hub, pub: new(int)}
	if err := hub.Publish(ft.pub); err != nil {
		t.Fatal(err)
	}
	ft.g = newGroup(srv, groupKey{hub: hub, loop: testLoop{}}, &v)
	srv.groups[ft.g.key] = ft.g
	hub.AddWaker(ft.g)
	for range players {
		ft.addPlayer(t)
	}
	return ft
}

func (ft *fanoutTest) addPlayer(t testing.TB) *testConn {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	c := &testConn{fd: fds[0], peer: fds[1], srv: ft.srv}
	ss := &session{srv: ft.srv, c: c, log: ft.srv.log, hub: ft.hub}
	c.ss = ss
	cursor, waitKey := ft.hub.Join()
	g := ft.g
	p := &player{ss: ss, group: g, fd: c.fd, cursor: cursor, waitKey: waitKey, needHeaders: true, due: true, drained: true, seq: g.nextSeq}
	g.nextSeq++
	ss.player = p
	ft.hub.AddPlayers(1)
	ft.srv.players.Add(1)
	g.players = append(g.players, p)
	g.need.Store(min(g.need.Load(), cursor))
	ft.conns = append(ft.conns, c)
	return c
}

// countWrites reads every player's socket, counts in writes[i] the
// players that got something and returns how many did.
func (ft *fanoutTest) countWrites(t testing.TB, writes []int) int {
	n := 0
	for j, c := range ft.conns {
		if c.read(t) > 0 {
			writes[j]++
			n++
		}
	}
	return n
}

var (
	seqHeader  = []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}
	keyFrame   = append([]byte{0x17, 1, 0, 0, 0}, make([]byte, 20000)...)
	interFrame = append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 4000)...)
	audioFrame = append([]byte{0xaf, 1}, make([]byte, 300)...)
)

// frame appends one video frame 40 ms after the previous one (a keyframe
// every 25 frames) and an audio frame.
func (ft *fanoutTest) frame(t testing.TB, i int) {
	t.Helper()
	f := interFrame
	if i%25 == 0 {
		f = keyFrame
	}
	if err := ft.hub.Append(ft.pub, chunk.TypeVideo, ft.ts, f); err != nil {
		t.Fatal(err)
	}
	if err := ft.hub.Append(ft.pub, chunk.TypeAudio, ft.ts+5, audioFrame); err != nil {
		t.Fatal(err)
	}
	ft.ts += 40
}

func TestFlushSendsEveryPlayerTheSameBytes(t *testing.T) {
	ft := newFanoutTest(t, 3, 0, 5*time.Second, 10*time.Second)
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	ft.frame(t, 0)
	ft.g.flush(time.Now())
	first := ft.conns[0].read(t)
	if first == 0 {
		t.Fatal("player 0 got nothing")
	}
	for i, c := range ft.conns[1:] {
		if n := c.read(t); n != first {
			t.Fatalf("player %d got %d bytes, player 0 %d", i+1, n, first)
		}
	}
}

// A player closed inside a flush (gnet may run OnClose within a write) must
// not leave a hole in the group: the cause of the crash under
// connect/play/RST churn.
func TestPlayersClosingDuringAFlush(t *testing.T) {
	ft := newFanoutTest(t, 6, 0, 5*time.Second, 10*time.Second)
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	ft.frame(t, 0)
	// Players 1 and 3 are reset by their peer: the write fails, Close runs
	// OnClose inline and the player leaves while the flush goes on.
	for _, i := range []int{1, 3} {
		unix.Close(ft.conns[i].peer)
		ft.conns[i].peer = -1
	}
	ft.g.flush(time.Now())
	if len(ft.g.players) != 4 {
		t.Fatalf("%d players in the group after two closed, want 4", len(ft.g.players))
	}
	for _, p := range ft.g.players {
		if p == nil || p.gone {
			t.Fatal("a closed player is still in the group")
		}
	}
	ft.frame(t, 1)
	ft.g.flush(time.Now())
	for _, i := range []int{0, 2, 4, 5} {
		if ft.conns[i].read(t) == 0 {
			t.Fatalf("player %d got nothing", i)
		}
	}
	// Every player leaving empties and unregisters the group.
	for _, i := range []int{0, 2, 4, 5} {
		_ = ft.conns[i].Close()
	}
	if len(ft.srv.groups) != 0 || ft.hub.Players() != 0 || ft.srv.players.Load() != 0 {
		t.Fatalf("groups %d, hub players %d, server players %d after all left", len(ft.srv.groups), ft.hub.Players(), ft.srv.players.Load())
	}
}

// A player that does not read holds no copy of the stream: what its socket
// does not take stays in the hub's shared packets; past its backlog it is
// skipped to a keyframe and past the lag limit disconnected.
func TestNonReadingPlayer(t *testing.T) {
	ft := newFanoutTest(t, 2, 0, time.Second, 500*time.Millisecond)
	stalled, reader := ft.conns[0], ft.conns[1]
	_ = unix.SetsockoptInt(stalled.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10)
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	p := ft.g.players[0]
	start := time.Now()
	var skipped bool
	for i := 0; i < 200; i++ { // 8 s of media
		ft.frame(t, i)
		now := start.Add(time.Duration(i) * 40 * time.Millisecond)
		ft.g.flush(now)
		reader.read(t)
		for _, b := range p.pending {
			if len(b) > len(keyFrame)+64 {
				t.Fatalf("pending buffer of %d bytes: not a slice of one packet", len(b))
			}
		}
		if p.skips > 0 {
			skipped = true
		}
		if p.closing {
			break
		}
	}
	if !skipped {
		t.Fatal("the stalled player was never skipped forward")
	}
	if !p.closing || !stalled.closed {
		t.Fatal("the stalled player was not disconnected after the lag limit")
	}
	if r := stalled.ss.reason.Load(); r == nil || *r == "" {
		t.Fatal("no close reason recorded")
	}
	// The reader is unaffected and keeps getting media.
	ft.frame(t, 1000)
	ft.g.flush(start.Add(time.Minute))
	if reader.read(t) == 0 {
		t.Fatal("the reading player got nothing")
	}
}

// A player that reads slowly but within its backlog keeps its place: the
// hub keeps the packets it still needs, and it gets every byte in order.
func TestSlowPlayerWithinBacklogGetsEverything(t *testing.T) {
	ft := newFanoutTest(t, 1, 0, 5*time.Second, 10*time.Second)
	slow := ft.conns[0]
	_ = unix.SetsockoptInt(slow.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<10)
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	var got []byte
	buf := make([]byte, 4096)
	now := time.Now()
	for i := 0; i < 50; i++ { // 2 s of media; the player reads at most 4 KiB per frame
		ft.frame(t, i)
		ft.g.flush(now)
		if n, _ := unix.Read(slow.peer, buf); n > 0 {
			got = append(got, buf[:n]...)
		}
	}
	p := ft.g.players[0]
	if p.skips != 0 {
		t.Fatalf("player within its backlog was skipped %d times", p.skips)
	}
	for range 10000 { // then it reads everything
		ft.g.flush(now)
		n, _ := unix.Read(slow.peer, buf)
		if n <= 0 && len(p.pending) == 0 && p.cursor == ft.g.key.hub.Head() {
			break
		}
		got = append(got, buf[:max(n, 0)]...)
	}
	// The bytes parse as the whole stream: every message, in order.
	rd := chunk.NewReader(chunk.ReaderConfig{MaxMessageSize: 1 << 20})
	if _, msg, err := rd.Read(chunk.AppendSetChunkSize(nil, 4096)); err != nil || msg == nil {
		t.Fatal("set chunk size", err)
	}
	videos, audios := 0, 0
	for len(got) > 0 {
		n, msg, err := rd.Read(got)
		if err != nil {
			t.Fatal(err)
		}
		got = got[n:]
		if msg == nil {
			break
		}
		switch msg.TypeID {
		case chunk.TypeVideo:
			videos++
		case chunk.TypeAudio:
			audios++
		}
	}
	if videos != 51 || audios != 50 { // the sequence header and 50 frames
		t.Fatalf("got %d video and %d audio messages, want 51 and 50", videos, audios)
	}
}

// With merged writes the players are spread over the window: each flush
// writes a slice of them, each player once per window.
func TestPacedWritesSpreadPlayersOverTheWindow(t *testing.T) {
	const players = 28
	ft := newFanoutTest(t, players, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	ft.srv.paceBurst.Store(50_000) // bytes per slot: 14 slots for 28 players at 1 Mbit/s
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	for i := range 30 { // a second of media at about 1 Mbit/s, so the hub knows the bit rate
		ft.frame(t, i)
	}
	start := time.UnixMilli(time.Now().UnixMilli() / 350 * 350)
	ft.g.flush(start) // the joiners' first write, all at once
	if want := slicesFor(players, ft.hub.BitRate(), 350, 50_000); ft.g.slices != want || want < 10 {
		t.Fatalf("%d slices for 350ms at %d bit/s, want %d (and at least 10)", ft.g.slices, ft.hub.BitRate(), want)
	}
	for _, c := range ft.conns {
		c.read(t)
	}
	if ft.g.paced.Load() {
		t.Fatal("a paced flush was armed with every player served")
	}
	writes := make([]int, players)
	now := start
	for i := 1; i <= 3*ft.g.slices; i++ {
		if i%3 == 1 { // media about as fast as real time
			ft.frame(t, 30+i/3)
		}
		now = now.Add(time.Duration(ft.g.untilNextSlot(now.UnixMilli())) * time.Millisecond)
		ft.g.flush(now)
		busy := ft.countWrites(t, writes)
		if busy > (players+ft.g.slices-1)/ft.g.slices {
			t.Fatalf("flush %d wrote %d of %d players at once (%d slots of %d ms)", i, busy, players, ft.g.slices, ft.g.slice)
		}
	}
	for j, w := range writes {
		if w != 3 {
			t.Fatalf("player %d was written %d times in 3 windows, want 3", j, w)
		}
	}
}

// A publisher sending faster than real time (ffmpeg without -re) does not
// make players that keep up look behind: each gets everything it is owed.
func TestPlayersKeepUpWithAFasterThanRealTimeStream(t *testing.T) {
	ft := newFanoutTest(t, 1, 350*time.Millisecond, time.Second, 10*time.Second)
	_ = ft.hub.Append(ft.pub, chunk.TypeAudio, 0, []byte{0xaf, 0, 0x12, 0x10})
	start := time.Now()
	for i := 0; i < 40; i++ {
		for j := range 20 { // 460 ms of audio every 25 ms of wall time
			_ = ft.hub.Append(ft.pub, chunk.TypeAudio, uint32((i*20+j)*23), audioFrame)
		}
		ft.g.flush(start.Add(time.Duration(i) * 25 * time.Millisecond))
		ft.conns[0].read(t)
	}
	p := ft.g.players[0]
	if p.skips != 0 || p.cursor+14*20 < ft.hub.Head() {
		t.Fatalf("player skipped %d times, at %d of %d packets", p.skips, p.cursor, ft.hub.Head())
	}
}

// BenchmarkFanOut measures one stream's steady state: a publisher appends
// messages and flushes write them to 500 players over real sockets.
// Allocations per op are per message; the goal is none.
func BenchmarkFanOut(b *testing.B) {
	for _, window := range []time.Duration{0, 350 * time.Millisecond} {
		b.Run("window="+window.String(), func(b *testing.B) {
			ft := newFanoutTest(b, 500, window, 5*time.Second, 10*time.Second)
			for _, c := range ft.conns {
				_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
			}
			_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
			ft.frame(b, 0)
			ft.g.flush(time.Now())
			b.ReportAllocs()
			b.SetBytes(int64((len(interFrame) + len(audioFrame)) * len(ft.conns)))
			now := time.Now()
			i := 0
			for b.Loop() {
				i++
				ft.frame(b, i)
				now = now.Add(40 * time.Millisecond) // media time and wall time go together
				ft.g.flush(now)
				if i%8 == 0 {
					b.StopTimer()
					for _, c := range ft.conns {
						c.read(b)
					}
					b.StartTimer()
				}
			}
		})
	}
}

// A group uses as few slots as keep one slot's burst within the budget.
func TestSlicesForBoundsTheBurstOfASlot(t *testing.T) {
	for _, c := range []struct {
		players int
		bitRate int64
		window  uint32
		burst   int64
		want    int
	}{
		{1, 1_000_000, 350, 1 << 20, 1},       // 44 KB a window: one slot
		{100, 1_000_000, 350, 1 << 20, 5},     // 4.4 MB: five slots of 1 MiB
		{400, 1_160_000, 350, 1_250_000, 17},  // 20.3 MB
		{10_000, 8_000_000, 350, 1 << 20, 64}, // more than the most slots
		{10_000, 8_000_000, 100, 1 << 20, 20}, // slots of at least 5 ms
		{500, 1_000_000, 350, 0, 64},          // no budget: the most slots
		{0, 1_000_000, 350, 1 << 20, 1},       // no players
		{500, 0, 350, 1 << 20, 1},             // bit rate not known yet
	} {
		if got := slicesFor(c.players, c.bitRate, c.window, c.burst); got != c.want {
			t.Errorf("slicesFor(%d players, %d bit/s, %d ms, %d B) = %d, want %d", c.players, c.bitRate, c.window, c.burst, got, c.want)
		}
	}
}

// A player whose write the kernel cut short, but who took something, is
// written again at the next flush, before its slot comes round; one that
// took nothing waits for its slot.
func TestCutShortWritesAreRetriedBeforeTheSlot(t *testing.T) {
	ft := newFanoutTest(t, 2, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	ft.srv.paceBurst.Store(1) // the most slots: the two players are in different ones
	slow, stuck := ft.conns[0], ft.conns[1]
	_ = unix.SetsockoptInt(slow.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<10)
	_ = unix.SetsockoptInt(stuck.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<10)
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	for i := range 10 {
		ft.frame(t, i)
	}
	now := time.Now()
	ft.g.flush(now) // the joiners' first write: more than either socket takes
	ps, pk := ft.g.players[0], ft.g.players[1]
	if ps.drained || pk.drained || !ps.due || !ft.g.retry {
		t.Fatalf("after a cut-short first write: drained %v/%v, due %v, retry %v", ps.drained, pk.drained, ps.due, ft.g.retry)
	}
	// The slow player reads; the stuck one does not.
	got := slow.read(t)
	for range 50 {
		now = now.Add(retryDelay)
		ft.g.flush(now)
		n := slow.read(t)
		got += n
		if ps.drained {
			break
		}
		if n == 0 {
			t.Fatalf("a retry of the slow player wrote nothing (due %v)", ps.due)
		}
	}
	if !ps.drained {
		t.Fatal("the slow player never caught up through retries")
	}
	if pk.due {
		t.Fatal("the stuck player, which took nothing more, is still retried at every flush")
	}
	if got < 10*len(interFrame) {
		t.Fatalf("the slow player got %d bytes", got)
	}
}

// A player that took everything and got nothing at its slot (the media came
// just after) is written as soon as a window has passed since its last
// write, not a window later.
func TestPlayerThatMissedItsSlotIsWrittenWhenAWindowPassed(t *testing.T) {
	ft := newFanoutTest(t, 1, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	c := ft.conns[0]
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	ft.frame(t, 0)
	start := time.UnixMilli(time.Now().UnixMilli() / 350 * 350)
	ft.g.flush(start)
	c.read(t)
	p := ft.g.players[0]
	p.lastWrite = start.UnixMilli()
	// Its slot comes round with nothing new: nothing is written.
	ft.g.flush(start.Add(350 * time.Millisecond))
	if c.read(t) != 0 {
		t.Fatal("written with nothing new")
	}
	// Media comes 20 ms after the slot: the next flush writes it.
	ft.frame(t, 1)
	ft.g.flush(start.Add(370 * time.Millisecond))
	if c.read(t) == 0 {
		t.Fatal("media that missed the slot waits for the next window")
	}
}

// An FLV player that reads slowly gets every message as a whole FLV tag, in
// order, whatever writes the kernel cut short in the middle of a tag: its
// backlog is slices of the shared chunks, as for RTMP players.
func TestSlowFLVPlayerGetsWholeTags(t *testing.T) {
	for _, f := range []format{formatFLV, formatWebSocket} {
		ft := newFanoutTest(t, 1, 0, 5*time.Second, 10*time.Second)
		slow := ft.conns[0]
		ft.g.players[0].format = f
		_ = unix.SetsockoptInt(slow.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<10)
		_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
		ft.hub.Notify(chunk.AppendUserControl(nil, chunk.EventStreamBegin, 1)) // RTMP only: FLV players skip it
		var got []byte
		buf := make([]byte, 3000)
		now := time.Now()
		for i := 0; i < 50; i++ {
			ft.frame(t, i)
			ft.g.flush(now)
			if n, _ := unix.Read(slow.peer, buf); n > 0 {
				got = append(got, buf[:n]...)
			}
		}
		p := ft.g.players[0]
		for range 10000 {
			ft.g.flush(now)
			n, _ := unix.Read(slow.peer, buf)
			if n <= 0 && len(p.pending) == 0 && p.cursor == ft.g.key.hub.Head() {
				break
			}
			got = append(got, buf[:max(n, 0)]...)
		}
		videos, audios := 0, 0
		for len(got) > 0 {
			if f == formatWebSocket {
				if got[0] != 0x82 {
					t.Fatalf("format %d: frame starts with %#x", f, got[0])
				}
				n, hl := int(got[1]), 2
				switch n {
				case 126:
					n, hl = int(got[2])<<8|int(got[3]), 4
				case 127:
					t.Fatal("64-bit frame length for a small tag")
				}
				if n != 11+(int(got[hl+1])<<16|int(got[hl+2])<<8|int(got[hl+3]))+4 {
					t.Fatalf("frame of %d bytes does not hold exactly one tag", n)
				}
				got = got[hl:]
			}
			if len(got) < 15 {
				t.Fatalf("format %d: %d stray bytes", f, len(got))
			}
			size := int(got[1])<<16 | int(got[2])<<8 | int(got[3])
			prev := int(got[11+size])<<24 | int(got[12+size])<<16 | int(got[13+size])<<8 | int(got[14+size])
			if prev != 11+size {
				t.Fatalf("format %d: tag of %d bytes has PreviousTagSize %d", f, size, prev)
			}
			switch got[0] {
			case 9:
				videos++
			case 8:
				audios++
			default:
				t.Fatalf("format %d: tag type %d", f, got[0])
			}
			got = got[15+size:]
		}
		if videos != 51 || audios != 50 { // the sequence header and 50 frames
			t.Fatalf("format %d: got %d video and %d audio tags, want 51 and 50", f, videos, audios)
		}
	}
}

// A reload reaches a running group at its next flush: merged_write and the
// backlog limits change without the players noticing.
func TestReloadReachesGroupsAtTheNextFlush(t *testing.T) {
	ft := newFanoutTest(t, 2, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	ft.frame(t, 0)
	ft.g.flush(time.Now())
	if ft.g.window != 350 || !ft.g.merged.Load() {
		t.Fatalf("window %d before the reload", ft.g.window)
	}
	cfg, err := conf.Parse([]byte("vhost_defaults: {merged_write: 0s, player_backlog: 2s, player_lag_timeout: 3s}"), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	ft.srv.cfg.Store(cfg)
	before := ft.conns[0].read(t)
	ft.frame(t, 1)
	ft.g.flush(time.Now())
	if ft.g.window != 0 || ft.g.merged.Load() || ft.g.backlog != 2*time.Second || ft.g.lagLimit != 3*time.Second {
		t.Fatalf("after the reload: window %d, merged %v, backlog %s, lag limit %s", ft.g.window, ft.g.merged.Load(), ft.g.backlog, ft.g.lagLimit)
	}
	if n := ft.conns[0].read(t); n == 0 || before == 0 {
		t.Fatalf("players got %d then %d bytes", before, n)
	}
	// And back to merged writes: paced again, on the loop's clock.
	cfg2, err := conf.Parse([]byte("vhost_defaults: {merged_write: 200ms}"), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	ft.srv.cfg.Store(cfg2)
	ft.frame(t, 2)
	ft.g.flush(time.Now())
	if ft.g.window != 200 || !ft.g.merged.Load() {
		t.Fatalf("window %d, merged %v", ft.g.window, ft.g.merged.Load())
	}
}

// The paced flushes of every stream on a loop run from the loop's clock:
// one timer for all of them, and groups due at the same slot flushed in
// one tick.
func TestLoopClockFlushesEveryDueStream(t *testing.T) {
	a := newFanoutTest(t, 1, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	b := newFanoutTest(t, 1, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	// b's stream on a's server and loop.
	b.srv = a.srv
	b.g = newGroup(a.srv, groupKey{hub: b.hub, loop: testLoop{}}, &conf.Vhost{MergedWrite: 350 * time.Millisecond, PlayerBacklog: 5 * time.Second})
	b.g.players, b.g.nextSeq = nil, 0
	b.hub.AddWaker(b.g)
	b.conns = nil
	b.addPlayer(t)
	ls := a.srv.loopStateOf(testLoop{})
	if a.g.ls != ls || b.g.ls != ls {
		t.Fatal("the groups of one loop do not share its state")
	}
	now := time.Now()
	for _, ft := range []*fanoutTest{a, b} {
		_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
		ft.frame(t, 0)
		ft.g.flush(now) // the joiner's first write
		ft.conns[0].read(t)
		ft.frame(t, 1)
		ft.g.flush(now) // in the same slot: the player waits for the next
	}
	if len(ls.timed) != 2 || a.g.due == 0 || a.g.due != b.g.due {
		t.Fatalf("%d paced flushes on the clock (due %d and %d), want both at the next slot", len(ls.timed), a.g.due, b.g.due)
	}
	time.Sleep(time.Until(time.Unix(0, a.g.due)) + time.Millisecond)
	_ = ls.Run(context.Background())
	for i, ft := range []*fanoutTest{a, b} {
		if ft.conns[0].read(t) == 0 {
			t.Fatalf("stream %d: the clock's tick did not flush its player", i)
		}
	}
	if len(ls.timed) != 0 {
		t.Fatalf("%d paced flushes left with every player served", len(ls.timed))
	}
}

// Downstream edges (their connect carried srs_sig) are written every
// quarter of merged_write, in a group of their own; players of the same
// stream keep the whole window, and merged_write 0 stays 0 for both.
func TestEdgesAreWrittenEveryQuarterWindow(t *testing.T) {
	ft := newFanoutTest(t, 1, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	v := conf.Vhost{MergedWrite: 350 * time.Millisecond, PlayerBacklog: 5 * time.Second}
	edges := newGroup(ft.srv, groupKey{hub: ft.hub, loop: testLoop{}, edges: true}, &v)
	if edges.window != 87 || !edges.merged.Load() {
		t.Fatalf("edges' window %d ms (merged %v), want 87", edges.window, edges.merged.Load())
	}
	if ft.g.window != 350 {
		t.Fatalf("players' window %d ms, want 350", ft.g.window)
	}
	v.MergedWrite = time.Second
	edges.apply(&v)
	if edges.window != 100 {
		t.Fatalf("edges' window %d ms for merged_write 1s, want 100 (batchMaxWindow)", edges.window)
	}
	v.MergedWrite = 0
	edges.apply(&v)
	if edges.window != 0 || edges.merged.Load() {
		t.Fatalf("edges' window %d ms for merged_write 0", edges.window)
	}
}

// A busy box (egress estimate at capacity.busy_load of the link) writes
// its players in half windows, spread over the slots as before: the switch
// writes nobody early, and edges downstream keep their quarter window.
func TestBusyLinkHalvesPlayersWindows(t *testing.T) {
	const players = 28
	ft := newFanoutTest(t, players, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	v := conf.Vhost{MergedWrite: 350 * time.Millisecond, PlayerBacklog: 5 * time.Second}
	edges := newGroup(ft.srv, groupKey{hub: ft.hub, loop: testLoop{}, edges: true}, &v)
	ft.srv.paceBurst.Store(50_000)
	_ = ft.hub.Append(ft.pub, chunk.TypeVideo, 0, seqHeader)
	for i := range 30 { // so that the hub knows the bit rate
		ft.frame(t, i)
	}
	start := time.UnixMilli(time.Now().UnixMilli() / 350 * 350)
	ft.g.flush(start) // the joiners' first write, all at once
	writes := make([]int, players)
	ft.countWrites(t, writes)
	// A window at 350 ms: each player written at its slot.
	last := make([]time.Time, players) // each player's last write before the switch
	now, frame := start, 30
	step := func() int { // the next slot, with new media for it
		now = now.Add(time.Duration(ft.g.untilNextSlot(now.UnixMilli())) * time.Millisecond)
		ft.frame(t, frame)
		frame++
		ft.g.flush(now)
		before := slices.Clone(writes)
		n := ft.countWrites(t, writes)
		for j := range writes {
			if writes[j] > before[j] && !ft.srv.busy.Load() {
				last[j] = now
			}
		}
		return n
	}
	for range ft.g.slices {
		step()
	}
	oldSlots := ft.g.slices

	egress := int64(players) * wireRate(ft.hub)
	capacity := &ft.srv.config().Capacity
	capacity.BusyLoad = 0.8
	capacity.Link = conf.BitRate(egress * 10 / 7) // load 0.7
	ft.srv.lastStall.Store(time.Now().UnixNano())
	ft.srv.updateBusy(time.Now())
	if ft.srv.busy.Load() {
		t.Fatalf("busy at 70%% of the link (egress %d bit/s)", egress)
	}
	capacity.Link = conf.BitRate(egress * 10 / 9) // 0.9
	ft.srv.lastStall.Store(0)
	ft.srv.updateBusy(time.Now())
	if ft.srv.busy.Load() {
		t.Fatal("busy at 90% of the link without a stalled write")
	}
	ft.srv.lastStall.Store(time.Now().UnixNano()) // the box's queue stalled a write
	ft.srv.updateBusy(time.Now())
	if !ft.srv.busy.Load() || ft.srv.egress.Load() != egress {
		t.Fatalf("busy %v at 90%% of the link, egress estimate %d, want %d", ft.srv.busy.Load(), ft.srv.egress.Load(), egress)
	}

	// The switch: half windows from the next flush on. Nobody waits longer
	// than the old window plus a slot, and no flush writes more than a
	// slot of each cadence.
	edges.flush(now)
	before := slices.Clone(writes)
	most := (players+oldSlots-1)/oldSlots + players // bound until the new slots are known
	for i := 0; i < 3*oldSlots; i++ {
		n := step()
		if ft.g.window != 175 || edges.window != 87 {
			t.Fatalf("busy: players' window %d ms, edges' %d ms, want 175 and 87", ft.g.window, edges.window)
		}
		most = (players+oldSlots-1)/oldSlots + (players+ft.g.slices-1)/ft.g.slices
		if n > most {
			t.Fatalf("flush %d after the switch wrote %d players at once, want at most %d (%d slots, %d before)", i, n, most, ft.g.slices, oldSlots)
		}
		for j := range writes {
			if writes[j] == before[j] && now.Sub(last[j]) > 350*time.Millisecond+time.Duration(ft.g.slice)*time.Millisecond {
				t.Fatalf("player %d not written for %v after the switch (last %v before it)", j, now.Sub(last[j]), last[j].Sub(start))
			}
		}
	}
	for j := range writes {
		if writes[j]-before[j] < 2 {
			t.Fatalf("player %d written %d times in 3 old slots' worth of half windows", j, writes[j]-before[j])
		}
	}

	// The estimate followed the frames sent since.
	egress = int64(players) * wireRate(ft.hub)
	capacity.Link = conf.BitRate(egress * 10 / 8) // 0.8 x 0.9 = 0.72 < 0.8: still busy
	ft.srv.updateBusy(time.Now().Add(30 * time.Second))
	if !ft.srv.busy.Load() {
		t.Fatal("no longer busy within the hysteresis, 30 s after a stalled write")
	}
	ft.srv.updateBusy(time.Now().Add(stallForget + time.Second))
	if ft.srv.busy.Load() {
		t.Fatal("still busy a minute after the last stalled write")
	}
	ft.srv.updateBusy(time.Now())
	if !ft.srv.busy.Load() {
		t.Fatal("not busy again")
	}
	capacity.Link = conf.BitRate(egress * 2) // 0.5
	ft.srv.updateBusy(time.Now())
	ft.g.flush(now.Add(time.Millisecond))
	if ft.srv.busy.Load() || ft.g.window != 350 {
		t.Fatalf("at half the link: busy %v, window %d ms, want 350", ft.srv.busy.Load(), ft.g.window)
	}
	capacity.BusyLoad = 0 // never busy
	capacity.Link = conf.BitRate(egress)
	ft.srv.updateBusy(time.Now())
	if ft.srv.busy.Load() {
		t.Fatal("busy with busy_load 0")
	}
}

// max_egress counts what players cost the link: the stream's bit rate with
// its RTMP chunk headers, in Ethernet frames (4.6% more than the bytes).
func TestMaxEgressCountsWireBytes(t *testing.T) {
	const players = 10
	ft := newFanoutTest(t, players, 350*time.Millisecond, 5*time.Second, 10*time.Second)
	for i := range 25 * 8 { // eight 1 s GOPs
		ft.frame(t, i)
	}
	media, msgs := ft.hub.BitRate(), ft.hub.MessageRate()
	if media == 0 || msgs != 50 {
		t.Fatalf("bit rate %d, %d messages/s; want > 0 and 50", media, msgs)
	}
	perPlayer := (media + msgs*12*8) * 1514 / 1448
	if got := wireRate(ft.hub); got != perPlayer {
		t.Fatalf("wire rate %d bit/s, want %d (%d bit/s of media)", got, perPlayer, media)
	}
	capacity := &ft.srv.config().Capacity
	capacity.MaxEgress = conf.BitRate((players + 1) * perPlayer)
	if limit := ft.srv.overCapacity(ft.hub); limit != "" {
		t.Fatalf("an 11th player refused at exactly max_egress: %s", limit)
	}
	// Enough for 11 players' media, not for their frames on the wire.
	capacity.MaxEgress = conf.BitRate((players + 1) * (media + perPlayer) / 2)
	if limit := ft.srv.overCapacity(ft.hub); !strings.HasPrefix(limit, "max_egress") {
		t.Fatalf("an 11th player over max_egress on the wire: %q, want a max_egress refusal", limit)
	}
	if got := ft.srv.egressEstimate(); got != players*perPlayer {
		t.Fatalf("egress estimate %d, want %d", got, players*perPlayer)
	}
}
