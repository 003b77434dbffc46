// Package resp is a small Redis client: RESP2 commands, pipelines and Lua
// scripts over TCP or TLS, with a bounded pool of connections. It is what
// the stream registry needs and no more.
//
// Every command runs on a connection of its own for its duration, so a
// slow command never holds up another. A connection whose command failed
// on the network, timed out or was cancelled is closed, never reused; the
// next command dials again; one the server closed while idle (it
// restarted) is found before use and replaced. A command is never sent
// twice. Commands are bounded by their context's deadline (or
// Options.Timeout when it has none), and end when it is cancelled.
package resp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a Client.
type Options struct {
	Addr     string      // host:port
	Username string      // AUTH user (Redis 6 ACLs); empty: AUTH with the password alone
	Password string      // AUTH password; empty (and no Username): no AUTH
	DB       int         // SELECT db when not 0
	TLS      *tls.Config // nil: plain TCP

	// DialTimeout bounds connecting, TLS and AUTH/SELECT (default 5s;
	// an earlier context deadline wins).
	DialTimeout time.Duration
	// Timeout bounds a command whose context has no deadline (default 3s).
	Timeout time.Duration
	// PoolSize is the most connections open at once (default 10 per
	// GOMAXPROCS); more commands at once wait for one.
	PoolSize int
	// MinIdle connections are dialled ahead in the background: at New and
	// after a connection was closed.
	MinIdle int
}

// Client is a pool of connections to one Redis server. It is safe for
// concurrent use.
type Client struct {
	opt   Options
	slots chan struct{} // one token for each open connection

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool

	warming atomic.Bool
}

// conn is one connection and its buffers.
type conn struct {
	nc  net.Conn     // tcp, or TLS over it
	tcp *net.TCPConn // for open's peek
	r   *bufio.Reader
	out []byte
}

// Result is the reply to one command of a pipeline: a value as Do returns
// it, or Err (ErrNil, or the server's *Error).
type Result struct {
	Val any
	Err error
}

// New returns a Client of the server opt names. It does not connect,
// beyond the MinIdle connections dialled in the background.
func New(opt Options) *Client {
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 5 * time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 3 * time.Second
	}
	if opt.PoolSize <= 0 {
		opt.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	c := &Client{opt: opt, slots: make(chan struct{}, opt.PoolSize)}
	c.warm()
	return c
}

// Addr returns the server's address.
func (c *Client) Addr() string { return c.opt.Addr }

// Close closes the idle connections; those in use close when their
// command ends. Commands after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
	}
	return nil
}

// ErrClosed is the error of a command on a closed Client.
var ErrClosed = errors.New("resp: client closed")

// Do runs one command and returns its reply: a string (simple or bulk),
// an int64, or an []any (whose null elements are nil). A null reply is
// ErrNil, an error reply an *Error.
func (c *Client) Do(ctx context.Context, args ...string) (any, error) {
	rs, err := c.Pipeline(ctx, args)
	if err != nil {
		return nil, err
	}
	return rs[0].Val, rs[0].Err
}

// Pipeline sends cmds in one write and reads their replies, one Result
// each. The error is that of the connection (the network, a timeout, a
// reply that is not RESP2): then no reply is known.
func (c *Client) Pipeline(ctx context.Context, cmds ...[]string) ([]Result, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opt.Timeout)
		defer cancel()
	}
	rs, err := c.pipeline(ctx, cmds)
	if err != nil {
		name := cmds[0][0]
		if len(cmds) > 1 {
			name = "pipeline of " + strconv.Itoa(len(cmds))
		}
		cerr := ctx.Err()
		if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			cerr = context.DeadlineExceeded // the connection's deadline is the context's
		}
		if cerr != nil && !errors.Is(err, cerr) {
			return nil, fmt.Errorf("resp: %s on %s: %w (%w)", name, c.opt.Addr, cerr, err)
		}
		return nil, fmt.Errorf("resp: %s on %s: %w", name, c.opt.Addr, err)
	}
	return rs, nil
}

// pipeline runs cmds on a connection.
func (c *Client) pipeline(ctx context.Context, cmds [][]string) ([]Result, error) {
	cn, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	rs, reusable, err := cn.roundTrip(ctx, cmds)
	switch {
	case err != nil:
		c.discard(cn) // broken: a reply may be left half read
		return nil, err
	case !reusable:
		c.discard(cn)
	default:
		c.put(cn)
	}
	return rs, nil
}

