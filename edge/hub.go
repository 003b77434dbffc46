// Package edge owns streams: the per-stream hub that turns published media
// into chunked packets once and keeps the ring, GOP cache and sequence
// headers that every player of the stream is served from. Media enters a
// hub from a local publisher or (in edge mode) from an upstream ingester.
package edge

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/flv"
	"github.com/rtmpedge/rtmpedge/httpflv"
	"github.com/rtmpedge/rtmpedge/pool"
)

// ErrStreamBusy is returned by Publish when the stream already has a publisher.
var ErrStreamBusy = errors.New("stream already has a publisher")

// ErrNotPublisher is returned by Append when the caller is not the stream's
// current publisher (for example a publisher that was replaced).
var ErrNotPublisher = errors.New("not the stream's publisher")

// Key names a stream: vhost, app and the stream name without its query.
type Key struct {
	Vhost, App, Stream string
}

func (k Key) String() string { return k.Vhost + "/" + k.App + "/" + k.Stream }

// Packet is one message serialized as RTMP chunks for StreamID on the
// server's outgoing chunk size. Data is immutable and shared by every
// player. It lies in Block, a recycled block (see pool.Blocks), or in a
// buffer of its own (Block nil) that the garbage collector reclaims.
type Packet struct {
	// Data is the message chunked for RTMP players. Right after it, in the
	// same buffer (within Data's capacity), are the TagLen bytes of Tag.
	Data      []byte
	Block     *pool.Block // to Pin while a part of Data is kept beyond a flush; nil: not recycled
	Len       uint32      // payload length
	TagLen    uint8       // length of Tag (0: none)
	WSHead    uint8       // length of the WebSocket frame header at the start of Tag
	Body      uint8       // offset of the payload's first byte in Data (the first chunk's header)
	Cont      uint8       // header size of each continuation chunk in Data
	Timestamp uint32
	Kind      Kind
	Keyframe  bool
}

// Tag returns what HTTP-FLV players get around the message's payload: a
// WebSocket frame header (WSHead bytes), the FLV tag header and the
// PreviousTagSize trailer. Nil for notifications, which are RTMP only.
func (p *Packet) Tag() []byte {
	if p.TagLen == 0 {
		return nil
	}
	return p.Data[len(p.Data) : len(p.Data)+int(p.TagLen)]
}

// AppendFLV appends the packet as an FLV tag to iov, as slices of the
// shared buffers: the tag header (inside a WebSocket binary frame when
// ws), the payload as the bodies of its RTMP chunks, and the
// PreviousTagSize. chunkSize is the hub's. A notification appends nothing.
func (p *Packet) AppendFLV(iov [][]byte, chunkSize int, ws bool) [][]byte {
	tag := p.Tag()
	if tag == nil {
		return iov
	}
	head := int(p.WSHead)
	if ws {
		head = 0
	}
	mid := int(p.WSHead) + flv.TagHeaderSize
	iov = append(iov, tag[head:mid])
	d, rest := p.Data[p.Body:], int(p.Len)
	for rest > 0 {
		n := min(rest, chunkSize)
		iov = append(iov, d[:n])
		rest -= n
		if rest > 0 {
			d = d[n+int(p.Cont):]
		}
	}
	return append(iov, tag[mid:])
}

// Options configure a hub when it is created.
type Options struct {
	ChunkSize        int  // outgoing chunk size shared by all players
	GopCache         bool // keep the packets since the last keyframe for fast start
	GopCacheMaxBytes int  // over it the GOP is dropped until the next keyframe
	// BacklogMaxBytes bounds the bytes kept outside the GOP for players
	// that still need them (players skip ahead past their own bound in
	// media time, which moves what they need).
	BacklogMaxBytes int
	// Blocks recycles the blocks packets are carved from; nil: they are
	// left to the garbage collector. Every reader of a Snapshot must then
	// be inside a pool.Reader's Enter/Exit while it uses the packets, and
	// pin a packet's Block to keep a part of it longer.
	Blocks *pool.Blocks
}

// Waker is told about every packet appended to a hub: its timestamp and
// kind. Implementations decide whether to schedule a flush; force asks for
// one now (headers, notifications, end of stream). Wake is called without
// the hub's lock held, from the publisher's goroutine.
//
// Need returns the sequence number of the oldest packet the waker's players
// still have to send (NoNeed when none): the hub keeps packets from there on,
// up to Options.BacklogMaxBytes. Need is called with the hub's lock
// held and must not call back into the hub. A player's waker must be added
// before the player takes its cursor (Join): a hub without wakers keeps
// nothing outside its GOP cache.
type Waker interface {
	Wake(ts uint32, kind Kind, force bool)
	Need() uint64
}

