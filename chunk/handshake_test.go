package chunk

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// makeC0C1 builds a C0+C1 with the given version; schema >= 0 imprints a
// Flash Player digest with that schema.
func makeC0C1(version [4]byte, schema int, fill byte) []byte {
	b := make([]byte, 1+HandshakeSize)
	b[0] = 3
	for i := 9; i < len(b); i++ {
		b[i] = byte(i*7) ^ fill
	}
	copy(b[5:9], version[:])
	if schema >= 0 {
		imprintDigest(b[1:], schema, playerKey[:playerKeyOpen])
	}
	return b
}

// checkS2 verifies a complex S2 against the C1 digest.
func checkS2(t *testing.T, c1, s2 []byte) {
	t.Helper()
	_, off := findDigest(c1, playerKey[:playerKeyOpen])
	if off < 0 {
		t.Fatal("C1 has no digest")
	}
	sig := responseSignature(s2, c1[off:off+32], serverKey)
	if !bytes.Equal(sig, s2[HandshakeSize-32:]) {
		t.Fatal("S2 signature does not verify")
	}
}

func TestHandshakeComplexRoundTrip(t *testing.T) {
	cli := NewClientHandshake(true)
	srv := NewServerHandshake()
	c0c1 := cli.C0C1()
	if len(c0c1) != 1537 || c0c1[0] != 3 {
		t.Fatalf("C0C1: len %d, C0 %d", len(c0c1), c0c1[0])
	}
	if !bytes.Equal(c0c1[5:9], []byte{9, 0, 124, 2}) {
		t.Fatalf("C1 version % x", c0c1[5:9])
	}
	if !bytes.Equal(cli.C0C1(), c0c1) {
		t.Fatal("C0C1 not stable across calls")
	}
	if s, _ := findDigest(c0c1[1:], playerKey[:playerKeyOpen]); s != 0 {
		t.Fatalf("client C1 digest schema %d, want 0 (ffmpeg's)", s)
	}
	n, out, done, err := srv.Feed(c0c1)
	if err != nil || n != 1537 || done || len(out) != 3073 {
		t.Fatalf("server Feed(C0C1) = %d, %d bytes, %v, %v", n, len(out), done, err)
	}
	if !srv.Complex() {
		t.Fatal("server did not detect complex handshake")
	}
	if out[0] != 3 || binary.BigEndian.Uint32(out[5:9]) == 0 {
		t.Fatalf("S0 %d, S1 version % x", out[0], out[5:9])
	}
	if s, _ := findDigest(out[1:1537], serverKey[:serverKeyOpen]); s != 0 {
		t.Fatalf("S1 digest schema %d, want 0 like C1", s)
	}
	checkS2(t, c0c1[1:], out[1537:])

	n, c2, done, err := cli.Feed(append(out, 0xAA)) // trailing byte is not consumed
	if err != nil || n != 3073 || !done || len(c2) != 1536 {
		t.Fatalf("client Feed = %d, %d bytes, %v, %v", n, len(c2), done, err)
	}
	// C2 is signed with HMAC(FP full key, S1 digest).
	_, off := findDigest(out[1:1537], serverKey[:serverKeyOpen])
	if !bytes.Equal(responseSignature(c2, out[1+off:1+off+32], playerKey), c2[1504:]) {
		t.Fatal("C2 signature does not verify")
	}
	if n, _, done, err := cli.Feed(nil); n != 0 || !done || err != nil {
		t.Fatal("client Feed after done")
	}

	n, out, done, err = srv.Feed(append(c2, 0x02, 0x00))
	if err != nil || n != 1536 || !done || out != nil {
		t.Fatalf("server Feed(C2) = %d, %d bytes, %v, %v", n, len(out), done, err)
	}
	if n, _, done, err := srv.Feed([]byte{1, 2, 3}); n != 0 || !done || err != nil {
		t.Fatal("server Feed after done must consume nothing")
	}
}

