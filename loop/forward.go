package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/pool"
)

// fwdPacket is one message of a forwarded publish as the origin is sent
// it: chunked with a type-0 header at the upstream's chunk size, in a
// buffer carved from the forwarder's slab (its payload placed there by
// the publisher's chunk reader, or copied once for the messages that are
// not placed). The same bytes are kept to resume on another origin.
type fwdPacket struct {
	wire []byte
	n    int // payload bytes, for cluster.publish_buffer
}

// forwarder pushes a publish made on an edge vhost to an origin, failing
// over to the next origin without disconnecting the publisher. It lives on
// the publisher's event loop, and so does its upstream connection.
type forwarder struct {
	ss       *session
	target   upstreamTarget
	attempts *edge.Attempts
	log      *slog.Logger

	conn      *outbound
	locating  bool // asking the registry where the stream is
	started   bool // the publisher was told NetStream.Publish.Start
	connected bool // the current upstream accepted the publish
	stopped   bool

	chunkSize int // the upstream's outgoing chunk size (the same for every origin)
	slab      *pool.Slab
	// To resume on another origin: the headers, and every message since
	// the last keyframe (bounded by cluster.publish_buffer).
	headers  [3]fwdPacket // audio, video, metadata
	gop      []fwdPacket
	gopBytes int
	dropping bool // over the buffer: wait for the next keyframe
	// Messages for the origin, written together at the end of the read
	// that brought them (one writev per batch of the publisher's bytes).
	pending [][]byte
}

// startForward begins forwarding the session's publish to the origins.
func (s *Server) startForward(ss *session, v *conf.Vhost, t upstreamTarget) {
	f := &forwarder{
		ss: ss, target: t, chunkSize: s.config().ChunkSize, slab: pool.NewSlab(fwdSlabSize),
		attempts: s.originsOf(v).NewAttempts(ss.key.App+"/"+ss.key.Stream, v.Cluster.RetryMin, v.Cluster.RetryMax),
		log:      ss.log.With("vhost", v.Name, "app", ss.key.App, "stream", ss.key.Stream, "role", "forward"),
	}
	ss.fwd = f
	ss.fwdLostSince.Store(time.Now().UnixNano())
	f.connect()
}

// connect dials the next origin. A new round first asks the registry (off
// the loop) which origin has the stream, and starts there: a publish that
// comes back after a failover finds its origin, and one that moved finds
// where it went.
func (f *forwarder) connect() {
	if f.stopped || f.locating {
		return
	}
	if f.attempts.NewRound() {
		loop := f.ss.c.EventLoop()
		f.locating = f.ss.srv.locateOrigin(upstreamKey(f.target.vhost, f.ss.key), func(addr string) {
			_ = loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				f.locating = false
				f.attempts.Prefer(addr)
				f.dial()
				return nil
			}))
		})
		if f.locating {
			return
		}
	}
	f.dial()
}

// dial dials the next origin, or waits when every origin failed.
func (f *forwarder) dial() {
	if f.stopped {
		return
	}
	addr, wait, ok := f.attempts.Next(time.Now())
	if !ok {
		f.wait(wait)
		return
	}
	s := f.ss.srv
	f.target.vhost = s.current(f.target.vhost) // a reload applies from the next connect
	c := f.target.vhost.Cluster
	up := edge.NewUpstream(edge.UpstreamConfig{
		Mode:      edge.UpstreamPublish,
		TcURL:     f.target.tcURL(addr),
		App:       f.target.app,
		Stream:    f.target.stream,
		Upnode:    s.upnode(f.target.vhost, s.localAddr()),
		ChunkSize: f.chunkSize,
	})
	f.conn = s.dialUpstream(addr, c.ConnectTimeout, c.CommandTimeout, 0, 0, up, f, f.ss.c.EventLoop(), f.log)
}

// wait retries after a backoff once every origin failed in a round.
func (f *forwarder) wait(d time.Duration) {
	f.log.Warn("every origin failed, retrying", "in", d.String())
	loop := f.ss.c.EventLoop()
	time.AfterFunc(d, func() {
		_ = loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			f.connect()
			return nil
		}))
	})
}

