// Package cluster keeps one source per stream across the origins and edges
// of a cluster with a stream registry in Redis.
//
// An origin that accepts a publish claims the stream: SET key value NX PX
// ttl, where the value names the origin's advertised RTMP address and the
// publish (this process and the publishing connection). A heartbeat renews
// the claims the origin holds, only while their value is still its own, and
// writes them again when they are gone (Redis restarted empty, or was down
// longer than the TTL). Unpublishing deletes the claim, again only if it is
// still the origin's. Edges and origins look streams up to learn where they
// are published.
//
// Every call may block on the network: call them off the event loops.
// Redis being unreachable or slow is never fatal: calls give up within the
// lookup timeout, count the failure, warn (at most once every 10 s) and
// report that the registry could not be asked, so callers go on with local
// knowledge.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rtmpedge/rtmpedge/cluster/resp"
)

// KeyPrefix starts every registry key; the stream follows as
// vhost/app/stream.
const KeyPrefix = "rtmpedge:stream:"

// warnEvery is the shortest interval between two warnings about the
// registry being unreachable.
const warnEvery = 10 * time.Second

// claimAttempts bounds the rounds of a claim whose holder keeps changing.
const claimAttempts = 3

// probeTTL is how long the result of an origin's liveness probe is reused,
// so that many players of one stream cost its holder one probe connection.
const probeTTL = time.Second

// probe is the result of a liveness probe.
type probe struct {
	up bool
	at time.Time
}

// Settings are the registry's timings and this server's address. The
// Locator reads them at each use, so a reloaded configuration applies to
// the next request.
type Settings struct {
	Advertise     string        // host:port written into claims
	ClaimTTL      time.Duration // a claim not renewed this long expires
	Heartbeat     time.Duration // claims are renewed this often
	LookupTimeout time.Duration // one registry request, and one liveness probe
}

// Holder is the origin a claim names.
type Holder struct {
	Addr  string // its advertised RTMP address (host:port)
	Token string // the claiming process and publish: "instance/owner"
}

func (h Holder) value() string { return h.Addr + " " + h.Token }

func (h Holder) instance() string {
	i, _, _ := strings.Cut(h.Token, "/")
	return i
}

// parseHolder reads a claim's value.
func parseHolder(v string) (Holder, bool) {
	addr, token, ok := strings.Cut(v, " ")
	if !ok || addr == "" || token == "" {
		return Holder{}, false
	}
	return Holder{Addr: addr, Token: token}, true
}

// Outcome is the result of a claim.
type Outcome int

// Claim outcomes.
const (
	// Claimed: this server holds the claim (new, renewed, or taken over
	// from an origin that is gone).
	Claimed Outcome = iota
	// Conflict: another origin that is up holds the claim.
	Conflict
	// Unavailable: the registry could not be asked. The caller goes on
	// with local knowledge; the heartbeat claims the stream once it can.
	Unavailable
)

func (o Outcome) String() string {
	switch o {
	case Claimed:
		return "claimed"
	case Conflict:
		return "conflict"
	}
	return "unavailable"
}

// Claim is what Locator.Claim found.
type Claim struct {
	Outcome  Outcome
	Holder   Holder // with Conflict: the origin that has the stream
	TookOver bool   // with Claimed: the previous holder was gone
}

// Stats are the registry's counters since the Locator opened.
type Stats struct {
	Errors    int64 // registry requests that failed or timed out
	Lookups   int64 // streams looked up
	Found     int64 // lookups that named an origin
	Claims    int64 // claims made (the first one of each publish)
	Conflicts int64 // claims refused: another live origin had the stream
	Takeovers int64 // claims taken over from an origin that was gone
	Reclaims  int64 // claims the heartbeat had to write again
	Lost      int64 // heartbeats that found a held claim owned by another origin
	Held      int   // claims this server holds now
}

// held is a claim this server holds (or means to hold while the registry
// cannot be reached).
type held struct {
	owner uint64
	value string
	sure  bool // the registry answered for this value (a claim or a renewal)
	lost  bool // another origin had it at the last heartbeat
}

