// Package bench is the load harness: RTMP players and publishers that
// measure what a server delivers, and the reports built from them.
package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/edge"
)

// StatusError is an error onStatus or _error answer from the server.
type StatusError struct {
	Code, Description string
}

func (e *StatusError) Error() string { return e.Code + ": " + e.Description }

// Client is a blocking RTMP client for one stream: the players and
// publishers of the harness and the end-to-end tests.
type Client struct {
	conn     net.Conn
	rd       *chunk.Reader
	wr       *chunk.Writer
	in       []byte // bytes read and not yet parsed: in[off:]
	off      int
	out      []byte
	txn      float64
	streamID uint32
	app      string
	stream   string
	window   uint32
	acked    uint64
	// Handshake is how long TCP connect plus the RTMP handshake took.
	Handshake time.Duration
}

// URL splits rtmp://host[:port]/app[?query]/stream[?query] into the
// address, the tcUrl, the app (with its query, as ffmpeg sends it) and the
// stream name (with its query).
func URL(raw string) (addr, tcURL, app, stream string, err error) {
	rest, ok := strings.CutPrefix(raw, "rtmp://")
	if !ok {
		return "", "", "", "", fmt.Errorf("url %q: scheme must be rtmp", raw)
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || host == "" {
		return "", "", "", "", fmt.Errorf("url %q: want rtmp://host/app/stream", raw)
	}
	app, stream, ok = strings.Cut(path, "/")
	if !ok || app == "" || stream == "" {
		return "", "", "", "", fmt.Errorf("url %q: want rtmp://host/app/stream", raw)
	}
	addr = host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "1935")
	}
	return addr, "rtmp://" + host + "/" + app, app, stream, nil
}

// Dial connects to the server of rawURL, performs the handshake and the
// RTMP connect, all within timeout.
func Dial(rawURL string, timeout time.Duration) (*Client, error) {
	return Dialer{Timeout: timeout}.Dial(rawURL)
}

// Dialer holds options for connecting.
type Dialer struct {
	Timeout    time.Duration
	ReadBuffer int // SO_RCVBUF before connecting (0: the system's)
}

