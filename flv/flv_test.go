package flv

import (
	"bytes"
	"testing"
)

func TestHeaderFlags(t *testing.T) {
	for _, c := range []struct {
		audio, video bool
		flags        byte
	}{{true, true, 5}, {true, false, 4}, {false, true, 1}, {false, false, 0}} {
		h := AppendHeader(nil, c.audio, c.video)
		want := []byte{'F', 'L', 'V', 1, c.flags, 0, 0, 0, 9, 0, 0, 0, 0}
		if !bytes.Equal(h, want) || len(h) != HeaderSize {
			t.Errorf("audio %v video %v: % x, want % x", c.audio, c.video, h, want)
		}
	}
}

func TestTagHeaderAndTrailer(t *testing.T) {
	h := AppendTagHeader(nil, TagVideo, 0x012345, 0x89ABCDEF)
	want := []byte{9, 0x01, 0x23, 0x45, 0xAB, 0xCD, 0xEF, 0x89, 0, 0, 0}
	if !bytes.Equal(h, want) {
		t.Fatalf("tag header % x, want % x", h, want)
	}
	if tr := AppendTrailer(nil, 100); !bytes.Equal(tr, []byte{0, 0, 0, 111}) {
		t.Fatalf("trailer % x", tr)
	}
}
