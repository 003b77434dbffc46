package chunk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// The complex handshake keys: an "open" text part used to sign C1/S1, and the
// full key (text plus 32 fixed bytes) used to derive the C2/S2 signing key.
var (
	keySuffix = [32]byte{
		0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
		0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
		0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
	}
	playerKey = append([]byte("Genuine Adobe Flash Player 001"), keySuffix[:]...)       // 62 bytes
	serverKey = append([]byte("Genuine Adobe Flash Media Server 001"), keySuffix[:]...) // 68 bytes
)

const (
	playerKeyOpen = 30 // len("Genuine Adobe Flash Player 001")
	serverKeyOpen = 36 // len("Genuine Adobe Flash Media Server 001")
	digestLen     = 32
	rtmpVersion   = 3
)

var (
	// clientVersion is what ffmpeg/librtmp announce (Flash Player 9.0.124.2).
	clientVersion = [4]byte{9, 0, 124, 2}
	// serverVersion is announced in a complex S1 (FMS 4.5.0.1-like; ffmpeg
	// validates S1/S2 when the first byte is >= 3).
	serverVersion = [4]byte{4, 5, 0, 1}
)

// digestOffset returns where the 32-byte digest sits in a 1536-byte C1/S1
// for schema 0 (digest block at 8..771) or schema 1 (digest block at
// 772..1535): the block starts with 4 bytes whose sum modulo 728 is the
// digest's offset past them.
func digestOffset(p []byte, schema int) int {
	base := 8
	if schema == 1 {
		base = 772
	}
	sum := int(p[base]) + int(p[base+1]) + int(p[base+2]) + int(p[base+3])
	return base + 4 + sum%728
}

// packetDigest computes HMAC-SHA256(key) over p without the 32 bytes at off.
func packetDigest(p []byte, off int, key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(p[:off])
	m.Write(p[off+digestLen:])
	return m.Sum(nil)
}

// findDigest looks for a valid digest keyed with key (open part) in p,
// trying schema 0 then schema 1. It returns the schema and digest offset, or
// -1, -1.
func findDigest(p []byte, key []byte) (schema, off int) {
	for schema := 0; schema < 2; schema++ {
		off := digestOffset(p, schema)
		if hmac.Equal(packetDigest(p, off, key), p[off:off+digestLen]) {
			return schema, off
		}
	}
	return -1, -1
}

// imprintDigest writes the digest for schema into p and returns its offset.
func imprintDigest(p []byte, schema int, key []byte) int {
	off := digestOffset(p, schema)
	copy(p[off:], packetDigest(p, off, key))
	return off
}

// responseSignature returns the last 32 bytes of a complex C2/S2 p answering
// the peer's C1/S1 digest: HMAC(HMAC(fullKey, peerDigest), p[:1504]).
func responseSignature(p, peerDigest, fullKey []byte) []byte {
	m := hmac.New(sha256.New, fullKey)
	m.Write(peerDigest)
	k := m.Sum(nil)
	m = hmac.New(sha256.New, k)
	m.Write(p[:HandshakeSize-digestLen])
	return m.Sum(nil)
}

func fillRandom(p []byte) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, rand.Uint64())
		p = p[8:]
	}
	if len(p) > 0 {
		v := rand.Uint64()
		for i := range p {
			p[i] = byte(v >> (8 * i))
		}
	}
}

func epoch() uint32 { return uint32(time.Now().Unix()) }

// errEncrypted is returned (wrapped) for a C0/S0 asking for RTMPE.
var errEncrypted = errors.New("encrypted RTMP (RTMPE) is not supported")

func checkVersion(who string, v byte) error {
	switch v {
	case rtmpVersion:
		return nil
	case 6, 8, 9:
		return fmt.Errorf("rtmp handshake: %s version %d: %w", who, v, errEncrypted)
	default:
		return fmt.Errorf("rtmp handshake: %s version %d not supported (want 3)", who, v)
	}
}

// ServerHandshake is the server side of the RTMP handshake. Feed it what
// arrived; it tells how much it used and what to send.
type ServerHandshake struct {
	state   int // 0: want C0C1, 1: want C2, 2: done
	complex bool
}

// NewServerHandshake returns a server handshake waiting for C0+C1.
func NewServerHandshake() *ServerHandshake { return &ServerHandshake{} }

// Complex reports whether C1 carried a valid digest (schema 0 or 1) and S1/S2
// were made with digests.
func (h *ServerHandshake) Complex() bool { return h.complex }

// Feed consumes from buf: C0+C1 (1537 bytes) -> out = S0+S1+S2 (3073 bytes);
// then C2 (1536 bytes) -> done. Nothing is consumed from a partial C0+C1 or
// C2. If buf holds both C0+C1 and C2, both are consumed in one call (out is
// set and done is true). Bytes after C2 are not consumed (they are chunks).
// A C0 version other than 3 is an error, reported as soon as C0 arrives (6,
// 8 and 9, RTMPE, are refused as encrypted). C2 is not checked: clients
// variously echo S1 or send a signed random block. Once done, Feed consumes
// nothing and reports done.
func (h *ServerHandshake) Feed(buf []byte) (consumed int, out []byte, done bool, err error) {
	if h.state == 0 {
		if len(buf) == 0 {
			return 0, nil, false, nil
		}
		if err := checkVersion("C0", buf[0]); err != nil {
			return 0, nil, false, err
		}
		if len(buf) < 1+HandshakeSize {
			return 0, nil, false, nil
		}
		out = h.respond(buf[1 : 1+HandshakeSize])
		consumed = 1 + HandshakeSize
		h.state = 1
	}
	if h.state == 1 {
		if len(buf)-consumed < HandshakeSize {
			return consumed, out, false, nil
		}
		consumed += HandshakeSize
		h.state = 2
	}
	return consumed, out, true, nil
}