// NoNeed is what Waker.Need returns when no player needs old packets.
const NoNeed = ^uint64(0)

// Snapshot is what a fan-out writer copies out of a hub under its lock:
// the current headers and the packets from a cursor to the head.
type Snapshot struct {
	Headers  []Packet // onMetaData, video and audio sequence headers, as present
	Packets  []Packet // packets with sequence numbers Start..Head-1
	Start    uint64
	Head     uint64
	Gop      uint64 // the GOP cache's first packet (its keyframe), or Head when there is none
	LastTS   uint32 // timestamp of the newest media, the live edge players' lag is measured from
	HasVideo bool
}

const (
	minRing = 256
	maxRing = 1 << 16
	// Packets outside the GOP that no player needs (players' needs are
	// published by their groups, see Waker.Need) are kept only this far
	// back: a margin for a player joining while a keyframe arrives (its
	// need is published just after it took its cursor). It was 64 packets
	// and 1 MiB, about 130 KiB of a 1.2 Mbit/s stream: per stream, more
	// than everything else an edge keeps for it but the GOP.
	keepPackets   = 16
	keepBytes     = 64 << 10
	continuityGap = 40 // ms between the last packet of a publisher and the first of the next
	// A publisher's audio or video timestamp more than maxBackStep before
	// the previous one of the same kind or more than maxForwardStep after
	// it is a discontinuity (an encoder restart, a jump by 2^31): the
	// stream continues from its newest timestamp, as across publishers.
	// Each kind is compared with itself, so audio and video may be offset
	// by any amount; when one jumps, the other's next jump is taken as the
	// same discontinuity, which keeps their offset. A wrap around 2^32 is
	// a small step forward.
	maxBackStep    = 1000  // ms
	maxForwardStep = 10000 // ms
)

// Hub is one stream. Its methods are safe for concurrent use.
type Hub struct {
	key  Key
	opts Options

	mu        sync.Mutex
	publisher any
	scratch   []byte // a placed message's payload gathered, when needed whole

	// The blocks packets are carved from, oldest first; cur is the one
	// being carved (the last). blockSize is the size of the next one.
	blocks    []*hubBlock
	cur       *hubBlock
	blockSize int
	awaiting  int // blocks of the list with placements not back yet

	meta, videoSeq, audioSeq Packet    // as players get them
	rawHeaders               [3][]byte // payloads of meta, video and audio headers, to spot repeats
	hasVideo, hasAudio       atomic.Bool

	// Timestamps players see stay monotonic across publishers: each
	// publish epoch is shifted to continue after the previous one.
	tsOffset   uint32
	needOffset bool
	lastTS     uint32
	haveLast   bool
	rawLast    [2]uint32 // the publisher's last audio and video timestamps, to spot its jumps
	rawSeen    [2]bool
	rawFollow  [2]bool // the other kind jumped: this one's next jump is the same discontinuity

	ring       []Packet
	head, tail uint64
	headSeq    atomic.Uint64 // head, for readers without the lock
	ringBytes  int
	hasGop     bool
	gopStart   uint64
	gopBytes   int

	wakers  atomic.Pointer[[]Waker]
	refs    int // publishers and players holding the hub; guarded by the registry
	players atomic.Int64

	// Bit rate of what the publisher sends (measureLocked): the sample
	// being taken (rateBytes, rateMsgs since rateTS) and the last
	// rateSamples taken, which BitRate and MessageRate average.
	rateBytes int
	rateMsgs  int
	frameSize int // a running average of video packets' sizes (keyframes aside)
	rateTS    uint32
	rateSet   bool
	samples   [rateSamples]rateSample
	sampleN   int // samples taken, ever
	bitrate   atomic.Int64
	msgRate   atomic.Int64

	notifyPublish, notifyUnpublish []byte

	created time.Time
	frames  atomic.Uint64 // video messages published
	bytesIn atomic.Uint64 // media payload bytes published
}

func newHub(key Key, opts Options) *Hub {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = chunk.DefaultChunkSize
	}
	return &Hub{
		key:             key,
		opts:            opts,
		blockSize:       firstBlockSize,
		ring:            make([]Packet, minRing),
		notifyPublish:   publishNotification(key, opts.ChunkSize),
		notifyUnpublish: unpublishNotification(key, opts.ChunkSize),
		created:         time.Now(),
	}
}

