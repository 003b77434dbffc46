package loop

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/hook"
	"github.com/rtmpedge/rtmpedge/httpflv"
)

// role is what a connection does once connected.
type role int32

const (
	roleNone role = iota
	rolePublisher
	rolePlayer
)

func (r role) String() string {
	switch r {
	case rolePublisher:
		return "publisher"
	case rolePlayer:
		return "player"
	}
	return "none"
}

// Window sizes announced to clients, as nginx-rtmp and SRS announce them.
const (
	windowAckSize = 2500000
	peerBandwidth = 2500000
)

// session is one connection's state. Fields without atomics are touched
// only on the connection's event loop.
type session struct {
	srv    *Server
	c      gnet.Conn
	log    *slog.Logger
	id     uint64
	remote string
	opened time.Time

	ls          *loopState             // the state of the connection's event loop (see loop())
	batched     bool                   // a publisher read in batches by the loop's clock
	pend        []byte                 // bytes read in a batch that the session did not take (it stopped publishing)
	hs          *chunk.ServerHandshake // nil once the handshake is done
	http        *httpState             // an HTTP client (nil: RTMP)
	rd          *chunk.Reader
	outChunk    int
	out         []byte // scratch for replies
	closing     bool   // close once this read is handled
	suspended   bool   // waiting for a hook, the origin or the registry: leave input unread
	claiming    bool   // holds its stream's hub while the registry decides the publish
	gone        bool   // OnClose ran
	protocolErr bool   // closed because the peer sent something invalid
	fromEdge    bool   // the client is a downstream edge (its connect carried SRS's srs_sig)
	connected   atomic.Bool

	// Reassembly memory of this connection in the server's
	// max_inflight_bytes accounting: held is written on the loop and read
	// by whichever loop reclaims; doomed marks a connection chosen to close.
	held   atomic.Int64
	doomed atomic.Bool

	vhostPtr   atomic.Pointer[conf.Vhost]
	app        string
	tcURL      string
	appRaw     string     // app as the client sent it, query included
	tcQuery    string     // query of the client's tcUrl
	connectObj amf.Object // the client's connect command object
	role       atomic.Int32
	key        edge.Key
	hub        *edge.Hub
	player     *player
	ingest     *ingester  // the upstream feeding this player (edge vhosts)
	fwd        *forwarder // the origin this publisher is forwarded to (edge vhosts)

	handshakeBytes uint64
	bytesOut       atomic.Uint64
	peerWindow     uint32
	lastAcked      uint64

	lastRead     atomic.Int64 // unix nanoseconds
	lastMedia    atomic.Int64
	fwdLostSince atomic.Int64 // a forwarded publish without an origin since (0: has one)
	waitingFor   atomic.Int64 // a player waiting for a publisher since (0: not waiting)
	reason       atomic.Pointer[string]

	view    atomic.Pointer[clientView] // what the API shows of it
	bytesIn atomic.Uint64              // bytes consumed from the socket
}

func newSession(s *Server, c gnet.Conn, remote string) *session {
	now := time.Now()
	ss := &session{
		srv:      s,
		c:        c,
		id:       s.nextID.Add(1),
		remote:   remote,
		opened:   now,
		hs:       chunk.NewServerHandshake(),
		outChunk: chunk.DefaultChunkSize,
	}
	ss.log = s.log.With("id", ss.id, "client", remote)
	ss.lastRead.Store(now.UnixNano())
	return ss
}

// setReason records why the connection closes; the first reason wins.
func (ss *session) setReason(r string) {
	ss.reason.CompareAndSwap(nil, &r)
}

// consume handles the bytes that arrived and returns how many it used.
func (ss *session) consume(buf []byte) (used int, err error) {
	used, err = ss.handle(buf)
	ss.bytesIn.Add(uint64(used))
	return used, err
}