// tomb is a released claim whose write may still land: its claim request
// timed out, so Redis may run it late (a registry that hung). The heartbeat
// deletes it (if it holds its value) until it would have expired anyway.
type tomb struct{ key, value string }

// Locator is a connection to the stream registry. It is safe for
// concurrent use.
type Locator struct {
	rdb      *resp.Client
	settings func() Settings
	log      *slog.Logger
	instance string // this process, in the claims' tokens

	mu     sync.Mutex
	held   map[string]*held   // by key
	tombs  map[tomb]time.Time // until when to delete them
	probes map[string]probe   // by origin address (as few as there are origins)

	errors, lookups, found, claims, conflicts, takeovers, reclaims, lost atomic.Int64

	down     atomic.Bool  // the last request failed
	lastWarn atomic.Int64 // unix nanoseconds of the last warning

	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
	pending sync.WaitGroup // releases in flight
}

var (
	// swapScript replaces the claim KEYS[1] when it still holds ARGV[1].
	swapScript = resp.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	return 1
end
return 0`)
	// releaseScript deletes the claim KEYS[1] when it still holds ARGV[1].
	releaseScript = resp.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)
	// renewScript extends the claim KEYS[1] when it holds ARGV[1] (1),
	// writes it when it is gone (2), and otherwise returns its holder.
	renewScript = resp.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
if not cur then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	return 2
end
return cur`)
)

// Open returns a Locator for the registry at url (redis:// or rediss://)
// and starts its heartbeat. It does not wait to connect (one connection
// is dialled ahead in the background): an unreachable registry is found
// (and tolerated) at the first request.
func Open(url string, settings func() Settings, log *slog.Logger) (*Locator, error) {
	opt, err := resp.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster: registry: %w", err)
	}
	// Fail fast: one dial, no retry (a pooled connection that the
	// registry closed as it restarted is replaced before use). The
	// callers' deadlines bound the rest, and a request that fails falls
	// back to local knowledge.
	opt.DialTimeout = settings().LookupTimeout
	opt.MinIdle = 1 // a warm connection keeps a cold edge's first lookup to one round trip

	id := make([]byte, 8)
	_, _ = rand.Read(id) // crypto/rand.Read never fails
	l := &Locator{
		rdb:      resp.New(opt),
		settings: settings,
		log:      log.With("registry", opt.Addr),
		instance: hex.EncodeToString(id),
		held:     make(map[string]*held),
		tombs:    make(map[tomb]time.Time),
		probes:   make(map[string]probe),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go l.heartbeat()
	return l, nil
}

// Close stops the heartbeat, waits (within ctx) for the releases in flight
// and closes the connections. Claims still held expire by their TTL. Calls
// after the first do nothing.
func (l *Locator) Close(ctx context.Context) error {
	first := false
	l.stopped.Do(func() { first = true; close(l.stop) })
	if !first {
		return nil
	}
	<-l.done
	released := make(chan struct{})
	go func() { l.pending.Wait(); close(released) }()
	select {
	case <-released:
	case <-ctx.Done():
	}
	if err := l.rdb.Close(); err != nil {
		return fmt.Errorf("cluster: close registry: %w", err)
	}
	return nil
}

// Stats returns the counters.
func (l *Locator) Stats() Stats {
	l.mu.Lock()
	n := len(l.held)
	l.mu.Unlock()
	return Stats{
		Errors: l.errors.Load(), Lookups: l.lookups.Load(), Found: l.found.Load(),
		Claims: l.claims.Load(), Conflicts: l.conflicts.Load(), Takeovers: l.takeovers.Load(),
		Reclaims: l.reclaims.Load(), Lost: l.lost.Load(), Held: n,
	}
}

// Mine reports whether h is a claim made by this process.
func (l *Locator) Mine(h Holder) bool { return h.instance() == l.instance }