// Stats are a stream's counters and codec headers, for the API.
type Stats struct {
	Created     time.Time
	Frames      uint64 // video messages published
	BytesIn     uint64 // media payload bytes published
	Publishing  bool
	VideoHeader []byte // the video sequence header payload (nil: none yet)
	AudioHeader []byte // the audio sequence header payload
}

// Stats returns the stream's counters and copies of its sequence headers.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{
		Created: h.created, Frames: h.frames.Load(), BytesIn: h.bytesIn.Load(), Publishing: h.publisher != nil,
		VideoHeader: bytes.Clone(h.rawHeaders[KindVideo-KindAudio]),
		AudioHeader: bytes.Clone(h.rawHeaders[KindAudio-KindAudio]),
	}
}

// Key returns the stream's name.
func (h *Hub) Key() Key { return h.key }

// Publish makes owner the stream's source of media. A second publisher is
// refused with ErrStreamBusy.
func (h *Hub) Publish(owner any) error {
	h.mu.Lock()
	if h.publisher != nil {
		h.mu.Unlock()
		return ErrStreamBusy
	}
	h.publisher = owner
	h.needOffset, h.rawSeen, h.rawFollow = h.haveLast, [2]bool{}, [2]bool{}
	h.pushControlLocked(h.notifyPublish)
	h.mu.Unlock()
	h.wake(0, KindControl, true)
	return nil
}

// Publishing reports whether the stream has a publisher.
func (h *Hub) Publishing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.publisher != nil
}

// Unpublish ends owner's publishing. Players stay attached and resume when
// the next publisher arrives; the headers and GOP of the old one are dropped.
func (h *Hub) Unpublish(owner any) {
	h.mu.Lock()
	if h.publisher != owner {
		h.mu.Unlock()
		return
	}
	h.publisher = nil
	h.meta, h.videoSeq, h.audioSeq = Packet{}, Packet{}, Packet{}
	h.rawHeaders = [3][]byte{}
	h.hasGop = false
	h.gopBytes = 0
	h.pushControlLocked(h.notifyUnpublish)
	h.mu.Unlock()
	h.wake(0, KindControl, true)
}

// Append adds one message from the publisher owner. typeID is the RTMP
// message type (audio, video or data); ts the publisher's timestamp. The
// payload is copied once, into the chunked packet every player shares.
func (h *Hub) Append(owner any, typeID uint8, ts uint32, payload []byte) error {
	var m Media
	switch typeID {
	case chunk.TypeAudio, chunk.TypeVideo:
		if len(payload) == 0 {
			return nil // an empty FLV tag carries nothing a player can use
		}
		m = Classify(typeID, payload)
	case chunk.TypeDataAMF0, chunk.TypeDataAMF3:
		body, isMeta := MetadataBody(typeID, payload)
		payload, typeID = body, chunk.TypeDataAMF0
		m = Media{Kind: KindData, SeqHeader: isMeta}
	default:
		return fmt.Errorf("hub %s: message type %d is not media", h.key, typeID)
	}
	return h.add(owner, typeID, ts, m, payload, nil)
}

// tagRoom is what Place leaves after the chunks for the packet's FLV tag
// head (in a WebSocket frame) and trailer.
const tagRoom = 10 + flv.TagHeaderSize + flv.TrailerSize

// Place returns a buffer for the payload of an audio or video message of n
// bytes that the publisher sends with timestamp ts, carved from the
// stream's blocks and laid out to become the message's packet in place
// (AppendPlaced). Only the publisher's goroutine calls it.
func (h *Hub) Place(typeID uint8, ts uint32, n int) ([]byte, chunk.Layout) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wire := ts + h.tsOffset // as mapTimestampLocked will shift it, barring a jump
	if h.needOffset {
		wire = h.lastTS + continuityGap
	}
	l := chunk.ChunkLayout(MediaCSID(typeID), wire >= 0xFFFFFF, h.opts.ChunkSize)
	buf, hb := h.carveLocked(l.End(n) + tagRoom)
	if hb != nil { // awaited until the message comes back to add (or is given up)
		if hb.placed == 0 {
			h.awaiting++
		}
		hb.placed++
	}
	return buf, l
}

// AppendPlaced adds one audio or video message from the publisher owner
// whose payload a chunk reader placed in a buffer from Place: the buffer
// becomes the packet players share, with no copy. (Should the stream's
// timestamps have jumped into or out of the extended range since Place,
// the payload is copied as Append does.)
func (h *Hub) AppendPlaced(owner any, msg *chunk.Message) error {
	if msg.Length == 0 {
		return nil
	}
	if msg.TypeID != chunk.TypeAudio && msg.TypeID != chunk.TypeVideo {
		return fmt.Errorf("hub %s: placed message type %d is not audio or video", h.key, msg.TypeID)
	}
	return h.add(owner, msg.TypeID, msg.Timestamp, Classify(msg.TypeID, msg.Head(2)), nil, msg)
}

