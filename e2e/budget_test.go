package e2e

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// bigLength is the largest message the default max_message_size allows.
const bigLength = 8<<20 - 1

// bigMessage is a video message of bigLength chunked at 64 KiB on message
// stream 1; tests send prefixes of it.
var bigMessage = chunk.AppendMessage(nil,
	chunk.Header{CSID: 6, Length: bigLength, TypeID: chunk.TypeVideo, StreamID: 1},
	append([]byte{0x27, 1}, make([]byte, bigLength-2)...), 65536)

// holder opens a connection that handshakes, connects, raises its chunk
// size to 64 KiB and, when stream is not empty, publishes it (pipelined,
// without waiting for answers).
func holder(t *testing.T, addr, stream string) net.Conn {
	t.Helper()
	c := rawConn(t, addr, true)
	b := connectCmd(t, addr)
	if stream != "" {
		b = append(b, command(t, "createStream", 2.0, nil)...)
		body, err := amf.AppendAll(nil, "publish", 3.0, nil, stream, "live")
		if err != nil {
			t.Fatal(err)
		}
		b = chunk.AppendMessage(b, chunk.Header{CSID: 8, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0, StreamID: 1}, body, chunk.DefaultChunkSize)
	}
	b = chunk.AppendSetChunkSize(b, 65536)
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

// stillOpen reports whether the server kept c open: reads (discarding
// replies) until a short deadline passes.
func stillOpen(c net.Conn) bool {
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout()
		}
	}
}

// budgetConfig is an origin with max_inflight_bytes set to budget.
func budgetConfig(budget string) string {
	return "listen: [\"%ADDR%\"]\nmax_inflight_bytes: " + budget + "\n"
}

// canary starts an ffmpeg stream on s and a player of it, and waits until
// the player gets video.
func canary(t *testing.T, s *server) *watcher {
	t.Helper()
	publishFFmpeg(t, s.url("live/canary"), "320x240", 120)
	probeUntil(t, s.url("live/canary"), hasAV)
	w := watch(t, s.url("live/canary"))
	w.waitFrames(t, 25, 15*time.Second)
	return w
}

// checkCanary fails if the canary's video stopped for over a second since
// from, or stopped altogether.
func checkCanary(t *testing.T, w *watcher, from time.Time) {
	t.Helper()
	w.waitFrames(t, w.frames()+25, 10*time.Second)
	gap, _ := w.maxGap(from)
	t.Logf("canary: longest gap in video %s", gap.Round(time.Millisecond))
	if gap > time.Second {
		t.Errorf("canary player's longest gap %s, want at most 1s", gap)
	}
}

// TestHalfSentMessagesStayWithinMemoryBudget: 50 connections that did not
// publish announce 8 MiB - 1 messages and are refused by max_command_size
// at the first chunk; 50 publishers then each send half of such a message
// and max_inflight_bytes closes the biggest holders. A canary player keeps
// playing, peak RSS stays within 64 MB of the baseline (it was 226 MB
// before the budgets) and the file descriptors come back.
func TestHalfSentMessagesStayWithinMemoryBudget(t *testing.T) {
	s := startServerBin(t, plainServerBin, budgetConfig("24MiB"))
	w := canary(t, s)
	start := time.Now()
	baseRSS, baseFDs := s.rssKB(), s.fds()

	// Not publishing: refused at the first chunk's header.
	for i := range 50 {
		c := holder(t, s.addr, "")
		_, _ = c.Write(bigMessage[:64<<10])
		expectClosed(t, c)
		c.Close()
		if i == 0 && !s.waitLog("max_command_size", 3*time.Second) {
			t.Fatal("no log line naming max_command_size")
		}
	}

	// Publishing: each sends half of the message and holds it.
	half := len(bigMessage) / 2
	conns := make([]net.Conn, 50)
	for i := range conns {
		conns[i] = holder(t, s.addr, fmt.Sprintf("h%d", i))
		_ = conns[i].SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = conns[i].Write(bigMessage[:half]) // fails once the server closed it
	}
	open := 0
	for _, c := range conns {
		if stillOpen(c) {
			open++
		}
	}
	peak := s.peakRSSKB()
	t.Logf("50 publishers sent half of an 8 MiB - 1 message each: %d still open; RSS baseline %d KiB, peak %d KiB (+%d MiB)",
		open, baseRSS, peak, (peak-baseRSS)>>10)
	if !s.waitLog("max_inflight_bytes exceeded", 3*time.Second) {
		t.Error("no WARN line naming max_inflight_bytes")
	}
	if open == 0 || open > 6 {
		t.Errorf("%d holders of 4 MiB left open under a 24 MiB budget, want 1..6", open)
	}
	if peak-baseRSS > 64<<10 {
		t.Errorf("peak RSS %d KiB is %d MiB over the baseline %d KiB, want at most 64 MiB", peak, (peak-baseRSS)>>10, baseRSS)
	}
	checkCanary(t, w, start)

	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.fds() > baseFDs && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.fds(); n > baseFDs {
		t.Errorf("%d file descriptors after the holders closed, baseline %d", n, baseFDs)
	}
	if strings.Contains(s.log.String(), "panic") {
		t.Error("the server panicked")
	}
}

