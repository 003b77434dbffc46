package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
)

// Player states.
const (
	StateConnecting int32 = iota
	StatePlaying
	StateFailed
	StateDone
)

// phasePlaying is the player's phase once the server accepted the play
// (RTMP: after connect, createStream and play; FLV: after the response head).
const phasePlaying = 3

// StallGap is the longest silence between media deliveries that is not a
// stall.
const StallGap = 500 * time.Millisecond

// Player plays one stream and measures what it receives. Its counters are
// atomics, read while it runs.
type Player struct {
	URL string
	Raw bool // count bytes only (the floor server speaks no RTMP)

	State     atomic.Int32
	Bytes     atomic.Int64
	Messages  atomic.Int64
	Video     atomic.Int64
	Handshake atomic.Int64 // ns: TCP connect + RTMP handshake
	FirstKey  atomic.Int64 // ns from dial to the first video keyframe (raw: first byte)
	// Media time against wall time: at wall time Ref (unix ns) the player
	// had received media up to MediaNs after the first message; Ref is the
	// best (earliest) such reference seen, so LagAt is how far behind
	// real-time delivery the player is, counting silences as they happen.
	Ref     atomic.Int64
	MediaNs atomic.Int64
	Stalls  atomic.Int64 // deliveries more than StallGap after the previous one
	MaxGap  atomic.Int64 // ns
	Reason  atomic.Pointer[string]
	// Started is set when the server accepted the play (NetStream.Play.Start;
	// raw: connected): the player was admitted.
	Started atomic.Bool
	// RefusedAfter is the ns from sending play to an error status answering
	// it (0: not refused), e.g. NetStream.Play.Failed at a capacity limit.
	RefusedAfter atomic.Int64
	// MinBehind is the message with the lowest (wall time - media time)
	// since the caller last swapped nil in. Its growth from one span to a
	// later one is how far the player fell behind the stream in between,
	// without the jitter of batched writes.
	MinBehind atomic.Pointer[BehindMark]

	start     time.Time
	playSent  time.Time
	lastMedia time.Time
	haveBase  bool
	base      time.Duration // min over messages of (wall - media time)
	ts0       uint32
	wall0     time.Time
	conn      net.Conn
	wr        *chunk.Writer
	out       []byte
	phase     int
}

func (p *Player) fail(err error) {
	s := err.Error()
	p.Reason.CompareAndSwap(nil, &s)
	p.State.Store(StateFailed)
}

// Run plays until ctx is done or the connection fails.
func (p *Player) Run(ctx context.Context) {
	p.start = time.Now()
	if err := p.run(ctx); err != nil && ctx.Err() == nil {
		p.fail(err)
		return
	}
	p.State.CompareAndSwap(StatePlaying, StateDone)
	p.State.CompareAndSwap(StateConnecting, StateDone)
}

func (p *Player) run(ctx context.Context) error {
	var addr, tcURL, app, stream string
	var err error
	switch {
	case p.Raw:
		addr = p.URL
	case isFLVURL(p.URL):
		addr, _, _, _, err = flvTarget(p.URL)
	default:
		addr, tcURL, app, stream, err = URL(p.URL)
	}
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	p.conn = conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	buf := make([]byte, 64<<10)
	switch {
	case p.Raw:
		return p.readRaw(buf)
	case isFLVURL(p.URL):
		return p.playFLV(buf)
	}
	return p.playRTMP(buf, tcURL, app, stream)
}

// readRaw counts the bytes of a server that speaks no protocol (the floor).
func (p *Player) readRaw(buf []byte) error {
	p.Handshake.Store(int64(time.Since(p.start)))
	p.Started.Store(true)
	p.State.Store(StatePlaying)
	p.phase = phasePlaying
	for {
		n, err := p.conn.Read(buf)
		if n > 0 && p.FirstKey.Load() == 0 {
			p.FirstKey.Store(int64(time.Since(p.start)))
		}
		p.received(n)
		if err != nil {
			return err
		}
	}
}

// playRTMP plays stream over p.conn: handshake, connect, createStream,
// play, then messages until the connection ends.
func (p *Player) playRTMP(buf []byte, tcURL, app, stream string) error {
	conn := p.conn
	// Handshake.
	hs := chunk.NewClientHandshake(true)
	if _, err := conn.Write(hs.C0C1()); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	got := 0
	for {
		n, err := conn.Read(buf[got:])
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		got += n
		used, c2, done, err := hs.Feed(buf[:got])
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		if done {
			if _, err := conn.Write(c2); err != nil {
				return fmt.Errorf("handshake: %w", err)
			}
			got = copy(buf, buf[used:got])
			break
		}
	}
	p.Handshake.Store(int64(time.Since(p.start)))
	p.wr = chunk.NewWriter(chunk.DefaultChunkSize)
	p.command(0, "connect", 1.0, amf.Object{
		{Key: "app", Value: app}, {Key: "flashVer", Value: "LNX 9,0,124,2"}, {Key: "tcUrl", Value: tcURL},
		{Key: "fpad", Value: false}, {Key: "capabilities", Value: 15.0},
		{Key: "audioCodecs", Value: 4071.0}, {Key: "videoCodecs", Value: 252.0}, {Key: "videoFunction", Value: 1.0},
	})
	if err := p.flush(); err != nil {
		return err
	}
	sk := newSkimmer()
	handle := func(m *skimMsg) error { return p.onMessage(m, stream) }
	for {
		if got > 0 {
			used, err := sk.feed(buf[:got], handle)
			if err != nil {
				return err
			}
			got = copy(buf, buf[used:got])
			if err := p.flush(); err != nil {
				return err
			}
		}
		n, err := conn.Read(buf[got:])
		p.received(n)
		got += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("server closed the connection")
			}
			return err
		}
	}
}