// add appends a message of the publisher owner: payload, or the placed
// message msg.
func (h *Hub) add(owner any, typeID uint8, ts uint32, m Media, payload []byte, msg *chunk.Message) error {
	n := len(payload)
	if msg != nil {
		n = int(msg.Length)
	}
	h.mu.Lock()
	var hb *hubBlock // the block the packet lies in
	if msg != nil {
		if hb = h.placedInLocked(msg.Placed); hb != nil {
			if hb.placed--; hb.placed == 0 {
				h.awaiting--
			}
		}
	}
	if h.publisher != owner {
		h.mu.Unlock()
		return ErrNotPublisher
	}
	if m.SeqHeader {
		if msg != nil {
			h.scratch = msg.AppendPayload(h.scratch[:0])
			payload = h.scratch
		}
		// A header equal to the current one (a new upstream after a failover
		// repeats it) is not sent again.
		slot := &h.rawHeaders[m.Kind-KindAudio]
		if bytes.Equal(*slot, payload) {
			h.mu.Unlock()
			return nil
		}
		*slot = append((*slot)[:0:0], payload...)
	}
	ts = h.mapTimestampLocked(m.Kind, ts)
	h.measureLocked(ts, n, m)
	h.bytesIn.Add(uint64(n))
	if m.Kind == KindVideo {
		h.frames.Add(1)
		h.hasVideo.Store(true)
	} else if m.Kind == KindAudio {
		h.hasAudio.Store(true)
	}
	// onMetaData reaches players with timestamp 0, first or mid-stream, as
	// nginx-rtmp sends it: ffmpeg's FLV demuxer reads script data with a
	// non-zero timestamp as a data stream (a phantom "text" stream).
	wireTS := ts
	if m.Kind == KindData && m.SeqHeader {
		wireTS = 0
	}
	var pkt Packet
	ok := false
	if msg != nil && !m.SeqHeader {
		pkt, ok = h.packPlacedLocked(msg, wireTS)
		if !ok && payload == nil {
			h.scratch = msg.AppendPayload(h.scratch[:0])
			payload = h.scratch
		}
	}
	if ok {
		if hb != nil {
			pkt.Block = hb.blk
		}
	} else {
		// Headers, kept for the stream's life, get buffers of their own.
		pkt, hb = h.packLocked(typeID, wireTS, payload, m.SeqHeader)
	}
	if hb != nil {
		hb.lastSeq = h.head + 1 // the packet's sequence number is head
	}
	pkt.Timestamp, pkt.Kind, pkt.Keyframe = ts, m.Kind, m.Keyframe
	if m.SeqHeader {
		switch m.Kind {
		case KindVideo:
			h.videoSeq = pkt
		case KindAudio:
			h.audioSeq = pkt
		case KindData:
			h.meta = pkt
		}
	}
	if m.Keyframe && h.opts.GopCache {
		h.hasGop = true
		h.gopStart = h.head
		h.gopBytes = 0
	}
	if m.Kind == KindVideo && !m.Keyframe && !m.SeqHeader {
		h.frameSize += (len(pkt.Data) + int(pkt.TagLen) - h.frameSize) / 8
	}
	h.pushLocked(pkt)
	if cap(h.scratch) > maxBlockSize {
		h.scratch = nil // a rare big copy: not kept for the stream's lifetime
	}
	h.mu.Unlock()
	h.wake(ts, m.Kind, m.SeqHeader)
	return nil
}

// packPlacedLocked makes a placed message the packet: its chunk headers
// written around the payload, the FLV tag bytes in the room after it. It
// reports false when the layout does not fit the wire timestamp.
func (h *Hub) packPlacedLocked(msg *chunk.Message, wireTS uint32) (Packet, bool) {
	n := int(msg.Length)
	hdr := chunk.Header{CSID: MediaCSID(msg.TypeID), Timestamp: wireTS, TypeID: msg.TypeID, StreamID: StreamID}
	if msg.Layout.Piece != h.opts.ChunkSize {
		return Packet{}, false
	}
	data, ok := chunk.ChunkPlaced(msg.Placed, msg.Layout, hdr, n)
	end := msg.Layout.End(n)
	if !ok || len(msg.Placed) < end+tagRoom {
		return Packet{}, false
	}
	tag, ws := h.appendTag(msg.Placed[end:end:end+tagRoom], msg.TypeID, wireTS, n)
	gap := msg.Layout.Gap
	data = msg.Placed[end-len(data) : end : end+len(tag)]
	return Packet{Data: data, TagLen: uint8(len(tag)), Len: uint32(n), WSHead: uint8(ws), Body: uint8(gap + 11), Cont: uint8(gap)}, true
}

