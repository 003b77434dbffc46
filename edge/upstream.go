package edge

import (
	"errors"
	"fmt"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// UpstreamMode is what an upstream connection is for.
type UpstreamMode int

// Upstream modes.
const (
	UpstreamPlay    UpstreamMode = iota // pull a stream from an origin
	UpstreamPublish                     // push a stream to an origin
	UpstreamConnect                     // only connect (token traverse), then report the answer
)

func (m UpstreamMode) String() string {
	switch m {
	case UpstreamPlay:
		return "play"
	case UpstreamPublish:
		return "publish"
	}
	return "connect"
}

// UpstreamConfig says what an upstream connection asks of its origin.
type UpstreamConfig struct {
	Mode      UpstreamMode
	TcURL     string     // tcUrl of the connect (vhost transform applied)
	App       string     // app of the connect, with any query
	Stream    string     // stream name to play or publish, with its query
	Extra     amf.Object // more properties for the connect command object (e.g. pageUrl)
	Upnode    amf.Object // debug_upnode: sent as the connect's 4th argument when not nil
	ChunkSize int        // our outgoing chunk size (publish)
	// MaxMessageSize is the largest message accepted from the origin (0:
	// the chunk reader's default, 8 MiB).
	MaxMessageSize int
}

// UpstreamError is an origin's refusal.
type UpstreamError struct {
	Stage       string // connect, createStream, play, publish
	Code        string // e.g. NetConnection.Connect.Rejected, NetStream.Publish.BadName
	Description string
	Redirect    string // tcUrl from ex.redirect, when the origin redirects
}

func (e *UpstreamError) Error() string {
	s := fmt.Sprintf("origin refused %s: %s", e.Stage, e.Code)
	if e.Description != "" {
		s += " (" + e.Description + ")"
	}
	if e.Redirect != "" {
		s += " redirect to " + e.Redirect
	}
	return s
}

type upstreamState int

const (
	stateHandshake upstreamState = iota
	stateConnect
	stateCreateStream
	stateStart
	stateStreaming
)

// Upstream is the client side of an RTMP connection to an origin, driven
// by bytes: Start returns what to send first and Feed consumes what arrives
// and appends what to send back. It is not safe for concurrent use.
type Upstream struct {
	cfg   UpstreamConfig
	state upstreamState
	hs    *chunk.ClientHandshake
	rd    *chunk.Reader
	wr    *chunk.Writer
	sid   uint32
	txn   float64

	window   uint32
	acked    uint64
	hsBytes  uint64
	scratch  []byte
	received uint64 // media messages received (play)

	// OnReady is called when the origin accepted: the stream started
	// (play, publish) or the connect succeeded (connect mode, with the
	// _result values).
	OnReady func(result []any)
	// OnMedia is called for each audio, video and data message (play).
	OnMedia func(typeID uint8, ts uint32, payload []byte) error
	// OnPlaced is called instead for an audio or video message the placer
	// (see SetPlacer) gave the buffer of (play).
	OnPlaced func(msg *chunk.Message) error
	placer   chunk.Placer
}

// SetPlacer makes p decide where the payloads of the audio and video the
// origin sends go (play), once it accepted the play; they reach OnPlaced.
func (u *Upstream) SetPlacer(p chunk.Placer) {
	u.placer = p
	u.rd.SetPlacer(u)
}

// Place is the upstream's chunk.Placer: media of a streaming play go where
// its placer says.
func (u *Upstream) Place(h *chunk.Header) ([]byte, chunk.Layout) {
	if u.placer == nil || u.OnPlaced == nil || u.cfg.Mode != UpstreamPlay || u.state != stateStreaming ||
		h.TypeID != chunk.TypeAudio && h.TypeID != chunk.TypeVideo {
		return nil, chunk.Layout{}
	}
	return u.placer.Place(h)
}

// NewUpstream returns an upstream client for cfg.
func NewUpstream(cfg UpstreamConfig) *Upstream {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 4096
	}
	return &Upstream{
		cfg: cfg,
		hs:  chunk.NewClientHandshake(true),
		rd:  chunk.NewReader(chunk.ReaderConfig{MaxMessageSize: cfg.MaxMessageSize}),
		wr:  chunk.NewWriter(chunk.DefaultChunkSize),
	}
}

