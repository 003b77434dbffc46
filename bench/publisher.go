package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/rtmpedge/rtmpedge/chunk"
)

// ReadFLV reads the audio, video and data tags of an FLV file.
func ReadFLV(path string) ([]Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:3]) != "FLV" {
		return nil, fmt.Errorf("%s: not an FLV file", path)
	}
	if _, err := r.Discard(int(binary.BigEndian.Uint32(hdr[5:])) - 9 + 4); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var frames []Frame
	for {
		var th [11]byte
		if _, err := io.ReadFull(r, th[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return frames, nil
			}
			return frames, fmt.Errorf("%s: tag header: %w", path, err)
		}
		size := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
		ts := uint32(th[4])<<16 | uint32(th[5])<<8 | uint32(th[6]) | uint32(th[7])<<24
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return frames, fmt.Errorf("%s: tag body: %w", path, err)
		}
		if _, err := r.Discard(4); err != nil && !errors.Is(err, io.EOF) {
			return frames, err
		}
		switch th[0] {
		case chunk.TypeAudio, chunk.TypeVideo, chunk.TypeDataAMF0:
			frames = append(frames, Frame{TypeID: th[0], Timestamp: ts, Payload: body})
		}
	}
}

// Source yields the frames a publisher sends, in order, forever.
type Source interface {
	Headers() []Frame
	Next() Frame
}

// FileSource loops an FLV file's frames, shifting timestamps so they keep
// increasing across loops. Sequence headers and metadata are sent once.
type FileSource struct {
	headers, frames []Frame
	i               int
	offset, last    uint32
}

// NewFileSource reads path.
func NewFileSource(path string) (*FileSource, error) {
	all, err := ReadFLV(path)
	if err != nil {
		return nil, err
	}
	s := &FileSource{}
	for _, f := range all {
		seq := (f.TypeID == chunk.TypeVideo && len(f.Payload) > 1 && f.Payload[1] == 0 && f.Payload[0]&0x0f == 7) ||
			(f.TypeID == chunk.TypeAudio && len(f.Payload) > 1 && f.Payload[0]>>4 == 10 && f.Payload[1] == 0) ||
			f.TypeID == chunk.TypeDataAMF0
		if seq {
			s.headers = append(s.headers, f)
		} else {
			s.frames = append(s.frames, f)
		}
	}
	if len(s.frames) == 0 {
		return nil, fmt.Errorf("%s: no media frames", path)
	}
	return s, nil
}

// Headers returns the metadata and sequence headers.
func (s *FileSource) Headers() []Frame { return s.headers }

// Next returns the next frame.
func (s *FileSource) Next() Frame {
	if s.i == len(s.frames) {
		s.i = 0
		s.offset = s.last + 40 - s.frames[0].Timestamp
	}
	f := s.frames[s.i]
	s.i++
	f.Timestamp += s.offset
	s.last = f.Timestamp
	return f
}

// Publish sends src to url in real time until ctx is done, and returns the
// bytes of media sent.
func Publish(ctx context.Context, url string, src Source) (int64, error) {
	return PublishCounting(ctx, url, src, nil)
}

// PublishCounting is Publish that also adds the media bytes it sends to
// counter as it goes (when counter is not nil).
func PublishCounting(ctx context.Context, url string, src Source, counter *atomic.Int64) (int64, error) {
	return publish(ctx, url, src, counter, nil)
}

// publish is PublishCounting that calls started (when not nil) once the
// server accepted the publish.
func publish(ctx context.Context, url string, src Source, counter *atomic.Int64, started func()) (int64, error) {
	c, err := Dial(url, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.SetChunkSize(4096); err != nil {
		return 0, err
	}
	if err := c.Publish(); err != nil {
		return 0, err
	}
	if started != nil {
		started()
	}
	go func() { // drain what the server sends (acks, pings)
		for {
			if _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	var sent int64
	for _, f := range src.Headers() {
		if err := c.WriteMessage(f.TypeID, f.Timestamp, f.Payload); err != nil {
			return sent, err
		}
	}
	start := time.Now()
	var first uint32
	haveFirst := false
	timer := time.NewTimer(time.Hour) // one timer for all the waits: hundreds of publishers send tens of thousands of messages a second
	defer timer.Stop()
	for ctx.Err() == nil {
		f := src.Next()
		if !haveFirst {
			first, haveFirst = f.Timestamp, true
		}
		if wait := time.Duration(f.Timestamp-first)*time.Millisecond - time.Since(start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return sent, nil
			case <-timer.C:
			}
		}
		if err := c.WriteMessage(f.TypeID, f.Timestamp, f.Payload); err != nil {
			if ctx.Err() != nil {
				return sent, nil
			}
			return sent, err
		}
		sent += int64(len(f.Payload))
		if counter != nil {
			counter.Add(int64(len(f.Payload)))
		}
	}
	return sent, nil
}
