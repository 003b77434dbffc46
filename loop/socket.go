package loop

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// iovMax is the most buffers one writev takes (Linux IOV_MAX).
const iovMax = 1024

// writevSocket hands the kernel as much of iov as the socket fd takes now
// and returns how many bytes it took. The socket is non-blocking (gnet's):
// a full send buffer takes 0 bytes and is no error. What is not taken stays
// with the caller; unlike gnet's Writev nothing is copied. vecs is scratch
// reused between calls. At most iovMax buffers are offered.
func writevSocket(fd int, iov [][]byte, vecs *[]unix.Iovec) (int, error) {
	v := (*vecs)[:0]
	for _, b := range iov[:min(len(iov), iovMax)] {
		if len(b) == 0 {
			continue
		}
		vec := unix.Iovec{Base: &b[0]}
		vec.SetLen(len(b))
		v = append(v, vec)
	}
	*vecs = v
	if len(v) == 0 {
		return 0, nil
	}
	for {
		// RawSyscall: the socket is non-blocking, so the call never waits,
		// and skipping the scheduler's syscall hooks keeps sysmon from
		// handing the loop's P to another thread during a flush of
		// hundreds of writes (measured: a third of the edge's CPU went to
		// those thread switches).
		n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
		switch {
		case errno == 0:
			clear(v) // drop the references to the packets for the GC
			return int(n), nil
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			clear(v)
			return 0, nil
		}
		clear(v)
		return 0, fmt.Errorf("writev: %w", errno)
	}
}

// sendQueue returns what the socket's send queue holds: the bytes TCP has
// not sent yet (SIOCOUTQNSD) and all of it, sent and unacknowledged or not
// (SIOCOUTQ; not asked, and 0, when nothing is unsent). Raw syscalls, as
// for writevSocket: they never block.
func sendQueue(fd int) (unsent, queued int, err error) {
	var v int32
	if _, _, errno := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCOUTQNSD, uintptr(unsafe.Pointer(&v))); errno != 0 {
		return 0, 0, fmt.Errorf("SIOCOUTQNSD: %w", errno)
	}
	unsent = int(v)
	if unsent == 0 {
		return 0, 0, nil // all sent (the common case): no second call
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCOUTQ, uintptr(unsafe.Pointer(&v))); errno != 0 {
		return 0, 0, fmt.Errorf("SIOCOUTQ: %w", errno)
	}
	return unsent, int(v), nil
}

// sendStalled reports whether TCP holds unsent bytes for the socket with
// none in flight: no acknowledgement will come to clock them out, so Linux
// sends them only when its probe timer fires, an RTO (200 ms or more)
// later. That is what a write meets when the box's own queueing discipline
// drops its first segment (a shaper's queue full, as when hundreds of
// merged writes leave at once): the transmit fails, TCP enters CWR and
// keeps the whole write. A peer whose receive window is full (a player not
// reading) leaves the socket the same way but not in CWR: not a stall.
func sendStalled(fd int) bool {
	unsent, queued, err := sendQueue(fd)
	if err != nil || unsent == 0 || unsent != queued {
		return false
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return err == nil && info.Ca_state == tcpCACWR
}

// tcpCACWR is Linux's TCP_CA_CWR congestion state (linux/tcp.h): the
// congestion window reduced for a local congestion signal, as a failed
// transmit.
const tcpCACWR = 2