// Config returns what the upstream asks for.
func (u *Upstream) Config() UpstreamConfig { return u.cfg }

// Streaming reports whether the origin accepted the play or publish.
func (u *Upstream) Streaming() bool { return u.state == stateStreaming }

// Received returns the number of media messages received.
func (u *Upstream) Received() uint64 { return u.received }

// Start returns the first bytes to send: C0 and C1.
func (u *Upstream) Start() []byte { return u.hs.C0C1() }

// Feed consumes bytes from the origin and appends what must be sent back
// to out. It returns the bytes consumed.
func (u *Upstream) Feed(buf []byte, out []byte) (int, []byte, error) {
	used := 0
	if u.state == stateHandshake {
		n, reply, done, err := u.hs.Feed(buf)
		used += n
		u.hsBytes += uint64(n)
		if err != nil {
			return used, out, fmt.Errorf("upstream handshake: %w", err)
		}
		if !done {
			return used, out, nil
		}
		out = append(out, reply...)
		u.hs = nil // its 3 KiB of handshake buffers are not needed again
		out = u.sendConnect(out)
	}
	for {
		n, msg, err := u.rd.Read(buf[used:])
		used += n
		if err != nil {
			return used, out, fmt.Errorf("upstream chunk stream: %w", err)
		}
		if msg == nil {
			break
		}
		if out, err = u.handle(msg, out); err != nil {
			return used, out, err
		}
	}
	if u.window > 0 {
		if read := u.rd.BytesRead() + u.hsBytes; read-u.acked >= uint64(u.window) {
			u.acked = read
			out = chunk.AppendAck(out, uint32(read))
		}
	}
	return used, out, nil
}

func (u *Upstream) sendConnect(out []byte) []byte {
	obj := amf.Object{
		{Key: "app", Value: u.cfg.App},
		{Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: "FMLE/3.0 (compatible; rtmpedge)"},
		{Key: "tcUrl", Value: u.cfg.TcURL},
	}
	if u.cfg.Mode != UpstreamPublish {
		obj = append(obj,
			amf.Property{Key: "fpad", Value: false},
			amf.Property{Key: "capabilities", Value: 15.0},
			amf.Property{Key: "audioCodecs", Value: 4071.0},
			amf.Property{Key: "videoCodecs", Value: 252.0},
			amf.Property{Key: "videoFunction", Value: 1.0})
	}
	obj = append(obj, u.cfg.Extra...)
	args := []any{"connect", u.nextTxn(), obj}
	if u.cfg.Upnode != nil {
		args = append(args, u.cfg.Upnode)
	}
	out = chunk.AppendWindowAckSize(out, 2500000)
	if u.cfg.Mode == UpstreamPublish {
		out = chunk.AppendSetChunkSize(out, uint32(u.cfg.ChunkSize))
		u.wr.SetChunkSize(u.cfg.ChunkSize)
	}
	u.state = stateConnect
	return u.command(out, 0, args...)
}

func (u *Upstream) nextTxn() float64 {
	u.txn++
	return u.txn
}

func (u *Upstream) command(out []byte, sid uint32, vals ...any) []byte {
	body, err := amf.AppendAll(u.scratch[:0], vals...)
	if err != nil {
		// Only the connect object carries caller-provided values, and those
		// come from decoded AMF: they encode.
		panic("edge: encoding an upstream command: " + err.Error())
	}
	u.scratch = body
	return u.wr.Append(out, chunk.Header{CSID: 3, TypeID: chunk.TypeCommandAMF0, StreamID: sid}, body)
}