func TestServerHandshakeSchemas(t *testing.T) {
	for schema := 0; schema < 2; schema++ {
		c0c1 := makeC0C1([4]byte{10, 0, 32, 18}, schema, byte(schema))
		if s, _ := findDigest(c0c1[1:], playerKey[:playerKeyOpen]); s != schema {
			t.Fatalf("built schema %d, found %d", schema, s)
		}
		srv := NewServerHandshake()
		_, out, _, err := srv.Feed(c0c1)
		if err != nil || !srv.Complex() {
			t.Fatalf("schema %d: err %v complex %v", schema, err, srv.Complex())
		}
		if s, _ := findDigest(out[1:1537], serverKey[:serverKeyOpen]); s != schema {
			t.Fatalf("schema %d: S1 digest schema %d", schema, s)
		}
		checkS2(t, c0c1[1:], out[1537:])

		// The client accepts either S1 schema.
		cli := NewClientHandshake(true)
		cli.c0c1 = c0c1
		_, cli.c1Digest = findDigest(c0c1[1:], playerKey[:playerKeyOpen])
		if _, _, done, err := cli.Feed(out); err != nil || !done {
			t.Fatalf("schema %d: client: %v", schema, err)
		}
	}
}

func TestServerHandshakeSimple(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version [4]byte
		schema  int
	}{
		{"zero version", [4]byte{}, -1},
		{"zero version with digest", [4]byte{}, 0},
		{"version without digest", [4]byte{9, 0, 124, 2}, -1},
	} {
		c0c1 := makeC0C1(tc.version, tc.schema, 1)
		srv := NewServerHandshake()
		n, out, done, err := srv.Feed(c0c1)
		if err != nil || n != 1537 || done {
			t.Fatalf("%s: %d %v %v", tc.name, n, done, err)
		}
		if srv.Complex() {
			t.Fatalf("%s: complex", tc.name)
		}
		if !bytes.Equal(out[5:9], []byte{0, 0, 0, 0}) {
			t.Fatalf("%s: S1 version % x, want zero", tc.name, out[5:9])
		}
		if !bytes.Equal(out[1537:], c0c1[1:]) {
			t.Fatalf("%s: S2 is not an echo of C1", tc.name)
		}
		// A simple client echoes S1.
		cli := NewClientHandshake(false)
		cli.C0C1()
		_, c2, _, err := cli.Feed(out)
		if err != nil || !bytes.Equal(c2, out[1:1537]) {
			t.Fatalf("%s: client C2 not echo of S1: %v", tc.name, err)
		}
	}
}

func TestClientSimpleC0C1(t *testing.T) {
	c0c1 := NewClientHandshake(false).C0C1()
	if len(c0c1) != 1537 || c0c1[0] != 3 || !bytes.Equal(c0c1[5:9], []byte{0, 0, 0, 0}) {
		t.Fatalf("simple C0C1 header % x", c0c1[:9])
	}
	srv := NewServerHandshake()
	if _, _, _, err := srv.Feed(c0c1); err != nil || srv.Complex() {
		t.Fatalf("err %v complex %v", err, srv.Complex())
	}
}

func TestHandshakeBadVersion(t *testing.T) {
	for _, v := range []byte{0, 1, 2, 4, 6, 8, 9, 'G', 0xFF} {
		srv := NewServerHandshake()
		// The version is judged from the first byte alone.
		n, out, done, err := srv.Feed([]byte{v})
		if err == nil || n != 0 || out != nil || done {
			t.Fatalf("C0 %d: accepted (%d, %v, %v)", v, n, done, err)
		}
		if (v == 6 || v == 8 || v == 9) != strings.Contains(err.Error(), "encrypted") {
			t.Fatalf("C0 %d: error %q", v, err)
		}
		cli := NewClientHandshake(true)
		cli.C0C1()
		if _, _, _, err := cli.Feed([]byte{v}); err == nil {
			t.Fatalf("S0 %d accepted by client", v)
		}
	}
	srv := NewServerHandshake()
	if n, out, done, err := srv.Feed(nil); n != 0 || out != nil || done || err != nil {
		t.Fatal("Feed(nil)")
	}
}

