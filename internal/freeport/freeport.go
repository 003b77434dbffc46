// Package freeport hands out loopback TCP addresses for servers that tests
// start, often as other processes, on addresses written into their configs.
//
// Asking the kernel for port 0 and closing the socket is not enough: that
// port comes from the ephemeral range, and before the server binds it the
// kernel may give it to any outgoing connection or to another "port 0"
// listener (our own server opens one for gnet at start). Ports handed out
// here lie below the ephemeral range, where the kernel never picks on its
// own; the processes of a machine walk them in one sequence, kept in a
// file under the temporary directory and taken under flock, so that test
// binaries running side by side never hand out the same port; and a port
// is checked with a bind that any socket on it, TIME_WAIT included, makes
// fail.
package freeport

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// lowest is the first port handed out; ports under it are left to
// services that expect fixed ports.
const lowest = 20000

// sequenceFile holds the next port to try, shared by the processes of a
// machine.
const sequenceFile = "rtmpedge-freeport"

var (
	mu   sync.Mutex
	next int // this process's next port when the shared file is unusable; 0 before the first
)

// Addr returns a loopback address "127.0.0.1:port" that no socket used a
// moment ago and that this process has not handed out before.
func Addr() (string, error) {
	port, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// Port is Addr's port number.
func Port() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	lo, hi := lowest, ephemeralLow()
	if hi-lo < 1000 {
		return kernelPort() // no room below the ephemeral range: the old way
	}
	for range hi - lo {
		if port := candidate(lo, hi); unused(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port in %d-%d", lo, hi-1)
}

// candidate returns the next port of the machine's sequence in [lo, hi),
// or of this process's own when the shared file cannot be used (a stretch
// starting at an offset derived from its PID).
func candidate(lo, hi int) int {
	if port, err := sharedNext(lo, hi); err == nil {
		return port
	}
	if next == 0 {
		next = start(lo, hi)
	}
	port := next
	if next++; next >= hi {
		next = lo
	}
	return port
}

// start is where a sequence begins in [lo, hi): an offset derived from the
// process's PID, so that sequences begun apart seldom meet.
func start(lo, hi int) int { return lo + os.Getpid()*7919%(hi-lo) }

// sharedNext takes the next port from the sequence file, under an
// exclusive flock.
func sharedNext(lo, hi int) (int, error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), sequenceFile), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	b := make([]byte, 16)
	n, _ := f.ReadAt(b, 0)
	port, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || port < lo || port >= hi {
		port = start(lo, hi) // a new or foreign file
	}
	following := port + 1
	if following >= hi {
		following = lo
	}
	if err := f.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(following)+"\n"), 0); err != nil {
		return 0, err
	}
	return port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768 // the Linux default
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// unused reports whether a listener without SO_REUSEADDR can bind port on
// loopback: it cannot while any socket holds the port, even in TIME_WAIT.
func unused(port int) bool {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