// roundTrip writes cmds and reads their replies by ctx's deadline, or
// until it is cancelled. The connection is not reusable when ctx ended
// meanwhile (its deadline was moved to end the I/O).
func (cn *conn) roundTrip(ctx context.Context, cmds [][]string) (rs []Result, reusable bool, err error) {
	dl, _ := ctx.Deadline()
	if err := cn.nc.SetDeadline(dl); err != nil {
		return nil, false, err
	}
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(time.Unix(1, 0)) })
	rs, err = cn.exchange(cmds)
	return rs, stop(), err
}

// exchange writes cmds and reads their replies.
func (cn *conn) exchange(cmds [][]string) ([]Result, error) {
	cn.out = cn.out[:0]
	for _, cmd := range cmds {
		cn.out = appendCommand(cn.out, cmd)
	}
	if _, err := cn.nc.Write(cn.out); err != nil {
		return nil, err
	}
	if cap(cn.out) > 64<<10 {
		cn.out = nil // a large pipeline's buffer is not kept
	}
	rs := make([]Result, len(cmds))
	for i := range rs {
		v, err := readReply(cn.r)
		switch e, isErr := v.(*Error); {
		case errors.Is(err, ErrNil):
			rs[i].Err = ErrNil
		case err != nil:
			return nil, err
		case isErr:
			rs[i].Err = e
		default:
			rs[i].Val = v
		}
	}
	return rs, nil
}

// get takes a slot and an idle connection that is still open, or dials
// one.
func (c *Client) get(ctx context.Context) (*conn, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of %d connections: %w", c.opt.PoolSize, ctx.Err())
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			<-c.slots
			return nil, ErrClosed
		}
		n := len(c.idle)
		if n == 0 {
			c.mu.Unlock()
			break
		}
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		if cn.open() {
			return cn, nil
		}
		cn.nc.Close() // the server closed it: it restarted, or dropped idle clients
	}
	cn, err := c.dial(ctx)
	if err != nil {
		<-c.slots
		return nil, err
	}
	return cn, nil
}

// open reports whether the server has not closed an idle connection: a
// peek at its socket, without waiting, finds no end of stream or error.
func (cn *conn) open() bool {
	rc, err := cn.tcp.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Data is a TLS record (a session ticket) at most: Redis sends
		// nothing unasked.
		open = n > 0 || err == syscall.EAGAIN
		return true
	})
	return err == nil && open
}

// put returns a connection whose command completed to the idle ones.
func (c *Client) put(cn *conn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cn.nc.Close()
	} else {
		c.idle = append(c.idle, cn)
		c.mu.Unlock()
	}
	<-c.slots
}

// discard closes a connection that may not be used again.
func (c *Client) discard(cn *conn) {
	cn.nc.Close()
	<-c.slots
	c.warm()
}

// warm dials up to MinIdle connections in the background, one dial at a
// time; a failed dial is left for the next command to find.
func (c *Client) warm() {
	if c.opt.MinIdle <= 0 || !c.warming.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.warming.Store(false)
		for {
			c.mu.Lock()
			enough := c.closed || len(c.idle) >= c.opt.MinIdle
			c.mu.Unlock()
			if enough {
				return
			}
			select {
			case c.slots <- struct{}{}:
			default:
				return // all in use: none is idle for long
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.opt.DialTimeout)
			cn, err := c.dial(ctx)
			cancel()
			if err != nil {
				<-c.slots
				return
			}
			c.put(cn)
		}
	}()
}

// dial connects, and authenticates and selects the database when the
// options say so, within DialTimeout.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.DialTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.opt.Addr)
	if err != nil {
		return nil, err
	}
	tcp := nc.(*net.TCPConn)
	if c.opt.TLS != nil {
		tc := tls.Client(nc, c.opt.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}
	cn := &conn{nc: nc, tcp: tcp, r: bufio.NewReader(nc)}
	var setup [][]string
	switch {
	case c.opt.Username != "":
		setup = append(setup, []string{"AUTH", c.opt.Username, c.opt.Password})
	case c.opt.Password != "":
		setup = append(setup, []string{"AUTH", c.opt.Password})
	}
	if c.opt.DB != 0 {
		setup = append(setup, []string{"SELECT", strconv.Itoa(c.opt.DB)})
	}
	if len(setup) == 0 {
		return cn, nil
	}
	rs, reusable, err := cn.roundTrip(ctx, setup)
	if err == nil && !reusable {
		err = ctx.Err()
	}
	if err == nil {
		for i, r := range rs {
			if r.Err != nil {
				err = fmt.Errorf("%s: %w", setup[i][0], r.Err)
				break
			}
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return cn, nil
}
