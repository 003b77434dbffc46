package api

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtmpedge/rtmpedge/loop"
)

// Rates are sampled every rateEvery while the API serves and reported over
// the last rateWindow (SRS's recv_30s and send_30s).
const (
	rateEvery  = 2 * time.Second
	rateWindow = 30 * time.Second
	rateKeep   = int(rateWindow/rateEvery) + 1
)

// rateKey names what a rate is of: 'c' a client, 's' a stream, 'v' a vhost.
type rateKey struct {
	kind byte
	id   string
}

type sample struct {
	at      time.Time
	in, out uint64
}

// rates keeps recent byte-count samples of clients, streams and vhosts,
// and of the process's CPU time.
type rates struct {
	srv *loop.Server

	mu      sync.Mutex
	series  map[rateKey][]sample
	cpu     []cpuSample
	running bool
	stopCh  chan struct{}
}

type cpuSample struct {
	at    time.Time
	ticks uint64 // utime + stime, in clock ticks
}

func newRates(srv *loop.Server) *rates {
	return &rates{srv: srv, series: map[rateKey][]sample{}}
}

// start begins sampling, once.
func (r *rates) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return
	}
	r.running = true
	r.stopCh = make(chan struct{})
	go r.run(r.stopCh)
}

func (r *rates) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		close(r.stopCh)
		r.running = false
	}
}

func (r *rates) run(stop <-chan struct{}) {
	t := time.NewTicker(rateEvery)
	defer t.Stop()
	r.sample(time.Now())
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			r.sample(now)
		}
	}
}

// sample records the byte counts of everything there is now.
func (r *rates) sample(now time.Time) {
	cur := map[rateKey]sample{}
	snap := r.srv.Snapshot()
	for _, c := range snap.Clients {
		cur[rateKey{'c', strconv.FormatUint(c.ID, 10)}] = sample{now, c.BytesIn, c.BytesOut}
	}
	for _, s := range snap.Streams {
		cur[rateKey{'s', s.ID}] = sample{now, s.BytesIn, s.BytesOut}
	}
	for name, b := range r.srv.ClientBytes() {
		cur[rateKey{'v', name}] = sample{now, b[0], b[1]}
	}
	ticks, cpuOK := processTicks()

	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.series {
		if _, ok := cur[k]; !ok {
			delete(r.series, k)
		}
	}
	for k, s := range cur {
		ss := append(r.series[k], s)
		if len(ss) > rateKeep {
			ss = ss[len(ss)-rateKeep:]
		}
		r.series[k] = ss
	}
	if cpuOK {
		r.cpu = append(r.cpu, cpuSample{now, ticks})
		if len(r.cpu) > rateKeep {
			r.cpu = r.cpu[len(r.cpu)-rateKeep:]
		}
	}
}

// kbps returns the receive and send rates of k in kilobits per second over
// the samples kept (up to 30 s; 0 before two samples).
func (r *rates) kbps(k rateKey) (in, out int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.series[k]
	if len(ss) < 2 {
		return 0, 0
	}
	first, last := ss[0], ss[len(ss)-1]
	secs := last.at.Sub(first.at).Seconds()
	if secs <= 0 || last.in < first.in || last.out < first.out {
		return 0, 0
	}
	return int64(float64(last.in-first.in) * 8 / 1000 / secs), int64(float64(last.out-first.out) * 8 / 1000 / secs)
}

// cpuPercent is the process's CPU use over the samples kept, in percent
// of one core.
func (r *rates) cpuPercent() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cpu) < 2 {
		return 0
	}
	first, last := r.cpu[0], r.cpu[len(r.cpu)-1]
	secs := last.at.Sub(first.at).Seconds()
	if secs <= 0 {
		return 0
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return float64(int64(float64(last.ticks-first.ticks)/ticksPerSecond/secs*10000)) / 100
}

// processTicks reads the process's user and system CPU time.
func processTicks() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	return utime + stime, err1 == nil && err2 == nil
}