// Lookup returns the origin that holds stream (vhost/app/stream); found
// is false when no origin does. It gives up after the lookup timeout.
func (l *Locator) Lookup(ctx context.Context, stream string) (h Holder, found bool, err error) {
	l.lookups.Add(1)
	ctx, cancel := context.WithTimeout(ctx, l.settings().LookupTimeout)
	defer cancel()
	v, err := l.rdb.Do(ctx, "GET", KeyPrefix+stream)
	if errors.Is(err, resp.ErrNil) {
		l.reachable()
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, l.failed("lookup", err)
	}
	l.reachable()
	s, _ := v.(string)
	h, ok := parseHolder(s)
	if ok {
		l.found.Add(1)
	}
	return h, ok, nil
}

// Claim claims stream (vhost/app/stream) for this server's publish owner
// (a connection id). The caller must be the stream's only publisher on
// this server (it holds the stream's hub): any other claim of this process
// for the stream is then a publish that ended, and is replaced.
//
// A claim held by another origin is taken over when that origin is gone:
// its address is this server's own (a former life of it), or its RTMP port
// refuses connections. Otherwise the outcome is Conflict. When the
// registry cannot be asked the outcome is Unavailable, and the stream is
// kept for the heartbeat to claim once it can.
func (l *Locator) Claim(ctx context.Context, stream string, owner uint64) Claim {
	st := l.settings()
	key := KeyPrefix + stream
	me := Holder{Addr: st.Advertise, Token: l.instance + "/" + strconv.FormatUint(owner, 10)}
	val := me.value()
	l.mu.Lock()
	l.held[key] = &held{owner: owner, value: val}
	l.mu.Unlock()
	l.claims.Add(1)

	ctx, cancel := context.WithTimeout(ctx, (claimAttempts+1)*st.LookupTimeout)
	defer cancel()
	var last Holder
	for range claimAttempts {
		ok, err := l.setNX(ctx, st, key, val)
		if err != nil {
			return Claim{Outcome: Unavailable}
		}
		if ok {
			l.confirm(key, owner)
			return Claim{Outcome: Claimed}
		}
		cur, err := l.get(ctx, st, key)
		if errors.Is(err, resp.ErrNil) {
			continue // expired in between
		}
		if err != nil {
			return Claim{Outcome: Unavailable}
		}
		if cur == val {
			l.confirm(key, owner)
			return Claim{Outcome: Claimed} // the heartbeat wrote it first
		}
		h, _ := parseHolder(cur)
		last = h
		if !l.gone(ctx, st, h, true) {
			break
		}
		swapped, err := l.swap(ctx, st, key, cur, val)
		if err != nil {
			return Claim{Outcome: Unavailable}
		}
		if swapped {
			l.confirm(key, owner)
			l.takeovers.Add(1)
			l.log.Info("stream claim taken over from an origin that is gone", "stream", stream, "from", h.Addr)
			return Claim{Outcome: Claimed, TookOver: true}
		}
	}
	l.conflicts.Add(1)
	l.forget(key, owner)
	return Claim{Outcome: Conflict, Holder: last}
}

// Release gives up owner's claim of stream, if it holds it. The delete
// runs in the background; Close waits for it.
func (l *Locator) Release(stream string, owner uint64) {
	key := KeyPrefix + stream
	l.mu.Lock()
	h := l.held[key]
	if h == nil || h.owner != owner {
		l.mu.Unlock()
		return
	}
	delete(l.held, key)
	if !h.sure {
		l.tombs[tomb{key, h.value}] = time.Now().Add(l.settings().ClaimTTL)
	}
	l.mu.Unlock()
	l.pending.Add(1)
	go func() {
		defer l.pending.Done()
		st := l.settings()
		ctx, cancel := context.WithTimeout(context.Background(), st.Heartbeat)
		defer cancel()
		if _, err := releaseScript.Run(ctx, l.rdb, []string{key}, h.value); err != nil {
			_ = l.failed("release", err) // the claim expires by its TTL
			return
		}
		l.reachable()
	}()
}

// Elsewhere reports whether h is another origin that is up: not this
// process, not a former life of this server, and its RTMP port does not
// refuse connections (as probed within the last second).
func (l *Locator) Elsewhere(ctx context.Context, h Holder) bool {
	if l.Mine(h) {
		return false
	}
	return !l.gone(ctx, l.settings(), h, false)
}