// TestServerHandshakeByteByByte feeds C0C1, C2 and trailing chunk bytes one
// byte at a time through an accumulating buffer.
func TestServerHandshakeByteByByte(t *testing.T) {
	cli := NewClientHandshake(true)
	srv := NewServerHandshake()
	c0c1 := cli.C0C1()
	// Precompute C2 with a second server so we know the full input.
	_, out, _, _ := NewServerHandshake().Feed(c0c1)
	_, c2, _, err := cli.Feed(out)
	if err != nil {
		t.Fatal(err)
	}
	trailer := []byte{0x03, 0, 0, 0, 0, 0, 5, 20}
	input := append(append(append([]byte{}, c0c1...), c2...), trailer...)

	var pending []byte
	var got []byte
	total := 0
	doneAt := -1
	for i, c := range input {
		pending = append(pending, c)
		n, o, done, err := srv.Feed(pending)
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		if o != nil {
			if i != 1536 {
				t.Fatalf("S0S1S2 produced at byte %d", i)
			}
			got = o
		}
		if n != 0 && i != 1536 && i != 3072 {
			t.Fatalf("consumed %d at byte %d", n, i)
		}
		total += n
		pending = pending[n:]
		if done && doneAt < 0 {
			doneAt = i
		}
	}
	if len(got) != 3073 || doneAt != 3072 || total != 3073 || !bytes.Equal(pending, trailer) {
		t.Fatalf("out %d bytes, done at %d, consumed %d, pending % x", len(got), doneAt, total, pending)
	}
	if !srv.Complex() {
		t.Fatal("not complex")
	}
}

func TestServerHandshakeAllAtOnce(t *testing.T) {
	c0c1 := makeC0C1([4]byte{9, 0, 124, 2}, 1, 3)
	c2 := make([]byte, 1536)
	srv := NewServerHandshake()
	n, out, done, err := srv.Feed(append(append(append([]byte{}, c0c1...), c2...), 7, 7))
	if err != nil || n != 3073 || len(out) != 3073 || !done || !srv.Complex() {
		t.Fatalf("%d, %d bytes, %v, %v", n, len(out), done, err)
	}
}

func TestClientHandshakeByteByByte(t *testing.T) {
	cli := NewClientHandshake(true)
	_, out, _, _ := NewServerHandshake().Feed(cli.C0C1())
	input := append(out, 1, 2, 3)
	var pending []byte
	for i, c := range input {
		pending = append(pending, c)
		n, c2, done, err := cli.Feed(pending)
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		if i < 3072 && (n != 0 || done || c2 != nil) {
			t.Fatalf("byte %d: consumed %d", i, n)
		}
		if i == 3072 && (n != 3073 || !done || len(c2) != 1536) {
			t.Fatalf("byte %d: %d %v", i, n, done)
		}
		pending = pending[n:]
	}
	if len(pending) != 3 {
		t.Fatalf("pending %d", len(pending))
	}
}

func TestClientVerifiesServer(t *testing.T) {
	newPair := func() (*ClientHandshake, []byte) {
		cli := NewClientHandshake(true)
		_, out, _, err := NewServerHandshake().Feed(cli.C0C1())
		if err != nil {
			t.Fatal(err)
		}
		return cli, out
	}
	// Corrupt S1 digest.
	cli, out := newPair()
	_, off := findDigest(out[1:1537], serverKey[:serverKeyOpen])
	out[1+off] ^= 1
	if _, _, _, err := cli.Feed(out); err == nil || !strings.Contains(err.Error(), "S1") {
		t.Fatalf("corrupt S1 digest: %v", err)
	}
	// Corrupt S1 elsewhere (digest no longer matches content).
	cli, out = newPair()
	out[1+1535] ^= 0x80
	if _, _, _, err := cli.Feed(out); err == nil {
		t.Fatal("corrupt S1 body accepted")
	}
	// Corrupt S2 signature.
	cli, out = newPair()
	out[3072] ^= 1
	if _, _, _, err := cli.Feed(out); err == nil || !strings.Contains(err.Error(), "S2") {
		t.Fatalf("corrupt S2: %v", err)
	}
	// Server answered simple (zero S1 version): C2 echoes S1.
	cli = NewClientHandshake(true)
	_, out, _, _ = NewServerHandshake().Feed(makeC0C1([4]byte{}, -1, 9))
	n, c2, done, err := cli.Feed(out)
	if err != nil || n != 3073 || !done || !bytes.Equal(c2, out[1:1537]) {
		t.Fatalf("simple server: %v", err)
	}
}