// packLocked copies payload once into a block as RTMP chunks (into a
// buffer of its own when own), and lays the few bytes FLV players get
// around it beside them. It returns the block the packet lies in (nil: its
// own buffer).
func (h *Hub) packLocked(typeID uint8, wireTS uint32, payload []byte, own bool) (Packet, *hubBlock) {
	hdr := chunk.Header{CSID: MediaCSID(typeID), Timestamp: wireTS, Length: uint32(len(payload)), TypeID: typeID, StreamID: StreamID}
	size := chunk.WireSize(hdr, len(payload), h.opts.ChunkSize)
	var buf []byte
	var hb *hubBlock
	if own {
		buf = make([]byte, size+tagRoom)
	} else {
		buf, hb = h.carveLocked(size + tagRoom)
	}
	data := chunk.AppendMessage(buf[:0], hdr, payload, h.opts.ChunkSize)
	tag, ws := h.appendTag(buf[size:size], typeID, wireTS, len(payload))
	cont := 1 // basic header of a media chunk stream id (< 64)
	if wireTS >= 0xFFFFFF {
		cont += 4 // continuation chunks repeat the extended timestamp
	}
	p := Packet{Data: data[: size : size+len(tag)], TagLen: uint8(len(tag)), Len: uint32(len(payload)), WSHead: uint8(ws), Body: uint8(cont + 11), Cont: uint8(cont)}
	if hb != nil {
		p.Block = hb.blk
	}
	return p, hb
}

// appendTag appends what an FLV player gets around a payload of n bytes: a
// WebSocket frame header (ws bytes, returned), the FLV tag header and the
// PreviousTagSize trailer.
func (h *Hub) appendTag(dst []byte, typeID uint8, wireTS uint32, n int) (tag []byte, ws int) {
	frame := flv.TagHeaderSize + n + flv.TrailerSize
	ws = httpflv.FrameHeaderSize(frame)
	dst = httpflv.AppendFrameHeader(dst, httpflv.OpBinary, frame)
	dst = flv.AppendTagHeader(dst, typeID, n, wireTS)
	return flv.AppendTrailer(dst, n), ws
}

// Restart starts a new epoch of the same publisher, as when an edge's
// upstream fails over to another origin: timestamps continue from the last
// one, the GOP cache waits for the next keyframe, headers stay until the
// new source sends different ones. Players are not notified.
func (h *Hub) Restart(owner any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.publisher != owner {
		return
	}
	h.needOffset, h.rawSeen, h.rawFollow = h.haveLast, [2]bool{}, [2]bool{}
	h.hasGop = false
	h.gopBytes = 0
}

// A stream's bit rate is measured in samples of whole GOPs: a sample
// ends at the first video keyframe a second or more of media after it
// began (at any message for a stream without video, and after
// maxSampleMs without a keyframe), and BitRate averages the last
// rateSamples. A window of whole GOPs does not swing with how many
// keyframes it holds: over the benchmark's stream (2 s GOPs), five
// one-second samples ranged from 1.08 to 1.18 Mbit/s, five GOPs from 1.11
// to 1.16.
const (
	rateSamples = 5
	maxSampleMs = 10_000
)

// sampleBoundary reports whether a message of kind m may begin a new
// sample: a video keyframe, or any message of a stream without video.
func sampleBoundary(m Media, hasVideo bool) bool {
	return m.Kind == KindVideo && m.Keyframe && !m.SeqHeader || !hasVideo
}

// rateSample is one sample of a stream's media.
type rateSample struct {
	bytes, msgs int
	ms          int32 // media time it spans
}