// gone reports whether the origin h names is certainly not running: a
// claim of this process (whose publish ended: see Claim), one made at this
// server's own address by an earlier process, or an address whose port
// refuses connections. A probe that times out counts as up: the claim then
// ends by its TTL if the origin is really gone. Unless fresh (a claim about
// to be taken over), a probe result is reused for probeTTL.
func (l *Locator) gone(ctx context.Context, st Settings, h Holder, fresh bool) bool {
	if h.Addr == "" || l.Mine(h) || h.Addr == st.Advertise {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	p, ok := l.probes[h.Addr]
	l.mu.Unlock()
	if ok && !fresh && now.Sub(p.at) < probeTTL {
		return !p.up
	}
	ctx, cancel := context.WithTimeout(ctx, st.LookupTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", h.Addr)
	up := err == nil || !errors.Is(err, syscall.ECONNREFUSED)
	if err == nil {
		c.Close()
	}
	l.mu.Lock()
	l.probes[h.Addr] = probe{up: up, at: now}
	l.mu.Unlock()
	return !up
}

// confirm notes that the registry holds owner's claim of key.
func (l *Locator) confirm(key string, owner uint64) {
	l.mu.Lock()
	if h := l.held[key]; h != nil && h.owner == owner {
		h.sure = true
	}
	l.mu.Unlock()
}

// forget drops owner's local record of key.
func (l *Locator) forget(key string, owner uint64) {
	l.mu.Lock()
	if h := l.held[key]; h != nil && h.owner == owner {
		delete(l.held, key)
	}
	l.mu.Unlock()
}

func (l *Locator) setNX(ctx context.Context, st Settings, key, val string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, st.LookupTimeout)
	defer cancel()
	_, err := l.rdb.Do(ctx, "SET", key, val, "NX", "PX", millis(st.ClaimTTL))
	switch {
	case errors.Is(err, resp.ErrNil):
		l.reachable()
		return false, nil
	case err != nil:
		return false, l.failed("claim", err)
	}
	l.reachable()
	return true, nil
}

func (l *Locator) get(ctx context.Context, st Settings, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, st.LookupTimeout)
	defer cancel()
	v, err := l.rdb.Do(ctx, "GET", key)
	if err != nil && !errors.Is(err, resp.ErrNil) {
		return "", l.failed("claim", err)
	}
	l.reachable()
	s, _ := v.(string)
	return s, err
}

func (l *Locator) swap(ctx context.Context, st Settings, key, old, val string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, st.LookupTimeout)
	defer cancel()
	v, err := swapScript.Run(ctx, l.rdb, []string{key}, old, val, millis(st.ClaimTTL))
	if err != nil {
		return false, l.failed("claim", err)
	}
	l.reachable()
	return v == int64(1), nil
}

// millis is d in milliseconds, as PX and PEXPIRE take it.
func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// heartbeat renews the held claims every heartbeat until Close; while the
// registry is unreachable it tries four times as often, so the claims are
// back well within one heartbeat of its return.
func (l *Locator) heartbeat() {
	defer close(l.done)
	for {
		wait := l.settings().Heartbeat
		if l.down.Load() {
			wait /= 4
		}
		t := time.NewTimer(wait)
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
		l.renew()
	}
}

// renewal is one held claim as a heartbeat found it.
type renewal struct {
	key   string
	owner uint64
	value string
	lost  bool
}