func TestDigestOffset(t *testing.T) {
	p := make([]byte, HandshakeSize)
	// Schema 0: 12 + sum(bytes 8..11) % 728.
	copy(p[8:], []byte{0xFF, 0xFF, 0xFF, 0xFF}) // 1020 % 728 = 292
	if got := digestOffset(p, 0); got != 304 {
		t.Fatalf("schema 0: %d, want 304", got)
	}
	copy(p[8:], []byte{200, 100, 50, 0}) // 350
	if got := digestOffset(p, 0); got != 362 {
		t.Fatalf("schema 0: %d, want 362", got)
	}
	copy(p[8:], []byte{182, 182, 182, 182}) // 728 % 728 = 0
	if got := digestOffset(p, 0); got != 12 {
		t.Fatalf("schema 0: %d, want 12", got)
	}
	// Schema 1: 776 + sum(bytes 772..775) % 728.
	copy(p[772:], []byte{1, 2, 3, 4})
	if got := digestOffset(p, 1); got != 786 {
		t.Fatalf("schema 1: %d, want 786", got)
	}
	copy(p[772:], []byte{0xFF, 0xFF, 0xFF, 0xFF})
	if got := digestOffset(p, 1); got != 1068 {
		t.Fatalf("schema 1: %d, want 1068", got)
	}
	// The largest offsets keep the digest inside its block.
	copy(p[8:], []byte{255, 255, 217, 0}) // 727
	if got := digestOffset(p, 0); got != 739 || got+32 > 772 {
		t.Fatalf("schema 0 max: %d", got)
	}
	copy(p[772:], []byte{255, 255, 217, 0})
	if got := digestOffset(p, 1); got != 1503 || got+32 > HandshakeSize {
		t.Fatalf("schema 1 max: %d", got)
	}
}

// Captured from real implementations (see testdata): ffmpeg 5.1 and rtmpdump
// 2.4 (librtmp, FP9 handshake) connecting to this server, and librtmp's
// rtmpsrv answering this package's complex client.
func TestHandshakeRealPeers(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		file   string
		schema int
	}{
		{"ffmpeg_c0c1.bin", 0},
		{"rtmpdump_c0c1.bin", 0},
	} {
		c0c1 := read(tc.file)
		if s, _ := findDigest(c0c1[1:], playerKey[:playerKeyOpen]); s != tc.schema {
			t.Fatalf("%s: schema %d, want %d", tc.file, s, tc.schema)
		}
		srv := NewServerHandshake()
		_, out, _, err := srv.Feed(c0c1)
		if err != nil || !srv.Complex() {
			t.Fatalf("%s: err %v complex %v", tc.file, err, srv.Complex())
		}
		checkS2(t, c0c1[1:], out[1537:])
	}
	// ffmpeg's C1 starts with zero uptime and version 9.0.124.2.
	if c := read("ffmpeg_c0c1.bin"); !bytes.Equal(c[:9], []byte{3, 0, 0, 0, 0, 9, 0, 124, 2}) {
		t.Fatalf("ffmpeg C0C1 header % x", c[:9])
	}

	cli := NewClientHandshake(true)
	cli.c0c1 = read("rtmpsrv_our_c0c1.bin")
	cli.c1Digest = digestOffset(cli.c0c1[1:], 0)
	s := read("rtmpsrv_s0s1s2.bin")
	n, c2, done, err := cli.Feed(s)
	if err != nil || n != 3073 || !done || len(c2) != 1536 {
		t.Fatalf("client vs rtmpsrv: %d %v %v", n, done, err)
	}
}