// measureLocked updates the bit rate estimate with a message of n bytes at
// ts, of kind m.
func (h *Hub) measureLocked(ts uint32, n int, m Media) {
	d := int32(ts - h.rateTS)
	if !h.rateSet || d < -1000 {
		// The first message, or the timestamps went back by more than
		// interleaving explains: a new sample.
		h.rateTS, h.rateBytes, h.rateMsgs, h.rateSet = ts, n, 1, true
		return
	}
	if d < 1000 || d < maxSampleMs && !sampleBoundary(m, h.hasVideo.Load()) {
		h.rateBytes += n
		h.rateMsgs++
		return
	}
	// The sample ends before this message, which begins the next.
	h.blockSize = blockSizeFor(int64(h.rateBytes)*8*1000/int64(d), h.frameSize)
	h.samples[h.sampleN%rateSamples] = rateSample{bytes: h.rateBytes, msgs: h.rateMsgs, ms: d}
	h.sampleN++
	var bytes, msgs, ms int64
	for _, s := range h.samples[:min(h.sampleN, rateSamples)] {
		bytes, msgs, ms = bytes+int64(s.bytes), msgs+int64(s.msgs), ms+int64(s.ms)
	}
	h.bitrate.Store(bytes * 8 * 1000 / ms)
	h.msgRate.Store(msgs * 1000 / ms)
	h.rateTS, h.rateBytes, h.rateMsgs = ts, n, 1
}

// Blocks hold about an eighth of a second of a stream's media, between
// these bounds: a block is retired (pool.Blocks) when none of its packets
// is in the ring any more, so small blocks keep less of a stream's memory
// (the unused rest of its newest block, the older packets of the block its
// GOP starts in: at 1.2 Mbit/s 16 KiB blocks kept 24 KiB a stream less
// than 32 KiB ones) and big ones are carved less often for a busy stream.
// A packet over half a block (a keyframe, usually) gets a block of its own.
const (
	minBlockSize   = pool.MinBlock
	maxBlockSize   = 64 << 10
	firstBlockSize = 16 << 10 // until the bit rate is known
	// A block whose retirement waits on a placement that never came back
	// (its message was given up: a publisher gone mid-message, an abort)
	// is left to the garbage collector after stuckPasses retirement passes
	// found it otherwise done with (a pass per packet and per new block:
	// seconds of media), or, oldest first, when more than maxAwaiting
	// blocks wait so (a message in progress per chunk stream is a few; a
	// publisher that starts messages and never ends them is not).
	stuckPasses = 256
	maxAwaiting = 8
)

// hubBlock is a block packets are carved from, with what tells when the
// stream is done with it. Guarded by the hub's lock.
type hubBlock struct {
	blk     *pool.Block
	used    int    // bytes carved
	lastSeq uint64 // sequence number + 1 of the newest packet pushed from it (0: none)
	placed  int    // placements carved from it whose message did not come back yet
	waited  int    // retirement passes that found it done with but for a placement
}

// carveLocked returns n bytes for a packet, from the block being carved
// (a new one when it has no room), or, when n is over half a block, from a
// block of its own (a buffer of its own, nil block, without a pool).
func (h *Hub) carveLocked(n int) ([]byte, *hubBlock) {
	if n > h.blockSize/2 {
		if h.opts.Blocks == nil || n > pool.MaxBlock {
			return make([]byte, n), nil
		}
		// A block of its own, recycled as the carved ones are.
		h.retireLocked()
		hb := &hubBlock{blk: h.opts.Blocks.Get(n), used: n}
		h.blocks = append(h.blocks, hb)
		return hb.blk.Buf[:n:n], hb
	}
	c := h.cur
	if c == nil || c.used+n > len(c.blk.Buf) {
		h.retireLocked() // before the list grows (a stream may carve without pushing)
		var blk *pool.Block
		if h.opts.Blocks != nil {
			blk = h.opts.Blocks.Get(h.blockSize)
		} else {
			blk = &pool.Block{Buf: make([]byte, h.blockSize)}
		}
		c = &hubBlock{blk: blk}
		h.blocks = append(h.blocks, c)
		h.cur = c
	}
	b := c.blk.Buf[c.used : c.used+n : c.used+n]
	c.used += n
	return b, c
}