// renew extends every held claim in one pipeline, writes again those that
// are gone, and notes those another origin took.
func (l *Locator) renew() {
	st := l.settings()
	now := time.Now()
	l.mu.Lock()
	rs := make([]renewal, 0, len(l.held))
	for k, h := range l.held {
		rs = append(rs, renewal{key: k, owner: h.owner, value: h.value, lost: h.lost})
	}
	var tombs []tomb
	for tb, until := range l.tombs {
		if now.After(until) {
			delete(l.tombs, tb)
			continue
		}
		tombs = append(tombs, tb)
	}
	l.mu.Unlock()
	if len(rs) == 0 && len(tombs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.Heartbeat)
	defer cancel()
	// EVAL, not EVALSHA: a registry that restarted has no scripts.
	cmds := make([][]string, 0, len(rs)+len(tombs))
	for _, r := range rs {
		cmds = append(cmds, renewScript.Eval([]string{r.key}, r.value, millis(st.ClaimTTL)))
	}
	for _, tb := range tombs {
		cmds = append(cmds, releaseScript.Eval([]string{tb.key}, tb.value))
	}
	results, err := l.rdb.Pipeline(ctx, cmds...)
	if err == nil && allFailed(results[:len(rs)]) {
		err = firstError(results)
	}
	if err != nil {
		_ = l.failed("heartbeat", err)
		return
	}
	l.reachable()
	for i, r := range rs {
		res, err := results[i].Val, results[i].Err
		if err != nil {
			_ = l.failed("heartbeat", err)
			continue
		}
		stream := strings.TrimPrefix(r.key, KeyPrefix)
		switch v := res.(type) {
		case int64:
			l.setLost(r, false)
			l.confirm(r.key, r.owner)
			if v != 2 {
				continue
			}
			l.reclaims.Add(1)
			if !l.stillHeld(r) {
				// Released while the heartbeat wrote it: take it back.
				l.pending.Add(1)
				go l.undo(r)
				continue
			}
			l.log.Info("stream claim re-established", "stream", stream)
		case string:
			h, _ := parseHolder(v)
			if l.Mine(h) || !l.stillHeld(r) {
				continue // another publish of ours took it over, or it ended
			}
			if !r.lost {
				l.lost.Add(1)
				l.log.Warn("stream claimed by another origin while published here", "stream", stream, "holder", h.Addr)
			}
			l.setLost(r, true)
		}
	}
}

// firstError returns the first error reply among rs but a null one.
func firstError(rs []resp.Result) error {
	for _, r := range rs {
		if r.Err != nil && !errors.Is(r.Err, resp.ErrNil) {
			return r.Err
		}
	}
	return nil
}

// allFailed reports whether no reply of rs is a value or a null.
func allFailed(rs []resp.Result) bool {
	for _, r := range rs {
		if r.Err == nil || errors.Is(r.Err, resp.ErrNil) {
			return false
		}
	}
	return true
}

// stillHeld reports whether r's claim is still held by the same owner.
func (l *Locator) stillHeld(r renewal) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.held[r.key]
	return h != nil && h.owner == r.owner && h.value == r.value
}

func (l *Locator) setLost(r renewal, lost bool) {
	l.mu.Lock()
	if h := l.held[r.key]; h != nil && h.owner == r.owner {
		h.lost = lost
	}
	l.mu.Unlock()
}

// undo deletes a claim the heartbeat wrote after it was released.
func (l *Locator) undo(r renewal) {
	defer l.pending.Done()
	ctx, cancel := context.WithTimeout(context.Background(), l.settings().Heartbeat)
	defer cancel()
	if _, err := releaseScript.Run(ctx, l.rdb, []string{r.key}, r.value); err != nil {
		_ = l.failed("release", err)
	}
}

// failed counts a failed request, warns at most every warnEvery, and
// returns err wrapped.
func (l *Locator) failed(op string, err error) error {
	n := l.errors.Add(1)
	l.down.Store(true)
	now := time.Now().UnixNano()
	if last := l.lastWarn.Load(); now-last >= int64(warnEvery) && l.lastWarn.CompareAndSwap(last, now) {
		l.log.Warn("stream registry unreachable: going on with local knowledge and the configured origin order",
			"op", op, "err", err.Error(), "errors", n)
	}
	return fmt.Errorf("cluster: registry %s: %w", op, err)
}

// reachable notes a request that worked.
func (l *Locator) reachable() {
	if l.down.Load() && l.down.Swap(false) {
		l.log.Info("stream registry reachable again", "errors", l.errors.Load())
	}
}