// handle is consume without the byte count.
func (ss *session) handle(buf []byte) (used int, err error) {
	ss.lastRead.Store(time.Now().UnixNano())
	if ss.http != nil && !ss.suspended {
		return ss.consumeHTTP(buf)
	}
	if ss.suspended {
		ss.account(len(buf)) // what arrives meanwhile waits in gnet's buffer
		return 0, nil
	}
	if ss.hs != nil {
		n, out, done, err := ss.hs.Feed(buf)
		used += n
		ss.handshakeBytes += uint64(n)
		if err != nil {
			return used, fmt.Errorf("handshake: %w", err)
		}
		if len(out) > 0 {
			ss.write(out)
		}
		if !done {
			return used, nil
		}
		ss.log.Debug("handshake done", "complex", ss.hs.Complex())
		ss.hs = nil
		// Until it publishes, a connection only sends commands.
		ss.rd = chunk.NewReader(chunk.ReaderConfig{MaxMessageSize: int(min(ss.srv.config().MaxCommandSize, ss.srv.config().MaxMessageSize))})
	}
	// What stays unread (a partial chunk, up to one message) sits in gnet's
	// buffer: it counts as held too.
	defer func() { ss.account(len(buf) - used) }()
	// gone: a reply's write failed and gnet closed the connection inside
	// it; nothing more of it is handled.
	for !ss.closing && !ss.suspended && !ss.gone && !ss.doomed.Load() {
		n, msg, err := ss.rd.Read(buf[used:])
		used += n
		if err != nil {
			if errors.Is(err, chunk.ErrMessageTooLong) {
				limit := "max_message_size"
				if role(ss.role.Load()) != rolePublisher {
					limit = "max_command_size, the limit before publish"
				}
				return used, fmt.Errorf("chunk stream (%s): %w", limit, err)
			}
			return used, fmt.Errorf("chunk stream: %w", err)
		}
		if msg == nil {
			break
		}
		if err := ss.handleMessage(msg); err != nil {
			return used, err
		}
	}
	if ss.gone {
		return used, nil
	}
	if ss.fwd != nil {
		ss.fwd.flush() // what this read brought goes to the origin in one write
	}
	if ss.peerWindow > 0 {
		if read := ss.rd.BytesRead() + ss.handshakeBytes; read-ss.lastAcked >= uint64(ss.peerWindow) {
			ss.lastAcked = read
			ss.write(chunk.AppendAck(ss.out[:0], uint32(read)))
		}
	}
	return used, nil
}

// loop returns the state of the connection's event loop.
func (ss *session) loop() *loopState {
	if ss.ls == nil {
		ss.ls = ss.srv.loopStateOf(ss.c.EventLoop())
	}
	return ss.ls
}

// startBatch makes a publisher's socket read in batches when its vhost
// merges writes (see batch.go).
func (ss *session) startBatch(v *conf.Vhost) {
	if w := batchWindow(v); w > 0 && !ss.batched {
		ss.batched = true
		ss.loop().addBatch(ss, w)
	}
}

// stopBatch reads the socket as bytes come again (the connection stays)
// or, when gone, just forgets it.
func (ss *session) stopBatch() {
	if !ss.batched {
		return
	}
	ss.batched = false
	fd := -1
	if !ss.gone {
		fd = ss.c.Fd()
	}
	ss.loop().removeBatch(ss, fd)
}

func (ss *session) batchFd() int {
	if ss.closing || ss.gone || ss.doomed.Load() {
		return -1
	}
	return ss.c.Fd()
}

// readBatch takes what a batched read got from the socket.
func (ss *session) readBatch(b []byte) bool {
	err := consumeBatch(b, &ss.pend, ss.consume)
	if ss.gone {
		return false // closed inside a write while handling what came
	}
	if err != nil {
		ss.protocolErr = true
		ss.setReason(err.Error())
		ss.closing = true
	}
	if ss.closing {
		_ = ss.c.Close()
		return false
	}
	return true
}

// write sends b on the connection (on its loop). b may be reused after.
// A player in the middle of a media message gets b queued behind it. A peer
// that lets replies pile up unread is disconnected.
func (ss *session) write(b []byte) {
	if len(b) == 0 {
		return
	}
	if p := ss.player; p != nil && len(p.pending) > 0 {
		if !p.queueControl(b) {
			ss.closeUnread()
		}
		return
	}
	ss.bytesOut.Add(uint64(len(b)))
	_, _ = ss.c.Write(b)
	if ss.c.OutboundBuffered() > maxControlBacklog {
		ss.closeUnread()
	}
}

// closeUnread closes a connection whose peer does not read what it asked for.
func (ss *session) closeUnread() {
	ss.setReason("peer does not read its replies (over " + fmt.Sprint(maxControlBacklog>>10) + " KiB or " + fmt.Sprint(maxPending) + " messages queued)")
	ss.closing = true
	_ = ss.c.Close()
}