// Dial connects to the server of rawURL, performs the handshake and the
// RTMP connect, all within d.Timeout.
func (d Dialer) Dial(rawURL string) (*Client, error) {
	addr, tcURL, app, stream, err := URL(rawURL)
	if err != nil {
		return nil, err
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	nd := net.Dialer{Timeout: timeout}
	if d.ReadBuffer > 0 {
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, d.ReadBuffer)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	start := time.Now()
	conn, err := nd.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &Client{
		conn:   conn,
		rd:     chunk.NewReader(chunk.ReaderConfig{}),
		wr:     chunk.NewWriter(chunk.DefaultChunkSize),
		in:     make([]byte, 0, 64<<10),
		app:    app,
		stream: stream,
	}
	_ = conn.SetDeadline(start.Add(timeout))
	if err := c.handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	c.Handshake = time.Since(start)
	if err := c.connect(tcURL); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *Client) handshake() error {
	hs := chunk.NewClientHandshake(true)
	if _, err := c.conn.Write(hs.C0C1()); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	for {
		n, out, done, err := hs.Feed(c.in[c.off:])
		c.off += n
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		if len(out) > 0 {
			if _, err := c.conn.Write(out); err != nil {
				return fmt.Errorf("handshake: %w", err)
			}
		}
		if done {
			return nil
		}
		if err := c.fill(); err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
	}
}

// fill reads more bytes from the connection.
func (c *Client) fill() error {
	if c.off > 0 {
		n := copy(c.in[:cap(c.in)], c.in[c.off:])
		c.in, c.off = c.in[:n], 0
	}
	if len(c.in) == cap(c.in) {
		grown := make([]byte, len(c.in), 2*cap(c.in))
		copy(grown, c.in)
		c.in = grown
	}
	n, err := c.conn.Read(c.in[len(c.in):cap(c.in)])
	c.in = c.in[:len(c.in)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// SetDeadline sets the connection's read and write deadline.
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// ReadMessage returns the next message. Protocol control is handled on the
// way (pings answered, acknowledgements sent) and also returned.
func (c *Client) ReadMessage() (*chunk.Message, error) {
	for {
		n, msg, err := c.rd.Read(c.in[c.off:])
		c.off += n
		if err != nil {
			return nil, err
		}
		if msg == nil {
			if err := c.fill(); err != nil {
				return nil, err
			}
			continue
		}
		if err := c.control(msg); err != nil {
			return nil, err
		}
		return msg, nil
	}
}

func (c *Client) control(msg *chunk.Message) error {
	switch msg.TypeID {
	case chunk.TypeWindowAckSize:
		v, err := chunk.ParseUint32(msg.Payload)
		if err != nil {
			return err
		}
		c.window = v
	case chunk.TypeUserControl:
		uc, err := chunk.ParseUserControl(msg.Payload)
		if err != nil {
			return err
		}
		if uc.Event == chunk.EventPingRequest {
			return c.send(chunk.AppendPingResponse(c.out[:0], uc.Timestamp))
		}
	}
	if c.window > 0 && c.rd.BytesRead()-c.acked >= uint64(c.window) {
		c.acked = c.rd.BytesRead()
		return c.send(chunk.AppendAck(c.out[:0], uint32(c.acked)))
	}
	return nil
}

func (c *Client) send(b []byte) error {
	c.out = b[:0]
	_, err := c.conn.Write(b)
	return err
}

// command sends an AMF0 command.
func (c *Client) command(streamID uint32, vals ...any) error {
	body, err := amf.AppendAll(nil, vals...)
	if err != nil {
		return err
	}
	h := chunk.Header{CSID: 3, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0, StreamID: streamID}
	return c.send(c.wr.Append(c.out[:0], h, body))
}

// awaitCommand reads until a command named one of names arrives and
// returns its values; an _error or error onStatus becomes a StatusError.
func (c *Client) awaitCommand(names ...string) ([]any, error) {
	for {
		msg, err := c.ReadMessage()
		if err != nil {
			return nil, err
		}
		if msg.TypeID != chunk.TypeCommandAMF0 {
			continue
		}
		vals, err := amf.DecodeAll(msg.Payload)
		if err != nil || len(vals) == 0 {
			return nil, fmt.Errorf("bad command from server: %v", err)
		}
		name, _ := vals[0].(string)
		if status := statusOf(vals); status != nil && status.String("level") == "error" {
			return vals, &StatusError{Code: status.String("code"), Description: status.String("description")}
		}
		for _, n := range names {
			if n == name {
				return vals, nil
			}
		}
	}
}

func statusOf(vals []any) amf.Object {
	if len(vals) < 4 {
		return nil
	}
	o, _ := vals[3].(amf.Object)
	return o
}

func (c *Client) connect(tcURL string) error {
	c.txn++
	err := c.command(0, "connect", c.txn, amf.Object{
		{Key: "app", Value: c.app},
		{Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: "FMLE/3.0 (compatible; rtmpbench)"},
		{Key: "tcUrl", Value: tcURL},
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if _, err := c.awaitCommand("_result"); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

func (c *Client) createStream() error {
	c.txn++
	if err := c.command(0, "createStream", c.txn, nil); err != nil {
		return err
	}
	vals, err := c.awaitCommand("_result")
	if err != nil {
		return fmt.Errorf("createStream: %w", err)
	}
	if len(vals) < 4 {
		return errors.New("createStream: no stream id in _result")
	}
	id, _ := vals[3].(float64)
	c.streamID = uint32(id)
	return nil
}

// Play asks for the stream named in the URL and waits for
// NetStream.Play.Start.
func (c *Client) Play() error {
	if err := c.createStream(); err != nil {
		return err
	}
	if err := c.command(c.streamID, "play", 0.0, nil, c.stream, -2.0); err != nil {
		return err
	}
	for {
		vals, err := c.awaitCommand("onStatus")
		if err != nil {
			return fmt.Errorf("play: %w", err)
		}
		if statusOf(vals).String("code") == "NetStream.Play.Start" {
			return nil
		}
	}
}

// Publish publishes the stream named in the URL and waits for
// NetStream.Publish.Start.
func (c *Client) Publish() error {
	if err := c.createStream(); err != nil {
		return err
	}
	if err := c.command(c.streamID, "publish", 0.0, nil, c.stream, "live"); err != nil {
		return err
	}
	for {
		vals, err := c.awaitCommand("onStatus")
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if statusOf(vals).String("code") == "NetStream.Publish.Start" {
			return nil
		}
	}
}

// SetChunkSize announces and uses a new outgoing chunk size.
func (c *Client) SetChunkSize(n int) error {
	if err := c.send(chunk.AppendSetChunkSize(c.out[:0], uint32(n))); err != nil {
		return err
	}
	c.wr.SetChunkSize(n)
	return nil
}

// WriteMessage sends one media or data message on the published stream.
func (c *Client) WriteMessage(typeID uint8, ts uint32, payload []byte) error {
	h := chunk.Header{CSID: edge.MediaCSID(typeID), Timestamp: ts, Length: uint32(len(payload)), TypeID: typeID, StreamID: c.streamID}
	return c.send(c.wr.Append(c.out[:0], h, payload))
}
