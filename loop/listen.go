package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The server accepts connections itself, on one goroutine per listening
// address, and enrolls each one on the least busy event loop. gnet's own
// acceptor cannot do two things an edge box needs: it stops the whole
// engine (every connection) on the first accept error it does not expect,
// EMFILE included, and it cannot open or close a listener after boot, which
// a live reload of listen addresses needs.

// protocol is what a listener's connections speak.
type protocol uint8

const (
	protoRTMP protocol = iota
	protoHTTP
)

func (p protocol) String() string {
	if p == protoHTTP {
		return "http"
	}
	return "rtmp"
}

// Accept error back-off: the first retry waits acceptBackoffMin, doubling up
// to acceptBackoffMax while accept keeps failing (out of file descriptors,
// say), so a full process neither spins nor stops serving.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	acceptWarnEvery  = 10 * time.Second
)

// listener is one listening address of the server.
type listener struct {
	srv   *Server
	addr  string // as configured
	proto protocol
	ln    net.Listener
	done  chan struct{} // closed when the accept loop has returned
}

// listenerKey names a listener in the server's set.
func listenerKey(p protocol, addr string) string { return p.String() + " " + addr }

// openListener listens on addr (host:port) for proto and starts accepting.
func (s *Server) openListener(addr string, p protocol) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", p, addr, err)
	}
	l := &listener{srv: s, addr: addr, proto: p, ln: ln, done: make(chan struct{})}
	go l.acceptLoop()
	return l, nil
}

// close stops accepting; established connections are not touched.
func (l *listener) close() {
	_ = l.ln.Close()
	<-l.done
}

// acceptLoop accepts until the listener is closed.
func (l *listener) acceptLoop() {
	defer close(l.done)
	log := l.srv.log.With("listen", l.addr, "protocol", l.proto.String())
	var (
		backoff  time.Duration
		lastWarn time.Time
		failures int
	)
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, buffers or the like: wait and retry.
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			failures++
			if now := time.Now(); now.Sub(lastWarn) >= acceptWarnEvery {
				log.Warn("accept failed; retrying (raise the open-files limit if this says too many open files)",
					"err", err, "failures", failures, "retry_in", backoff)
				lastWarn, failures = now, 0
			}
			l.srv.acceptErrors.Add(1)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.enroll(conn, log)
	}
}

// enroll hands conn to an event loop; OnOpen finds l in its context.
func (l *listener) enroll(conn net.Conn, log *slog.Logger) {
	ctx := gnet.NewContext(gnet.NewNetConnContext(context.Background(), conn), l)
	ch, err := l.srv.engine.Register(ctx)
	if err != nil {
		_ = conn.Close()
		if !errors.Is(err, context.Canceled) {
			log.Debug("connection dropped: no event loop took it", "client", conn.RemoteAddr().String(), "err", err)
		}
		return
	}
	// gnet duplicates the descriptor on a worker and closes conn; a failure
	// there (out of descriptors) closes the connection and comes back here.
	go func() {
		if res := <-ch; res.Err != nil {
			l.srv.acceptErrors.Add(1)
			log.Debug("connection dropped while enrolling it", "client", conn.RemoteAddr().String(), "err", res.Err)
		}
	}()
}

// listeners holds the server's open listeners by listenerKey.
type listeners struct {
	mu  sync.Mutex
	set map[string]*listener
}

// wanted returns the listeners a configuration asks for, by key.
func wanted(rtmp, http []string) map[string]protocolAddr {
	w := make(map[string]protocolAddr, len(rtmp)+len(http))
	for _, a := range rtmp {
		w[listenerKey(protoRTMP, a)] = protocolAddr{protoRTMP, a}
	}
	for _, a := range http {
		w[listenerKey(protoHTTP, a)] = protocolAddr{protoHTTP, a}
	}
	return w
}

type protocolAddr struct {
	proto protocol
	addr  string
}

// reconcile opens the listeners of rtmp and http that are not open yet,
// and only if all of them open, closes those no longer wanted. On error
// nothing changed. It returns the keys opened and closed.
func (s *Server) reconcileListeners(rtmp, http []string) (opened, closed []string, err error) {
	ls := &s.lns
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.set == nil {
		ls.set = make(map[string]*listener)
	}
	want := wanted(rtmp, http)
	var fresh []*listener
	for key, pa := range want {
		if ls.set[key] != nil {
			continue
		}
		l, err := s.openListener(pa.addr, pa.proto)
		if err != nil {
			for _, f := range fresh {
				f.close()
			}
			return nil, nil, err
		}
		fresh = append(fresh, l)
	}
	for _, l := range fresh {
		key := listenerKey(l.proto, l.addr)
		ls.set[key] = l
		opened = append(opened, key)
	}
	for key, l := range ls.set {
		if _, ok := want[key]; !ok {
			l.close()
			delete(ls.set, key)
			closed = append(closed, key)
		}
	}
	slices.Sort(opened)
	slices.Sort(closed)
	return opened, closed, nil
}

// closeListeners stops accepting on every address.
func (s *Server) closeListeners() {
	_, _, _ = s.reconcileListeners(nil, nil)
}