// TestInflightBudgetClosesTheBiggestHolders: under max_inflight_bytes
// 16 MiB, ten publishers hold 256 KiB each and three hold 5 MiB; when the
// third big one pushes the total over, one of the biggest is closed and
// every other connection keeps serving: the small ones complete their
// messages and stay, the canary keeps playing.
func TestInflightBudgetClosesTheBiggestHolders(t *testing.T) {
	s := startServer(t, budgetConfig("16MiB"))
	w := canary(t, s)
	start := time.Now()

	// A 1 MiB message, of which the small holders send a quarter first.
	const smallLength = 1 << 20
	small := chunk.AppendMessage(nil, chunk.Header{CSID: 6, Length: smallLength, TypeID: chunk.TypeVideo, StreamID: 1},
		append([]byte{0x27, 1}, make([]byte, smallLength-2)...), 65536)
	quarter := 12 + 4*(65536+1) // the first four 64 KiB chunks
	smalls := make([]net.Conn, 10)
	for i := range smalls {
		smalls[i] = holder(t, s.addr, fmt.Sprintf("small%d", i))
		if _, err := smalls[i].Write(small[:quarter]); err != nil {
			t.Fatal(err)
		}
	}
	fiveMiB := 12 + 80*(65536+1) // 80 chunks of 64 KiB
	bigs := make([]net.Conn, 3)
	for i := range bigs {
		bigs[i] = holder(t, s.addr, fmt.Sprintf("big%d", i))
		_ = bigs[i].SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = bigs[i].Write(bigMessage[:fiveMiB])
	}
	// The server reads the last holder's bytes at its own pace (a loaded
	// machine may take a while): its WARN line says the budget was hit.
	if !s.waitLog("max_inflight_bytes exceeded", 10*time.Second) {
		t.Error("no WARN line naming max_inflight_bytes")
	}
	closed := 0
	for i, c := range bigs {
		if !stillOpen(c) {
			closed++
			if i == 2 {
				t.Error("the newest big holder was closed although two held more")
			}
		}
	}
	if closed != 1 {
		t.Errorf("%d of the three 5 MiB holders closed, want 1", closed)
	}
	for i, c := range smalls {
		if _, err := c.Write(small[quarter:]); err != nil {
			t.Fatalf("small holder %d: completing its message: %v", i, err)
		}
	}
	for i, c := range smalls {
		if !stillOpen(c) {
			t.Errorf("small holder %d was closed", i)
		}
	}
	checkCanary(t, w, start)
}

// TestDefaultBudgetWithAThousandHalfSentMessages: with the default
// configuration, 50 publishers each holding half of an 8 MiB - 1 message
// keep peak RSS at 64 MB or less, and 1,000 of them keep the process
// within its budget (the biggest holders are closed) while a canary plays.
func TestDefaultBudgetWithAThousandHalfSentMessages(t *testing.T) {
	s := startServerBin(t, plainServerBin, "listen: [\"%ADDR%\"]\nmax_connections: 5000\n")
	w := canary(t, s)
	start := time.Now()
	baseRSS := s.rssKB()
	half := len(bigMessage) / 2
	hold := func(from, to int) {
		for i := from; i < to; i++ {
			c := holder(t, s.addr, fmt.Sprintf("d%d", i))
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write(bigMessage[:half]) // fails once the server closed it
		}
	}
	hold(0, 50)
	time.Sleep(time.Second)
	peak50 := s.peakRSSKB()
	hold(50, 1000)
	time.Sleep(time.Second)
	peak := s.peakRSSKB()
	t.Logf("default budget: RSS baseline %d KiB; peak %d KiB with 50 holders, %d KiB with 1,000", baseRSS, peak50, peak)
	if peak50 > 64<<10 {
		t.Errorf("peak RSS %d KiB with 50 holders, want at most 64 MB", peak50)
	}
	// Twice the 16 MiB budget (the GC's lag and buffer growth), the
	// baseline and room for a thousand connections' own state.
	if peak > baseRSS+64<<10 {
		t.Errorf("peak RSS %d KiB with 1,000 holders, baseline %d KiB: over the budget's bound", peak, baseRSS)
	}
	checkCanary(t, w, start)
}
