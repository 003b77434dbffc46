package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Floor is the physical limit a fan-out server is compared with: a bare
// gnet server that writes the same byte rate to every connected client at a
// fixed cadence, with no RTMP at all.
type Floor struct {
	gnet.BuiltinEventEngine
	Addr    string
	Bitrate float64       // bits per second per client
	Cadence time.Duration // write interval (350ms: merged writes; 33ms: every frame)

	payload []byte
	mu      sync.Mutex
	loops   map[gnet.EventLoop][]gnet.Conn
	eng     gnet.Engine
}

// Run serves until ctx is done.
func (f *Floor) Run(ctx context.Context) error {
	n := int(f.Bitrate / 8 * f.Cadence.Seconds())
	f.payload = make([]byte, max(n, 1))
	f.loops = make(map[gnet.EventLoop][]gnet.Conn)
	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run(f, "tcp://"+f.Addr, gnet.WithNumEventLoop(runtime.GOMAXPROCS(0)),
			gnet.WithReuseAddr(true), gnet.WithTicker(true), gnet.WithLoadBalancing(gnet.LeastConnections))
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("floor: %w", err)
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.eng.Stop(stop)
	return nil
}

// OnBoot keeps the engine.
func (f *Floor) OnBoot(eng gnet.Engine) gnet.Action { f.eng = eng; return gnet.None }

// OnOpen registers a client.
func (f *Floor) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	f.mu.Lock()
	f.loops[c.EventLoop()] = append(f.loops[c.EventLoop()], c)
	f.mu.Unlock()
	return nil, gnet.None
}

// OnClose forgets a client.
func (f *Floor) OnClose(c gnet.Conn, _ error) gnet.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs := f.loops[c.EventLoop()]
	for i, x := range cs {
		if x == c {
			cs[i] = cs[len(cs)-1]
			f.loops[c.EventLoop()] = cs[:len(cs)-1]
			break
		}
	}
	return gnet.None
}

// OnTraffic discards what clients send.
func (f *Floor) OnTraffic(c gnet.Conn) gnet.Action {
	_, _ = c.Discard(c.InboundBuffered())
	return gnet.None
}

// OnTick writes one cadence's worth of bytes to every client, one task per
// event loop, as the real server's fan-out does.
func (f *Floor) OnTick() (time.Duration, gnet.Action) {
	f.mu.Lock()
	for loop := range f.loops {
		_ = loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			f.mu.Lock()
			cs := f.loops[loop]
			f.mu.Unlock()
			for _, c := range cs {
				if c.OutboundBuffered() < 4<<20 {
					_, _ = c.Write(f.payload)
				}
			}
			return nil
		}))
	}
	f.mu.Unlock()
	return f.Cadence, gnet.None
}