func (ss *session) handleMessage(msg *chunk.Message) error {
	switch msg.TypeID {
	case chunk.TypeSetChunkSize, chunk.TypeAbort, chunk.TypeAck, chunk.TypeSetPeerBandwidth:
		return nil // the reader applied chunk size and abort; the rest needs nothing from us
	case chunk.TypeWindowAckSize:
		v, err := chunk.ParseUint32(msg.Payload)
		if err != nil {
			return fmt.Errorf("window ack size: %w", err)
		}
		ss.peerWindow = v
		return nil
	case chunk.TypeUserControl:
		uc, err := chunk.ParseUserControl(msg.Payload)
		if err != nil {
			return fmt.Errorf("user control: %w", err)
		}
		if uc.Event == chunk.EventPingRequest {
			ss.write(chunk.AppendPingResponse(ss.out[:0], uc.Timestamp))
		}
		return nil
	case chunk.TypeCommandAMF0, chunk.TypeCommandAMF3:
		body := msg.Payload
		if msg.TypeID == chunk.TypeCommandAMF3 && len(body) > 0 && body[0] == 0 {
			body = body[1:]
		}
		return ss.handleCommand(msg.StreamID, body)
	case chunk.TypeAudio, chunk.TypeVideo, chunk.TypeDataAMF0, chunk.TypeDataAMF3:
		if msg.Placed != nil {
			return ss.handlePlaced(msg)
		}
		return ss.handleMedia(msg.TypeID, msg.Timestamp, msg.Payload)
	case chunk.TypeAggregate:
		if role(ss.role.Load()) != rolePublisher {
			return errors.New("aggregate message from a connection that is not publishing")
		}
		return edge.SplitAggregate(msg.Timestamp, msg.Payload, ss.handleMedia)
	case chunk.TypeSharedObjectAMF0, chunk.TypeSharedObjectAMF3:
		ss.log.Debug("shared object message ignored")
		return nil
	}
	return fmt.Errorf("unknown message type %d", msg.TypeID)
}

func (ss *session) handleMedia(typeID uint8, ts uint32, payload []byte) error {
	if role(ss.role.Load()) != rolePublisher {
		if typeID == chunk.TypeDataAMF0 || typeID == chunk.TypeDataAMF3 {
			ss.log.Debug("data message from a connection that is not publishing ignored")
			return nil
		}
		return fmt.Errorf("media message (type %d) from a connection that is not publishing", typeID)
	}
	ss.lastMedia.Store(time.Now().UnixNano())
	if ss.fwd != nil {
		return ss.fwd.media(typeID, ts, payload)
	}
	if err := ss.hub.Append(ss, typeID, ts, payload); err != nil {
		return fmt.Errorf("publish %s: %w", ss.key, err)
	}
	return nil
}

// placeMax is the longest audio or video message placed in its packet as it
// arrives; a longer one (a big keyframe) is reassembled in the reader's
// buffer, which grows with the bytes that arrived, and copied. A placed
// buffer has the message's full length from its first chunk, so this also
// bounds what a declared but unsent message can make the server hold.
const placeMax = 256 << 10

// Place gives the chunk reader of a publisher a buffer for an audio or
// video message: the packet it will become (chunk.Placer).
func (ss *session) Place(h *chunk.Header) ([]byte, chunk.Layout) {
	switch {
	case ss.fwd != nil:
		return ss.fwd.place(h)
	case ss.hub != nil:
		return hubPlacer{ss.hub}.Place(h)
	}
	return nil, chunk.Layout{}
}

// handlePlaced takes an audio or video message whose payload is already in
// its packet.
func (ss *session) handlePlaced(msg *chunk.Message) error {
	if role(ss.role.Load()) != rolePublisher || ss.hub == nil && ss.fwd == nil {
		return ss.handleMedia(msg.TypeID, msg.Timestamp, msg.AppendPayload(nil)) // no longer publishing: refused there
	}
	ss.lastMedia.Store(time.Now().UnixNano())
	if ss.fwd != nil {
		return ss.fwd.placed(msg)
	}
	if err := ss.hub.AppendPlaced(ss, msg); err != nil {
		return fmt.Errorf("publish %s: %w", ss.key, err)
	}
	return nil
}

