package hook

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Notifier posts notifications (hooks whose answer decides nothing) from a
// bounded queue on a few background goroutines, so that an event loop never
// waits for a hook server. A notification that finds the queue full is
// dropped and counted; none is retried.
type Notifier struct {
	// Pointers: a queue of 4096 values would take 0.9 MB (scanned by every
	// GC cycle) on a server that may never send a notification.
	queue chan *notice
	log   *slog.Logger

	sent, failed, dropped atomic.Uint64
	warnedAt              atomic.Int64 // unix ns of the last WARN about drops
	wg                    sync.WaitGroup
	stop                  chan struct{}
}

type notice struct {
	url     string
	req     Request
	timeout time.Duration
}

// NewNotifier starts workers goroutines posting from a queue of size
// entries.
func NewNotifier(size, workers int, log *slog.Logger) *Notifier {
	n := &Notifier{queue: make(chan *notice, size), log: log, stop: make(chan struct{})}
	for range workers {
		n.wg.Add(1)
		go n.work()
	}
	return n
}

// Notify queues req for url, to be posted within timeout, without waiting;
// it reports false (and counts the drop) when the queue is full.
func (n *Notifier) Notify(url string, req Request, timeout time.Duration) bool {
	select {
	case n.queue <- &notice{url: url, req: req, timeout: timeout}:
		return true
	default:
	}
	d := n.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := n.warnedAt.Load(); now-last > int64(10*time.Second) && n.warnedAt.CompareAndSwap(last, now) {
		n.log.Warn("hook notification dropped: queue full (the hook server is slow or down)",
			"action", req.Action, "url", url, "dropped_total", d, "queue", cap(n.queue))
	}
	return false
}

// Counts returns how many notifications were posted, failed (transport
// error or a non-allowing answer) and dropped.
func (n *Notifier) Counts() (sent, failed, dropped uint64) {
	return n.sent.Load(), n.failed.Load(), n.dropped.Load()
}

// Close stops the workers after the queued notifications were posted, or
// when ctx ends.
func (n *Notifier) Close(ctx context.Context) {
	close(n.stop)
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (n *Notifier) work() {
	defer n.wg.Done()
	for {
		select {
		case nt := <-n.queue:
			n.post(nt)
		case <-n.stop:
			for { // post what is queued, then stop
				select {
				case nt := <-n.queue:
					n.post(nt)
				default:
					return
				}
			}
		}
	}
}

func (n *Notifier) post(nt *notice) {
	ctx, cancel := context.WithTimeout(context.Background(), nt.timeout)
	err := Call(ctx, nt.url, nt.req)
	cancel()
	n.sent.Add(1)
	if err != nil {
		n.failed.Add(1)
		n.log.Debug("hook notification failed", "action", nt.req.Action, "url", nt.url, "err", err)
	}
}