func (f *forwarder) upstreamReady(o *outbound, _ []any) {
	if o != f.conn || f.stopped {
		return
	}
	f.connected = true
	f.ss.fwdLostSince.Store(0)
	f.attempts.Worked(o.addr)
	if !f.started {
		f.started = true
		f.ss.write(chunk.AppendUserControl(f.ss.out[:0], chunk.EventStreamBegin, edge.StreamID))
		f.ss.sendStatus("status", "NetStream.Publish.Start", fmt.Sprintf("%s is now published.", f.ss.key.Stream))
		f.log.Info("forwarding publish", "origin", o.addr)
		return
	}
	f.resume()
	f.log.Info("forwarding resumed on another origin", "origin", o.addr, "resent_messages", len(f.gop))
}

// resume sends the current origin the headers, then everything since the
// last keyframe: the bytes kept, as they were sent to the previous one.
func (f *forwarder) resume() {
	for _, h := range f.headers {
		if h.wire != nil {
			f.queue(h)
		}
	}
	for _, p := range f.gop {
		f.queue(p)
	}
	f.flush()
}

func (f *forwarder) upstreamClosed(o *outbound, err error) {
	if o != f.conn || f.stopped {
		return
	}
	f.conn, f.connected = nil, false
	if f.ss.fwdLostSince.Load() == 0 {
		f.ss.fwdLostSince.Store(time.Now().UnixNano())
	}
	var ue *edge.UpstreamError
	if errors.As(err, &ue) && ue.Redirect != "" {
		if to, ok := f.attempts.Redirect(ue.Redirect); ok {
			f.log.Info("origin redirects", "origin", o.addr, "to", to)
			f.connect()
			return
		}
	}
	f.ss.srv.originFailed(o.addr, f.attempts.Failed(o.addr, f.started && o.streaming.Load(), time.Now()))
	if errors.As(err, &ue) && f.started {
		// A publish resuming after a failover: the stream may still be
		// claimed by the origin it left (which releases it when it sees the
		// old connection go) or be coming back there. Keep trying, within
		// publish_timeout.
		f.log.Warn("origin refused the resumed publish, trying the next", "origin", o.addr, "code", ue.Code, "description", ue.Description)
		f.connect()
		return
	}
	if ue != nil {
		// The origin's answer is the publisher's answer.
		f.log.Warn("origin refused the publish", "origin", o.addr, "code", ue.Code, "description", ue.Description)
		f.ss.sendStatus("error", ue.Code, fmt.Sprintf("origin refused: %s", ue.Description))
		f.ss.setReason("origin refused the publish: " + ue.Code)
		_ = f.ss.c.Close()
		f.stopped = true
		return
	}
	f.log.Warn("origin connection failed, trying the next", "origin", o.addr, "err", err.Error(), "started", f.started)
	f.connect()
}

// fwdSlabSize is the block size of a forwarder's slab (a packet over half
// of it gets a buffer of its own).
const fwdSlabSize = 16 << 10

// place gives the publisher's chunk reader a buffer for an audio or video
// message: its chunked form for the origin, carved from the slab.
func (f *forwarder) place(h *chunk.Header) ([]byte, chunk.Layout) {
	if h.TypeID != chunk.TypeAudio && h.TypeID != chunk.TypeVideo || h.Length > placeMax {
		return nil, chunk.Layout{}
	}
	l := chunk.ChunkLayout(edge.MediaCSID(h.TypeID), h.Timestamp >= 0xFFFFFF, f.chunkSize)
	return f.slab.Alloc(l.End(int(h.Length))), l
}

// placed forwards an audio or video message the reader placed.
func (f *forwarder) placed(msg *chunk.Message) error {
	hdr := chunk.Header{CSID: edge.MediaCSID(msg.TypeID), Timestamp: msg.Timestamp, TypeID: msg.TypeID, StreamID: f.streamID()}
	wire, ok := chunk.ChunkPlaced(msg.Placed, msg.Layout, hdr, int(msg.Length))
	if !ok {
		return f.media(msg.TypeID, msg.Timestamp, msg.AppendPayload(nil)) // not laid out for this upstream: never, in practice
	}
	f.add(fwdPacket{wire: wire, n: int(msg.Length)}, edge.Classify(msg.TypeID, msg.Head(2)))
	return nil
}