// respond builds S0+S1+S2 for c1.
func (h *ServerHandshake) respond(c1 []byte) []byte {
	out := make([]byte, 1+2*HandshakeSize)
	out[0] = rtmpVersion
	s1 := out[1 : 1+HandshakeSize]
	s2 := out[1+HandshakeSize:]
	fillRandom(s1[8:])
	binary.BigEndian.PutUint32(s1, epoch())

	schema, off := -1, -1
	if binary.BigEndian.Uint32(c1[4:8]) != 0 {
		schema, off = findDigest(c1, playerKey[:playerKeyOpen])
	}
	if schema < 0 {
		// Simple handshake: S1 has a zero version, S2 echoes C1.
		copy(s2, c1)
		return out
	}
	h.complex = true
	copy(s1[4:8], serverVersion[:])
	imprintDigest(s1, schema, serverKey[:serverKeyOpen])
	fillRandom(s2)
	copy(s2[HandshakeSize-digestLen:], responseSignature(s2, c1[off:off+digestLen], serverKey))
	return out
}

// ClientHandshake is the client side of the RTMP handshake (for upstream
// connections and test clients).
type ClientHandshake struct {
	complex  bool
	c0c1     []byte
	c1Digest int // offset of our C1 digest (complex only)
	done     bool
}

// NewClientHandshake returns a client handshake; complex selects a Flash
// Player style C1 with a digest instead of a simple one.
func NewClientHandshake(complex bool) *ClientHandshake {
	return &ClientHandshake{complex: complex}
}

// C0C1 returns C0+C1 (1537 bytes) to send first; repeated calls return the
// same bytes. A complex C1 announces version 9.0.124.2 and carries a schema 0
// digest keyed with the Flash Player key, as ffmpeg sends; a simple C1 has a
// zero version.
func (h *ClientHandshake) C0C1() []byte {
	if h.c0c1 != nil {
		return h.c0c1
	}
	b := make([]byte, 1+HandshakeSize)
	b[0] = rtmpVersion
	c1 := b[1:]
	fillRandom(c1[8:])
	if h.complex {
		// Time zero, like ffmpeg: a server falling back to its simple
		// handshake that echoes C1's time as S1's version then still
		// presents a zero version.
		copy(c1[4:8], clientVersion[:])
		h.c1Digest = imprintDigest(c1, 0, playerKey[:playerKeyOpen])
	} else {
		binary.BigEndian.PutUint32(c1, epoch())
	}
	h.c0c1 = b
	return b
}

// Feed consumes S0+S1+S2 (3073 bytes; nothing from a partial one) and
// returns out = C2, with done true. With complex, when the server's S1
// version is nonzero its S1 digest (either schema) and S2 signature are
// verified and C2 is random data signed with HMAC(Flash Player full key, S1
// digest); when the server answered simple (zero S1 version), or the client
// is simple, C2 echoes S1. An S0 version other than 3 or a failed
// verification is an error. Bytes after S2 are not consumed; once done, Feed
// consumes nothing and reports done.
func (h *ClientHandshake) Feed(buf []byte) (consumed int, out []byte, done bool, err error) {
	if h.done {
		return 0, nil, true, nil
	}
	if len(buf) == 0 {
		return 0, nil, false, nil
	}
	if err := checkVersion("S0", buf[0]); err != nil {
		return 0, nil, false, err
	}
	if len(buf) < 1+2*HandshakeSize {
		return 0, nil, false, nil
	}
	c1 := h.C0C1()[1:]
	s1 := buf[1 : 1+HandshakeSize]
	s2 := buf[1+HandshakeSize : 1+2*HandshakeSize]
	c2 := make([]byte, HandshakeSize)
	if !h.complex || binary.BigEndian.Uint32(s1[4:8]) == 0 {
		copy(c2, s1)
	} else {
		_, off := findDigest(s1, serverKey[:serverKeyOpen])
		if off < 0 {
			return 0, nil, false, fmt.Errorf("rtmp handshake: S1 (server version %d.%d.%d.%d) has no valid digest", s1[4], s1[5], s1[6], s1[7])
		}
		sig := responseSignature(s2, c1[h.c1Digest:h.c1Digest+digestLen], serverKey)
		if !hmac.Equal(sig, s2[HandshakeSize-digestLen:]) {
			return 0, nil, false, errors.New("rtmp handshake: S2 signature mismatch")
		}
		fillRandom(c2)
		copy(c2[HandshakeSize-digestLen:], responseSignature(c2, s1[off:off+digestLen], playerKey))
	}
	h.done = true
	return 1 + 2*HandshakeSize, c2, true, nil
}