// placedInLocked returns the block a placed buffer was carved from (nil:
// a buffer of its own, or a block the stream no longer tracks).
func (h *Hub) placedInLocked(b []byte) *hubBlock {
	if len(b) == 0 {
		return nil
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	for i := len(h.blocks) - 1; i >= 0; i-- {
		hb := h.blocks[i]
		base := uintptr(unsafe.Pointer(unsafe.SliceData(hb.blk.Buf)))
		if p >= base && p-base < uintptr(len(hb.blk.Buf)) {
			return hb
		}
	}
	return nil
}

// retireLocked gives back the blocks no packet of the ring lies in and no
// placement still writes to, oldest first, up to the first one whose
// packets are still in the ring (the blocks after it are newer). The block
// being carved, and one a message is still arriving into, stay in the list
// and do not hold back those after them. Without a pool the garbage
// collector frees what is given back.
func (h *Hub) retireLocked() {
	kept, i := 0, 0
	for ; i < len(h.blocks); i++ {
		hb := h.blocks[i]
		if hb.lastSeq > h.tail {
			break // packets of it are in the ring
		}
		if hb == h.cur {
			h.blocks[kept] = hb
			kept++
			continue
		}
		if hb.placed > 0 {
			if hb.waited++; hb.waited < stuckPasses && h.awaiting <= maxAwaiting {
				h.blocks[kept] = hb
				kept++
				continue // a message is still arriving into it
			}
			h.awaiting--
			continue // given up on: left to the garbage collector
		}
		if h.opts.Blocks != nil {
			h.opts.Blocks.Retire(hb.blk)
		}
	}
	if i == kept {
		return
	}
	n := copy(h.blocks[kept:], h.blocks[i:])
	clear(h.blocks[kept+n:])
	h.blocks = h.blocks[:kept+n]
}

// blockSizeFor returns the block size for a stream of bitRate bits per
// second whose video packets are frameSize bytes on average: a power of
// two, and room for three such packets (a block that two frames just do not
// fit wastes near half of itself).
func blockSizeFor(bitRate int64, frameSize int) int {
	size := minBlockSize
	for size < maxBlockSize && (int64(size)*2 <= bitRate/8/8 || size < 3*frameSize) {
		size *= 2
	}
	return size
}

// BitRate returns the stream's bit rate in bits per second as published,
// over its last five GOPs or so (0 until the first sample is taken: a
// GOP, and at least a second, of media).
func (h *Hub) BitRate() int64 { return h.bitrate.Load() }

// MessageRate returns the stream's messages (audio, video, data) per
// second over the same seconds as BitRate.
func (h *Hub) MessageRate() int64 { return h.msgRate.Load() }

// AddPlayers counts players joining (n > 0) or leaving (n < 0) the stream.
func (h *Hub) AddPlayers(n int) { h.players.Add(int64(n)) }

// Players returns the number of players of the stream.
func (h *Hub) Players() int { return int(h.players.Load()) }

// mapTimestampLocked shifts a publisher's timestamp (of a message of kind)
// so that the stream players see continues from the previous publisher's
// last timestamp, and across a publisher's own discontinuities.
func (h *Hub) mapTimestampLocked(kind Kind, ts uint32) uint32 {
	jump, follow := false, false
	k := kind - KindAudio
	if kind == KindAudio || kind == KindVideo {
		if d := int32(ts - h.rawLast[k]); h.rawSeen[k] && (d < -maxBackStep || d > maxForwardStep) {
			jump, follow = true, h.rawFollow[k]
		}
		h.rawLast[k], h.rawSeen[k], h.rawFollow[k] = ts, true, false
	}
	if h.needOffset || jump && !follow && h.haveLast {
		h.tsOffset = h.lastTS + continuityGap - ts
		h.needOffset = false
		if jump {
			h.rawFollow[1-k] = h.rawSeen[1-k]
		}
	}
	out := ts + h.tsOffset
	if !h.haveLast || int32(out-h.lastTS) > 0 {
		h.lastTS = out
		h.haveLast = true
	}
	return out
}

// pushLocked appends p to the ring, growing it or dropping old packets
// outside the GOP as needed.
func (h *Hub) pushLocked(p Packet) {
	need := h.needLocked()
	if h.head-h.tail == uint64(len(h.ring)) {
		if len(h.ring) < maxRing && !h.canDropTailLocked(true, need) {
			h.growLocked() // a player still needs the oldest packets
		} else if !h.canDropTailLocked(false, NoNeed) {
			if len(h.ring) < maxRing {
				h.growLocked()
			} else {
				h.hasGop = false // the GOP is longer than the ring allows: stop caching it
				h.gopBytes = 0
			}
		}
		if h.head-h.tail == uint64(len(h.ring)) {
			h.dropTailLocked()
		}
	}
	h.ring[h.head&uint64(len(h.ring)-1)] = p
	h.head++
	h.headSeq.Store(h.head)
	h.ringBytes += len(p.Data)
	if h.hasGop {
		h.gopBytes += len(p.Data)
		if h.opts.GopCacheMaxBytes > 0 && h.gopBytes > h.opts.GopCacheMaxBytes {
			h.hasGop = false
			h.gopBytes = 0
		}
	}
	for h.tail < h.head && h.canDropTailLocked(true, need) {
		h.dropTailLocked()
	}
	h.retireLocked()
}

// needLocked returns the oldest packet any waker's players still need.
func (h *Hub) needLocked() uint64 {
	need := NoNeed
	if ws := h.wakers.Load(); ws != nil {
		for _, w := range *ws {
			need = min(need, w.Need())
		}
	}
	return need
}

// canDropTailLocked reports whether the oldest packet may go: never when it
// is part of the GOP cache; with keep, not while a player needs it (it is at
// or after need) and the bytes outside the GOP are within BacklogMaxBytes,
// and otherwise only when more than keepPackets (or keepBytes) lie outside
// the GOP.
func (h *Hub) canDropTailLocked(keep bool, need uint64) bool {
	if h.tail == h.head || (h.hasGop && h.tail >= h.gopStart) {
		return false
	}
	if !keep {
		return true
	}
	outside := h.ringBytes
	if h.hasGop {
		outside -= h.gopBytes
	}
	if h.tail >= need && outside <= h.opts.BacklogMaxBytes {
		return false
	}
	if ws := h.wakers.Load(); ws == nil || len(*ws) == 0 {
		// No player, and none joining: a player's group wakes with the hub
		// before the player takes its cursor (see Waker).
		return true
	}
	return h.head-h.tail > keepPackets || outside > keepBytes
}

func (h *Hub) dropTailLocked() {
	slot := &h.ring[h.tail&uint64(len(h.ring)-1)]
	h.ringBytes -= len(slot.Data)
	*slot = Packet{}
	h.tail++
}

func (h *Hub) growLocked() {
	ring := make([]Packet, 2*len(h.ring))
	for s := h.tail; s < h.head; s++ {
		ring[s&uint64(len(ring)-1)] = h.ring[s&uint64(len(h.ring)-1)]
	}
	h.ring = ring
}

// Join returns where a new player starts: at the GOP cache when there is
// one (waitKey false), else at the head, waiting for the next keyframe.
func (h *Hub) Join() (cursor uint64, waitKey bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hasGop {
		return h.gopStart, false
	}
	return h.head, true
}

// Snapshot fills s with the headers and the packets from cursor from (or
// from the oldest kept packet, if from is older) to the head.
func (h *Hub) Snapshot(from uint64, s *Snapshot) {
	s.Headers = s.Headers[:0]
	s.Packets = s.Packets[:0]
	h.mu.Lock()
	for _, p := range [...]*Packet{&h.meta, &h.videoSeq, &h.audioSeq} {
		if p.Data != nil {
			s.Headers = append(s.Headers, *p)
		}
	}
	if from < h.tail {
		from = h.tail
	}
	if from > h.head {
		from = h.head
	}
	mask := uint64(len(h.ring) - 1)
	for seq := from; seq < h.head; seq++ {
		s.Packets = append(s.Packets, h.ring[seq&mask])
	}
	s.Start, s.Head, s.LastTS, s.HasVideo = from, h.head, h.lastTS, h.hasVideo.Load()
	s.Gop = h.head
	if h.hasGop {
		s.Gop = h.gopStart
	}
	h.mu.Unlock()
}

// AddWaker subscribes w to appends.
func (h *Hub) AddWaker(w Waker) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var next []Waker
	if cur := h.wakers.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, w)
	h.wakers.Store(&next)
}

