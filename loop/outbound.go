package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/edge"
)

// upstreamOwner is told what happens to an upstream connection. Both calls
// run on the event loop the connection was enrolled on.
type upstreamOwner interface {
	upstreamReady(o *outbound, result []any)
	upstreamClosed(o *outbound, err error)
}

// outbound is a connection this server dialed to an origin.
type outbound struct {
	srv     *Server
	addr    string
	up      *edge.Upstream
	owner   upstreamOwner
	loop    gnet.EventLoop
	log     *slog.Logger
	opened  time.Time
	timeout time.Duration // command_timeout: until the origin accepted
	noData  time.Duration // no_data_timeout once playing (0: none)

	c         gnet.Conn // set on the loop in OnOpen
	out       []byte
	streaming atomic.Bool
	lastData  atomic.Int64
	reason    atomic.Pointer[error]
	closed    bool // upstreamClosed was delivered (loop only)

	// Batched reads (an ingest upstream of a vhost with merged writes):
	// once it streams, the loop's clock reads it every batch, as it reads
	// publishers (batch.go); pend holds what a read brought and the
	// upstream did not take yet. Loop only.
	batch   time.Duration
	batched bool
	pend    []byte
}

// dialUpstream connects to addr within connectTimeout in the background,
// enrolls the connection on loop and runs up on it. The owner hears
// upstreamClosed (on loop) if anything fails, including the dial.
//
// With batch > 0 the connection is read in batches of that window once it
// streams (see batchWindow).
func (s *Server) dialUpstream(addr string, connectTimeout, commandTimeout, noData, batch time.Duration,
	up *edge.Upstream, owner upstreamOwner, loop gnet.EventLoop, log *slog.Logger) *outbound {
	s.tele.Origin(addr).Connects.Add(1)
	o := &outbound{
		srv: s, addr: addr, up: up, owner: owner, loop: loop, opened: time.Now(),
		timeout: commandTimeout, noData: noData, batch: batch,
		log: log.With("origin", addr, "upstream", up.Config().Mode.String()),
	}
	go func() {
		conn, err := (&net.Dialer{Timeout: connectTimeout}).Dial("tcp", addr)
		if err == nil {
			ctx := gnet.NewContext(gnet.NewNetConnContext(context.Background(), conn), o)
			var ch <-chan gnet.RegisteredResult
			if ch, err = loop.Enroll(ctx, conn); err == nil {
				if res := <-ch; res.Err != nil {
					err = res.Err
				}
			} else {
				conn.Close()
			}
		}
		if err != nil {
			err = fmt.Errorf("connect %s: %w", addr, err)
			_ = loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				o.finish(err)
				return nil
			}))
		}
	}()
	return o
}

// finish delivers upstreamClosed once.
func (o *outbound) finish(err error) {
	if o.closed {
		return
	}
	o.closed = true
	o.owner.upstreamClosed(o, err)
}

// close ends the connection with err as the reason; safe from any goroutine.
func (o *outbound) close(err error) {
	o.reason.CompareAndSwap(nil, &err)
	if o.c != nil {
		_ = o.c.Close()
	}
}

func (o *outbound) onOpen(c gnet.Conn) ([]byte, gnet.Action) {
	o.c = c
	if o.reason.Load() != nil { // given up while dialing
		return nil, gnet.Close
	}
	o.srv.sessions.Store(o, struct{}{})
	o.lastData.Store(time.Now().UnixNano())
	o.up.OnReady = func(result []any) {
		o.streaming.Store(true)
		o.lastData.Store(time.Now().UnixNano())
		if o.batch > 0 && !o.batched {
			o.batched = true
			o.srv.loopStateOf(o.loop).addBatch(o, o.batch)
		}
		o.owner.upstreamReady(o, result)
	}
	o.log.Debug("upstream connected")
	return o.up.Start(), gnet.None
}

func (o *outbound) onTraffic(c gnet.Conn) gnet.Action {
	if err := consumeConn(c, &o.pend, o.feed); err != nil {
		o.reason.CompareAndSwap(nil, &err)
		return gnet.Close
	}
	return gnet.None
}

// feed hands b to the upstream's protocol, sends its replies and returns
// how much of b it took.
func (o *outbound) feed(b []byte) (int, error) {
	n, out, err := o.up.Feed(b, o.out[:0])
	if len(out) > 0 {
		_, _ = o.c.Write(out)
	}
	o.out = out[:0]
	return n, err
}

func (o *outbound) batchFd() int {
	if o.closed || o.c == nil || o.reason.Load() != nil {
		return -1
	}
	return o.c.Fd()
}

// readBatch takes what a batched read got from the socket.
func (o *outbound) readBatch(b []byte) bool {
	if err := consumeBatch(b, &o.pend, o.feed); err != nil {
		o.close(err)
		return false
	}
	return true
}

func (o *outbound) onClose(err error) {
	if o.batched {
		o.batched = false
		o.srv.loopStateOf(o.loop).removeBatch(o, -1)
	}
	o.srv.sessions.Delete(o)
	if p := o.reason.Load(); p != nil {
		err = *p
	} else if err == nil {
		err = errors.New("origin closed the connection")
	}
	o.finish(err)
}

// send writes b to the origin; only on the connection's loop.
func (o *outbound) send(b []byte) {
	if o.c != nil && len(b) > 0 {
		_, _ = o.c.Write(b)
	}
}

func (o *outbound) checkTimeouts(now time.Time) {
	if !o.streaming.Load() {
		if now.Sub(o.opened) > o.timeout {
			o.close(fmt.Errorf("origin did not accept within command_timeout %s", o.timeout))
		}
		return
	}
	if o.noData > 0 {
		if idle := now.Sub(time.Unix(0, o.lastData.Load())); idle > o.noData {
			o.close(fmt.Errorf("no data from origin for %s (no_data_timeout %s)", idle.Round(time.Millisecond), o.noData))
		}
	}
}