// checkTimeouts runs on the ticker goroutine; it only reads atomics and
// closes the connection (which is safe from any goroutine).
func (ss *session) checkTimeouts(now time.Time) {
	cfg := ss.srv.config()
	var reason string
	switch role(ss.role.Load()) {
	case roleNone:
		if ss.http != nil && !ss.connected.Load() && now.Sub(ss.opened) > cfg.HTTP.HeaderTimeout {
			r := fmt.Sprintf("request head not received within http header_timeout %s", cfg.HTTP.HeaderTimeout)
			if !ss.reason.CompareAndSwap(nil, &r) {
				return // answered already
			}
			// The ticker is not the loop: write and close through it.
			_ = ss.c.AsyncWrite(httpflv.AppendResponse(nil, 408, "Connection", "close", "Content-Length", "0"), func(c gnet.Conn, _ error) error {
				return c.Close()
			})
			return
		}
		if !ss.connected.Load() && now.Sub(ss.opened) > cfg.HandshakeTimeout {
			reason = fmt.Sprintf("handshake and connect not done within handshake_timeout %s", cfg.HandshakeTimeout)
		} else if idle := now.Sub(time.Unix(0, ss.lastRead.Load())); idle > cfg.IdleTimeout {
			reason = fmt.Sprintf("idle for %s (idle_timeout %s)", idle.Round(time.Second), cfg.IdleTimeout)
		}
	case rolePublisher:
		v := ss.vhostSnapshot()
		if v != nil && v.Cluster.Mode == conf.ModeRemote {
			ss.checkForwardTimeout(now, v)
		}
		if v != nil && v.PublishIdleTimeout > 0 {
			last := ss.lastMedia.Load()
			if idle := now.Sub(time.Unix(0, last)); idle > v.PublishIdleTimeout {
				reason = fmt.Sprintf("publisher sent no media for %s (publish_idle_timeout %s)", idle.Round(time.Second), v.PublishIdleTimeout)
			}
		}
	case rolePlayer:
		v := ss.vhostSnapshot()
		if since := ss.waitingFor.Load(); since != 0 && v != nil && v.PlayWaitTimeout > 0 {
			if wait := now.Sub(time.Unix(0, since)); wait > v.PlayWaitTimeout {
				reason = fmt.Sprintf("stream not published within play_wait_timeout %s", v.PlayWaitTimeout)
			}
		}
	}
	if reason != "" {
		ss.setReason(reason)
		_ = ss.c.Close()
	}
}

// vhostSnapshot returns the vhost for goroutines other than the loop: the
// pointer is written once, before the role that makes it readable.
func (ss *session) vhostSnapshot() *conf.Vhost {
	return ss.vhostPtr.Load()
}

// close releases what the session holds and logs its summary line.
func (ss *session) close(err error) {
	ss.gone = true
	ss.stopBatch()
	ss.srv.inflight.Add(-ss.held.Swap(0))
	r := ss.endRole(false)
	reason := "client closed"
	if p := ss.reason.Load(); p != nil {
		reason = *p
	} else if err != nil && !errors.Is(err, io.EOF) {
		reason = err.Error()
	}
	in := ss.handshakeBytes
	if ss.rd != nil {
		in += ss.rd.BytesRead()
	}
	attrs := []any{
		"role", r.String(), "protocol", ss.protocol(),
		"vhost", ss.key.Vhost, "app", ss.app, "stream", ss.key.Stream,
		"bytes_in", in, "bytes_out", ss.bytesOut.Load(),
		"duration", time.Since(ss.opened).Round(time.Millisecond).String(),
		"reason", reason,
	}
	if v := ss.vhostPtr.Load(); v != nil && ss.connected.Load() {
		ss.notify(v.Hooks.OnClose, "on_close", v)
	}
	if ss.protocolErr {
		ss.log.Warn("connection closed on bad input", attrs...)
		return
	}
	ss.log.Info("connection closed", attrs...)
}

// notify queues a notification hook about this session, if url is set.
func (ss *session) notify(url, action string, v *conf.Vhost) {
	if url == "" {
		return
	}
	in := ss.handshakeBytes
	if ss.rd != nil {
		in += ss.rd.BytesRead()
	}
	ss.srv.notifier.Notify(url, hook.Request{
		Action: action, ClientID: strconv.FormatUint(ss.id, 10), IP: hostOf(ss.remote),
		Vhost: v.Name, App: ss.app, TcURL: ss.tcURL, Stream: ss.key.Stream,
		PageURL: ss.connectObj.String("pageUrl"), ServerID: ss.srv.serverID,
		SendBytes: ss.bytesOut.Load(), RecvBytes: in, Duration: time.Since(ss.opened).Seconds(),
	}, v.Hooks.Timeout)
}
