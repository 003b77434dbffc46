package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOutOfFileDescriptorsKeepsServing runs the server out of file
// descriptors with idle connections: it must keep its established
// connections, say what happens, and serve again once descriptors free up
// (gnet's own acceptor stopped the whole engine on EMFILE).
func TestOutOfFileDescriptorsKeepsServing(t *testing.T) {
	srv := startServer(t, `listen: ["%ADDR%"]
idle_timeout: 30s
`)
	limit := uint64(srv.fds() + 40)
	if err := unix.Prlimit(srv.pid(), unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 80; i++ { // twice what the limit leaves; the backlog takes the rest
		c, err := net.DialTimeout("tcp", srv.addr, 2*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	if !srv.waitLog("too many open files", 10*time.Second) {
		t.Fatalf("no accept failure logged with %d connections against a limit of %d descriptors", len(conns), limit)
	}
	select {
	case <-srv.done:
		t.Fatal("the server exited when it ran out of file descriptors")
	case <-time.After(500 * time.Millisecond):
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	pub := publishFFmpeg(t, srv.url("live/fd"), "320x240", 30)
	defer pub.kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := ffprobe(t, srv.url("live/fd"))
		if err == nil {
			if codec, _, _, ok := p.stream("video"); ok && codec == "h264" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream served after the descriptors came back: %v\n%s", err, lastLines(srv.log.String(), 20))
		}
		time.Sleep(300 * time.Millisecond)
	}
	if strings.Contains(srv.log.String(), "engine shutdown") {
		t.Fatalf("event loops stopped:\n%s", lastLines(srv.log.String(), 20))
	}
}