// media forwards one message from the publisher that was not placed (data,
// the parts of an aggregate, a long one): chunked into the slab.
func (f *forwarder) media(typeID uint8, ts uint32, payload []byte) error {
	var m edge.Media
	switch typeID {
	case chunk.TypeAudio, chunk.TypeVideo:
		m = edge.Classify(typeID, payload)
	default:
		_, isMeta := edge.MetadataBody(typeID, payload)
		m = edge.Media{Kind: edge.KindData, SeqHeader: isMeta}
	}
	hdr := chunk.Header{CSID: edge.MediaCSID(typeID), Timestamp: ts, TypeID: typeID, StreamID: f.streamID()}
	wire := chunk.AppendMessage(f.slab.Alloc(chunk.WireSize(hdr, len(payload), f.chunkSize))[:0], hdr, payload, f.chunkSize)
	f.add(fwdPacket{wire: wire, n: len(payload)}, m)
	return nil
}

// add keeps a message for a resume and queues it for the origin.
func (f *forwarder) add(p fwdPacket, m edge.Media) {
	if f.stopped {
		return
	}
	if m.SeqHeader {
		f.headers[m.Kind-edge.KindAudio] = p
	} else {
		f.remember(p, m)
	}
	if f.connected {
		f.queue(p)
	}
}

// streamID is the message stream id the current origin gave the publish
// (1, what servers answer createStream with, while there is none).
func (f *forwarder) streamID() uint32 {
	if f.connected {
		return f.conn.up.StreamID()
	}
	return 1
}

// queue adds a message to the next write to the origin, its stream id
// made the current origin's (a message kept from another origin may carry
// another; the bytes are no longer in any write: gnet copies what a socket
// does not take).
func (f *forwarder) queue(p fwdPacket) {
	if sid := f.conn.up.StreamID(); chunk.StreamIDOf(p.wire) != sid {
		chunk.SetStreamID(p.wire, sid)
	}
	f.pending = append(f.pending, p.wire)
}

// flush writes the queued messages to the origin, in one writev.
func (f *forwarder) flush() {
	if len(f.pending) == 0 {
		return
	}
	if f.connected && f.conn != nil && f.conn.c != nil {
		_, _ = f.conn.c.Writev(f.pending)
	}
	clear(f.pending)
	f.pending = f.pending[:0]
}

// remember keeps a message for a resume, from the last keyframe on.
func (f *forwarder) remember(p fwdPacket, m edge.Media) {
	if m.Kind == edge.KindVideo && m.Keyframe {
		clear(f.gop)
		f.gop, f.gopBytes, f.dropping = f.gop[:0], 0, false
	}
	if f.dropping {
		return
	}
	if f.gopBytes+p.n > int(f.target.vhost.Cluster.PublishBuffer) {
		clear(f.gop)
		f.gop, f.gopBytes, f.dropping = f.gop[:0], 0, true
		f.log.Warn("publish buffer full, dropping to the next keyframe", "publish_buffer", f.target.vhost.Cluster.PublishBuffer.String())
		return
	}
	f.gop = append(f.gop, p)
	f.gopBytes += p.n
}

// stop ends forwarding; the upstream connection closes after its pending
// bytes are written.
func (f *forwarder) stop() {
	f.stopped = true
	if f.conn != nil {
		f.conn.close(errors.New("publisher left"))
		f.conn = nil
	}
}

// checkForwardTimeout closes a forwarded publisher that has had no origin
// for publish_timeout; called by the ticker.
func (ss *session) checkForwardTimeout(now time.Time, v *conf.Vhost) {
	since := ss.fwdLostSince.Load()
	if since == 0 || now.Sub(time.Unix(0, since)) <= v.Cluster.PublishTimeout {
		return
	}
	ss.fwdLostSince.Store(0)
	_ = ss.c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if ss.fwd == nil || ss.fwd.stopped {
			return nil
		}
		ss.fwd.stop()
		ss.sendStatus("error", "NetStream.Publish.Failed", fmt.Sprintf("no origin accepted the stream within %s", v.Cluster.PublishTimeout))
		ss.setReason(fmt.Sprintf("no origin accepted the forwarded publish within publish_timeout %s", v.Cluster.PublishTimeout))
		_ = ss.c.Close()
		return nil
	}))
}
