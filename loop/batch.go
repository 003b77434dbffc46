package loop

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtmpedge/rtmpedge/conf"
)

// Batched reads. A publisher sends a message every 15-30 ms (video frames,
// audio between them), and each one woke its event loop for one read: with
// 30 publishers, 2,200 wake-ups and reads a second, whose cost (the thread
// switch, epoll, the runtime's scheduling) was most of an origin's CPU and
// 1.7x nginx-rtmp's. A publisher of a vhost with merged writes is read in
// batches instead: its socket is told not to wake the loop below
// batchLowat bytes (SO_RCVLOWAT), and the loop's clock reads every such
// socket every batchWindow (merged_write/4, at most 100 ms), the pass
// taking what each has. The media reaches players at most that much later:
// a quarter of the merge window they already wait (measured with 30
// publishers, a window of merged_write/8 cost 18% more CPU). A close or
// reset still wakes the loop at once, and so does a burst of batchLowat
// bytes.
const (
	batchMaxWindow = 100 * time.Millisecond
	// batchLowat is the socket's receive low-water mark: below it the
	// kernel does not report the socket readable. Small enough that raising
	// it does not make the kernel grow the receive buffer or clamp the
	// receive window (it does so for marks over half the buffer), big
	// enough that a publisher under ~3 Mbit/s rarely reaches it between two
	// passes.
	batchLowat = 32 << 10
	// batchBuf is the read buffer of a pass; batchReadsMax reads of it per
	// connection per pass at most (a busy one goes on at the next pass, or
	// when the kernel reports it over batchLowat).
	batchBuf      = 64 << 10
	batchReadsMax = 4
)

// batchReader is a connection read in batches by its loop's clock.
type batchReader interface {
	// batchFd is its socket, or -1 when it is closing.
	batchFd() int
	// readBatch takes bytes read from the socket; it reports false when
	// the connection is to close (and no more is to be read from it).
	readBatch(b []byte) bool
}

// batchWindow returns how long a vhost's publishers' bytes may wait in
// their sockets (0: they are read as they come).
func batchWindow(v *conf.Vhost) time.Duration {
	if v == nil || v.MergedWrite <= 0 {
		return 0
	}
	return min(v.MergedWrite/4, batchMaxWindow)
}

// addBatch makes the loop read br every window; loop only.
func (ls *loopState) addBatch(br batchReader, window time.Duration) {
	if err := unix.SetsockoptInt(br.batchFd(), unix.SOL_SOCKET, unix.SO_RCVLOWAT, batchLowat); err != nil {
		return // read as it comes
	}
	ls.batch = append(ls.batch, br)
	if ls.readEvery == 0 || window < ls.readEvery {
		ls.readEvery = window
	}
	if ls.readAt == 0 {
		ls.readAt = time.Now().UnixNano() + int64(ls.readEvery)
		ls.wakeAt(ls.readAt)
	}
}

// removeBatch stops reading br in batches; with fd >= 0 its socket wakes
// the loop for every byte again. Loop only.
func (ls *loopState) removeBatch(br batchReader, fd int) {
	for i, x := range ls.batch {
		if x == br {
			last := len(ls.batch) - 1
			ls.batch[i] = ls.batch[last]
			ls.batch[last] = nil
			ls.batch = ls.batch[:last]
			break
		}
	}
	if len(ls.batch) == 0 {
		ls.readEvery = 0
	}
	if fd >= 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1)
	}
}

// readAll reads what every batched socket has (a pass).
func (ls *loopState) readAll() {
	if ls.buf == nil {
		ls.buf = make([]byte, batchBuf)
	}
	for i := 0; i < len(ls.batch); i++ {
		br := ls.batch[i]
		for range batchReadsMax {
			fd := br.batchFd()
			if fd < 0 {
				break
			}
			n := readSocket(fd, ls.buf)
			if n <= 0 || !br.readBatch(ls.buf[:n]) || n < len(ls.buf) {
				break // nothing more, or the connection closes (its end, 0, is gnet's to see)
			}
		}
	}
}

// readSocket reads what the non-blocking socket fd has into b: the bytes
// read, 0 at its end, or -1 when it has nothing now or fails (gnet sees
// the failure at its next read). A raw system call, as writevSocket's.
func readSocket(fd int, b []byte) int {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1
		}
		return int(n)
	}
}
