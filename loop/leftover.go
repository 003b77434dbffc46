package loop

import "github.com/panjf2000/gnet/v2"

// Connections read in batches (publishers, ingest upstreams; batch.go) are
// read both by the loop's clock, into the loop's scratch buffer, and by
// gnet when a burst wakes the loop. What a batched read brought and the
// connection's parser did not take (the start of a chunk) is kept in the
// connection's leftover and goes before the next bytes, whichever reads
// them.

// consumeConn hands consume the bytes gnet read for c, after the leftover
// if any, and discards what was taken from gnet's buffer.
func consumeConn(c gnet.Conn, leftover *[]byte, consume func([]byte) (int, error)) error {
	buf, _ := c.Peek(-1)
	if len(*leftover) > 0 {
		*leftover = append(*leftover, buf...)
		_, _ = c.Discard(len(buf))
		n, err := consume(*leftover)
		keepLeftover(leftover, (*leftover)[n:])
		return err
	}
	n, err := consume(buf)
	if n > 0 { // gnet's Discard(0) discards everything
		_, _ = c.Discard(n)
	}
	return err
}

// consumeBatch hands consume b (a batched read, in the loop's scratch),
// after the leftover if any, and keeps what it did not take.
func consumeBatch(b []byte, leftover *[]byte, consume func([]byte) (int, error)) error {
	if len(*leftover) > 0 {
		*leftover = append(*leftover, b...)
		b = *leftover
	}
	n, err := consume(b)
	keepLeftover(leftover, b[n:])
	return err
}

// keepLeftover holds rest for the next read (nil when empty).
func keepLeftover(leftover *[]byte, rest []byte) {
	if len(rest) == 0 {
		*leftover = nil
		return
	}
	*leftover = append((*leftover)[:0], rest...)
}