// RemoveWaker unsubscribes w.
func (h *Hub) RemoveWaker(w Waker) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.wakers.Load()
	if cur == nil {
		return
	}
	next := make([]Waker, 0, len(*cur))
	for _, x := range *cur {
		if x != w {
			next = append(next, x)
		}
	}
	h.wakers.Store(&next)
}

func (h *Hub) wake(ts uint32, kind Kind, force bool) {
	if ws := h.wakers.Load(); ws != nil {
		for _, w := range *ws {
			w.Wake(ts, kind, force)
		}
	}
}

// pushControlLocked appends a notification for the players following the
// ring (not for players joining later).
func (h *Hub) pushControlLocked(data []byte) {
	h.pushLocked(Packet{Data: data, Timestamp: h.lastTS, Kind: KindControl})
}

// Notify sends data (complete chunked messages, e.g. an onStatus) to the
// players following the stream now.
func (h *Hub) Notify(data []byte) {
	h.mu.Lock()
	h.pushControlLocked(data)
	h.mu.Unlock()
	h.wake(0, KindControl, true)
}

// Head returns the sequence number the next packet will have.
func (h *Hub) Head() uint64 { return h.headSeq.Load() }

// ChunkSize returns the chunk size the hub's packets are cut at.
func (h *Hub) ChunkSize() int { return h.opts.ChunkSize }

// HasVideo reports whether the stream has carried video.
func (h *Hub) HasVideo() bool { return h.hasVideo.Load() }

// HasAudio reports whether the stream has carried audio.
func (h *Hub) HasAudio() bool { return h.hasAudio.Load() }