// received counts n bytes read; once the play started, a read is a
// delivery.
func (p *Player) received(n int) {
	if n <= 0 {
		return
	}
	p.Bytes.Add(int64(n))
	if p.phase == phasePlaying {
		p.delivered(time.Now())
	}
}

// delivered records a read that brought media.
func (p *Player) delivered(now time.Time) {
	if !p.lastMedia.IsZero() {
		gap := now.Sub(p.lastMedia)
		if gap > StallGap {
			p.Stalls.Add(1)
		}
		if int64(gap) > p.MaxGap.Load() {
			p.MaxGap.Store(int64(gap))
		}
	}
	p.lastMedia = now
}

func (p *Player) command(sid uint32, vals ...any) {
	body, _ := amf.AppendAll(nil, vals...)
	p.out = p.wr.Append(p.out, chunk.Header{CSID: 3, TypeID: chunk.TypeCommandAMF0, StreamID: sid}, body)
}

func (p *Player) flush() error {
	if len(p.out) == 0 {
		return nil
	}
	_, err := p.conn.Write(p.out)
	p.out = p.out[:0]
	return err
}

// message is the accounting every message gets, whatever the protocol:
// RTMP messages and FLV tags alike.
func (p *Player) message(m *skimMsg) {
	p.Messages.Add(1)
	if m.TypeID == chunk.TypeVideo || m.TypeID == chunk.TypeAudio {
		p.media(m)
	}
}

func (p *Player) onMessage(m *skimMsg, stream string) error {
	p.message(m)
	switch m.TypeID {
	case chunk.TypeUserControl:
		if uc, err := chunk.ParseUserControl(m.Payload); err == nil && uc.Event == chunk.EventPingRequest {
			p.out = chunk.AppendPingResponse(p.out, uc.Timestamp)
		}
	case chunk.TypeCommandAMF0:
		vals, err := amf.DecodeAll(m.Payload)
		if err != nil || len(vals) == 0 {
			return fmt.Errorf("bad command from server: %v", err)
		}
		name, _ := vals[0].(string)
		if st := statusOf(vals); st != nil && st.String("level") == "error" {
			if p.phase == 2 {
				p.RefusedAfter.Store(max(1, int64(time.Since(p.playSent))))
			}
			return &StatusError{Code: st.String("code"), Description: st.String("description")}
		}
		switch {
		case p.phase == 0 && name == "_result":
			p.phase = 1
			p.command(0, "createStream", 2.0, nil)
		case p.phase == 1 && name == "_result":
			p.phase = 2
			sid := 1.0
			if len(vals) > 3 {
				if v, ok := vals[3].(float64); ok {
					sid = v
				}
			}
			p.command(uint32(sid), "play", 0.0, nil, stream, -2.0)
			p.out = chunk.AppendSetBufferLength(p.out, uint32(sid), 1000)
			p.playSent = time.Now() // flushed right after this message is handled
		case p.phase == 2 && name == "onStatus":
			if statusOf(vals).String("code") == "NetStream.Play.Start" {
				p.phase = phasePlaying
				p.Started.Store(true)
				p.State.Store(StatePlaying)
			}
		}
	}
	return nil
}

func (p *Player) media(m *skimMsg) {
	now := time.Now()
	if m.TypeID == chunk.TypeVideo {
		p.Video.Add(1)
		key := len(m.Head) >= 2 && m.Head[0]>>4&7 == 1 && (m.Head[0]&0x80 != 0 || m.Head[1] == 1)
		if key && p.FirstKey.Load() == 0 {
			p.FirstKey.Store(int64(now.Sub(p.start)))
		}
	}
	if !p.haveBase {
		p.haveBase, p.ts0, p.wall0 = true, m.Timestamp, now
		p.Ref.Store(now.UnixNano())
		p.lowerMinBehind(now, 0)
		return
	}
	media := time.Duration(int32(m.Timestamp-p.ts0)) * time.Millisecond
	behind := now.Sub(p.wall0) - media
	p.lowerMinBehind(now, behind)
	if behind < p.base {
		p.base = behind
		p.Ref.Store(p.wall0.Add(p.base).UnixNano())
	}
	if int64(media) > p.MediaNs.Load() {
		p.MediaNs.Store(int64(media))
	}
}

// BehindMark is a message's arrival: when, and how far its media time was
// behind wall time (against the player's first message).
type BehindMark struct {
	At     time.Time
	Behind time.Duration
}

func (p *Player) lowerMinBehind(now time.Time, behind time.Duration) {
	for {
		old := p.MinBehind.Load()
		if old != nil && behind >= old.Behind {
			return
		}
		if p.MinBehind.CompareAndSwap(old, &BehindMark{At: now, Behind: behind}) {
			return
		}
	}
}

// LagAt returns how far the player's media is behind wall time at now.
func (p *Player) LagAt(now time.Time) time.Duration {
	ref := p.Ref.Load()
	if ref == 0 {
		return 0
	}
	return max(0, time.Duration(now.UnixNano()-ref-p.MediaNs.Load()))
}
