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