func (u *Upstream) handle(msg *chunk.Message, out []byte) ([]byte, error) {
	switch msg.TypeID {
	case chunk.TypeWindowAckSize:
		v, err := chunk.ParseUint32(msg.Payload)
		if err != nil {
			return out, fmt.Errorf("upstream window ack size: %w", err)
		}
		u.window = v
	case chunk.TypeUserControl:
		uc, err := chunk.ParseUserControl(msg.Payload)
		if err != nil {
			return out, fmt.Errorf("upstream user control: %w", err)
		}
		if uc.Event == chunk.EventPingRequest {
			out = chunk.AppendPingResponse(out, uc.Timestamp)
		}
	case chunk.TypeCommandAMF0, chunk.TypeCommandAMF3:
		body := msg.Payload
		if msg.TypeID == chunk.TypeCommandAMF3 && len(body) > 0 && body[0] == 0 {
			body = body[1:]
		}
		vals, err := amf.DecodeAll(body)
		if err != nil {
			return out, fmt.Errorf("upstream command: %w", err)
		}
		return u.onCommand(vals, out)
	case chunk.TypeAudio, chunk.TypeVideo, chunk.TypeDataAMF0, chunk.TypeDataAMF3:
		if u.cfg.Mode != UpstreamPlay || u.state != stateStreaming {
			return out, nil // e.g. |RtmpSampleAccess before Play.Start
		}
		u.received++
		if msg.Placed != nil {
			return out, u.OnPlaced(msg)
		}
		if u.OnMedia != nil {
			return out, u.OnMedia(msg.TypeID, msg.Timestamp, msg.Payload)
		}
	case chunk.TypeAggregate:
		if u.cfg.Mode == UpstreamPlay && u.state == stateStreaming && u.OnMedia != nil {
			u.received++
			return out, SplitAggregate(msg.Timestamp, msg.Payload, u.OnMedia)
		}
	}
	return out, nil
}

func statusOf(vals []any) amf.Object {
	for _, v := range vals[min(len(vals), 2):] {
		if o, ok := v.(amf.Object); ok {
			return o
		}
	}
	return nil
}

func (u *Upstream) refusal(stage string, vals []any) error {
	st := statusOf(vals)
	e := &UpstreamError{Stage: stage, Code: st.String("code"), Description: st.String("description")}
	if ex, ok := st.Get("ex"); ok {
		if exo, ok := ex.(amf.Object); ok {
			e.Redirect = exo.String("redirect")
		}
	}
	if e.Code == "" {
		e.Code = "unknown"
	}
	return e
}

func (u *Upstream) onCommand(vals []any, out []byte) ([]byte, error) {
	if len(vals) == 0 {
		return out, errors.New("upstream command: empty")
	}
	name, _ := vals[0].(string)
	switch u.state {
	case stateConnect:
		switch name {
		case "_result":
			if u.cfg.Mode == UpstreamConnect {
				u.state = stateStreaming
				if u.OnReady != nil {
					u.OnReady(vals)
				}
				return out, nil
			}
			u.state = stateCreateStream
			if u.cfg.Mode == UpstreamPublish {
				out = u.command(out, 0, "releaseStream", u.nextTxn(), nil, u.cfg.Stream)
				out = u.command(out, 0, "FCPublish", u.nextTxn(), nil, u.cfg.Stream)
			}
			return u.command(out, 0, "createStream", u.nextTxn(), nil), nil
		case "_error":
			return out, u.refusal("connect", vals)
		}
	case stateCreateStream:
		switch name {
		case "_result":
			if len(vals) < 4 {
				return out, nil // releaseStream's or FCPublish's answer
			}
			id, ok := vals[3].(float64)
			if !ok {
				return out, nil
			}
			u.sid = uint32(id)
			u.state = stateStart
			if u.cfg.Mode == UpstreamPublish {
				return u.command(out, u.sid, "publish", 0.0, nil, u.cfg.Stream, "live"), nil
			}
			out = u.command(out, u.sid, "play", 0.0, nil, u.cfg.Stream, -2.0)
			return chunk.AppendSetBufferLength(out, u.sid, 3000), nil
		case "_error":
			if len(vals) >= 2 {
				if txn, _ := vals[1].(float64); txn == u.txn {
					return out, u.refusal("createStream", vals)
				}
			}
		}
	case stateStart, stateStreaming:
		if name != "onStatus" {
			return out, nil
		}
		st := statusOf(vals)
		code := st.String("code")
		if st.String("level") == "error" {
			return out, u.refusal(u.cfg.Mode.String(), vals)
		}
		if u.state == stateStart && (code == "NetStream.Play.Start" || code == "NetStream.Publish.Start") {
			u.state = stateStreaming
			if u.OnReady != nil {
				u.OnReady(vals)
			}
		}
	}
	return out, nil
}

// StreamID returns the message stream id the origin gave (publish, play;
// 0 until it answered createStream).
func (u *Upstream) StreamID() uint32 { return u.sid }

// ChunkSize returns the chunk size the upstream announces and sends at
// (publish).
func (u *Upstream) ChunkSize() int { return u.cfg.ChunkSize }
