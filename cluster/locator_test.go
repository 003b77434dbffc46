package cluster_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/cluster"
	"github.com/rtmpedge/rtmpedge/cluster/redisproc"
	"github.com/rtmpedge/rtmpedge/cluster/resp"
	"github.com/rtmpedge/rtmpedge/internal/freeport"
)

// startRedis runs a redis-server for the test, or skips when it is not
// installed (scripts/deps.sh --test installs it).
func startRedis(t *testing.T) (*redisproc.Server, *resp.Client) {
	t.Helper()
	srv := redisproc.ForTest(t)
	rdb := resp.New(resp.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return srv, rdb
}

// origin is an address whose port accepts connections, standing in for a
// live origin's RTMP listener.
func origin(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String() // the kernel completes connections into the backlog

}

// deadAddr is a loopback address whose port refuses connections.
func deadAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// open returns a Locator advertising addr with short timings.
func open(t *testing.T, url, addr string, ttl, heartbeat time.Duration) *cluster.Locator {
	t.Helper()
	st := cluster.Settings{Advertise: addr, ClaimTTL: ttl, Heartbeat: heartbeat, LookupTimeout: 200 * time.Millisecond}
	l, err := cluster.Open(url, func() cluster.Settings { return st }, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	return l
}

// waitFor polls cond every 20 ms for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

const stream = "__defaultvhost__/live/x"

// mustClaim claims s for owner and fails the test unless it is claimed.
func mustClaim(t *testing.T, l *cluster.Locator, s string, owner uint64) {
	t.Helper()
	if c := l.Claim(context.Background(), s, owner); c.Outcome != cluster.Claimed {
		t.Fatalf("claim of %s by %d: %+v", s, owner, c)
	}
}

// releaseLate releases owner's claim of stream, as a publish that ended
// after another took over, and returns who holds the stream then.
func releaseLate(l *cluster.Locator, owner uint64) (cluster.Holder, bool) {
	l.Release(stream, owner)
	time.Sleep(100 * time.Millisecond) // the release runs in the background
	h, found, _ := l.Lookup(context.Background(), stream)
	return h, found
}

func TestClaimConflictRelease(t *testing.T) {
	srv, rdb := startRedis(t)
	ctx := context.Background()
	addrA, addrB := origin(t), origin(t)
	a := open(t, srv.URL(), addrA, 10*time.Second, 3*time.Second)
	b := open(t, srv.URL(), addrB, 10*time.Second, 3*time.Second)

	if _, found, err := b.Lookup(ctx, stream); err != nil || found {
		t.Fatalf("lookup before any claim: found %v, err %v", found, err)
	}
	if c := a.Claim(ctx, stream, 1); c.Outcome != cluster.Claimed || c.TookOver {
		t.Fatalf("first claim: %+v", c)
	}
	ttl, err := rdb.Do(ctx, "PTTL", cluster.KeyPrefix+stream)
	if n, _ := ttl.(int64); err != nil || n <= 0 || n > 10000 {
		t.Fatalf("claim TTL %v, err %v", ttl, err)
	}
	h, found, err := b.Lookup(ctx, stream)
	if err != nil || !found || h.Addr != addrA {
		t.Fatalf("lookup: %+v found %v err %v, want %s", h, found, err, addrA)
	}
	if !b.Elsewhere(ctx, h) || a.Elsewhere(ctx, h) || !a.Mine(h) || b.Mine(h) {
		t.Error("Elsewhere/Mine disagree on who holds the claim")
	}
	c := b.Claim(ctx, stream, 7)
	if c.Outcome != cluster.Conflict || c.Holder.Addr != addrA {
		t.Fatalf("second origin's claim: %+v, want a conflict with %s", c, addrA)
	}
	if st := b.Stats(); st.Conflicts != 1 || st.Held != 0 || st.Lookups != 2 || st.Found != 1 {
		t.Errorf("b stats %+v", st)
	}
	// Only the owner's release counts.
	b.Release(stream, 7)
	if _, found := releaseLate(a, 2); !found {
		t.Fatal("a release by another owner deleted the claim")
	}
	a.Release(stream, 1)
	if !waitFor(2*time.Second, func() bool { _, found, _ := b.Lookup(ctx, stream); return !found }) {
		t.Fatal("the claim outlived its release")
	}
	if c := b.Claim(ctx, stream, 7); c.Outcome != cluster.Claimed {
		t.Fatalf("claim after release: %+v", c)
	}
}

func TestClaimTakesOverFromGoneOrigin(t *testing.T) {
	srv, _ := startRedis(t)
	ctx := context.Background()
	dead := deadAddr(t)
	a := open(t, srv.URL(), dead, 10*time.Second, 3*time.Second)
	b := open(t, srv.URL(), origin(t), 10*time.Second, 3*time.Second)
	mustClaim(t, a, stream, 1)
	// a's port refuses connections, as a SIGKILLed origin's does.
	c := b.Claim(ctx, stream, 2)
	if c.Outcome != cluster.Claimed || !c.TookOver {
		t.Fatalf("claim over a gone origin: %+v, want taken over", c)
	}
	// a's release (or heartbeat) cannot undo b's claim.
	if h, found := releaseLate(a, 1); !found || !b.Mine(h) {
		t.Fatalf("after the old holder's release: %+v found %v", h, found)
	}
	if st := b.Stats(); st.Takeovers != 1 {
		t.Errorf("takeovers = %d", st.Takeovers)
	}
}

// A restarted origin (same address, new process) does not inherit the
// claims of its former life: they are not its own, they expire by TTL,
// and a new publish on it replaces them at once.
func TestRestartedOriginDoesNotInherit(t *testing.T) {
	srv, rdb := startRedis(t)
	ctx := context.Background()
	addr := origin(t)
	old := open(t, srv.URL(), addr, time.Second, 300*time.Millisecond)
	mustClaim(t, old, stream, 1)
	mustClaim(t, old, "__defaultvhost__/live/other", 2)
	// Crash: the heartbeat stops, nothing is released.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_ = old.Close(cctx)

	restarted := open(t, srv.URL(), addr, time.Second, 300*time.Millisecond)
	h, found, err := restarted.Lookup(ctx, stream)
	if err != nil || !found || restarted.Mine(h) || restarted.Elsewhere(ctx, h) {
		t.Fatalf("restarted origin sees %+v (found %v, err %v): not its own, and not another live origin", h, found, err)
	}
	if c := restarted.Claim(ctx, stream, 1); c.Outcome != cluster.Claimed || !c.TookOver {
		t.Fatalf("publish on the restarted origin: %+v", c)
	}
	// The claim nobody publishes any more expires by its TTL.
	if !waitFor(3*time.Second, func() bool {
		n, err := rdb.Do(ctx, "EXISTS", cluster.KeyPrefix+"__defaultvhost__/live/other")
		return err == nil && n == int64(0)
	}) {
		t.Fatal("a stale claim did not expire")
	}
	// The restarted origin's own claim is kept alive by its heartbeat.
	time.Sleep(1500 * time.Millisecond)
	if h, found, _ := restarted.Lookup(ctx, stream); !found || !restarted.Mine(h) {
		t.Fatalf("the heartbeat did not keep the claim: %+v found %v", h, found)
	}
}

// The same server's earlier publish of the stream (released or not yet)
// gives way to its next publish.
func TestClaimReplacesOwnEndedPublish(t *testing.T) {
	srv, _ := startRedis(t)
	a := open(t, srv.URL(), origin(t), 10*time.Second, 3*time.Second)
	mustClaim(t, a, stream, 1)
	mustClaim(t, a, stream, 2) // the next publish on the same server
	if h, found := releaseLate(a, 1); !found || !strings.HasSuffix(h.Token, "/2") || a.Stats().Held != 1 {
		t.Fatalf("after the first publish's late release: claim %+v found %v, %d held; want owner 2's", h, found, a.Stats().Held)
	}
}

func TestHeartbeatRenewsReclaimsAndNotesLoss(t *testing.T) {
	srv, rdb := startRedis(t)
	ctx := context.Background()
	const hb = 300 * time.Millisecond
	a := open(t, srv.URL(), origin(t), time.Second, hb)
	mustClaim(t, a, stream, 1)
	time.Sleep(2 * time.Second) // twice the TTL
	if _, found, _ := a.Lookup(ctx, stream); !found {
		t.Fatal("the heartbeat did not renew the claim")
	}
	// The registry loses everything (restarted empty): back within one heartbeat.
	if _, err := rdb.Do(ctx, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !waitFor(hb+500*time.Millisecond, func() bool { _, found, _ := a.Lookup(ctx, stream); return found }) {
		t.Fatal("the claim did not come back")
	}
	t.Logf("claim re-established %s after the flush (heartbeat %s)", time.Since(start).Round(time.Millisecond), hb)
	// Another origin's value in its place is not renewed as ours.
	if _, err := rdb.Do(ctx, "SET", cluster.KeyPrefix+stream, "10.0.0.9:1935 other/1", "PX", "5000"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(2*time.Second, func() bool { return a.Stats().Lost == 1 }) {
		t.Fatalf("stats %+v: the loss was not noted", a.Stats())
	}
	if v, _ := rdb.Do(ctx, "GET", cluster.KeyPrefix+stream); v != "10.0.0.9:1935 other/1" {
		t.Errorf("the heartbeat overwrote another origin's claim: %q", v)
	}
	if st := a.Stats(); st.Reclaims < 1 {
		t.Errorf("reclaims = %d", st.Reclaims)
	}
}

func TestRegistryDownAndBack(t *testing.T) {
	srv, _ := startRedis(t)
	ctx := context.Background()
	const hb = 300 * time.Millisecond
	a := open(t, srv.URL(), origin(t), 2*time.Second, hb)
	mustClaim(t, a, stream, 1)
	srv.Kill()
	start := time.Now()
	if _, _, err := a.Lookup(ctx, "__defaultvhost__/live/y"); err == nil {
		t.Fatal("lookup with the registry down succeeded")
	}
	if c := a.Claim(ctx, "__defaultvhost__/live/y", 2); c.Outcome != cluster.Unavailable {
		t.Fatalf("claim with the registry down: %+v", c)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("requests to a dead registry took %s", d)
	}
	if st := a.Stats(); st.Errors < 2 || st.Held != 2 {
		t.Errorf("stats %+v", st)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// Both the claim made before and the one made while it was down.
	start = time.Now()
	for _, s := range []string{stream, "__defaultvhost__/live/y"} {
		if !waitFor(2*hb+time.Second, func() bool { h, found, _ := a.Lookup(ctx, s); return found && a.Mine(h) }) {
			t.Fatalf("%s was not claimed again after the registry came back", s)
		}
	}
	t.Logf("claims back %s after the registry restarted", time.Since(start).Round(time.Millisecond))
}

// A registry that hangs costs at most the lookup timeout.
func TestLookupTimeout(t *testing.T) {
	srv, _ := startRedis(t)
	ctx := context.Background()
	a := open(t, srv.URL(), origin(t), 10*time.Second, 3*time.Second)
	if _, _, err := a.Lookup(ctx, stream); err != nil { // a connection in the pool
		t.Fatal(err)
	}
	if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(srv.PID(), syscall.SIGCONT) }()
	start := time.Now()
	_, _, err := a.Lookup(ctx, stream)
	d := time.Since(start)
	if err == nil {
		t.Fatal("lookup on a hung registry succeeded")
	}
	if d > 600*time.Millisecond {
		t.Errorf("lookup on a hung registry took %s (lookup timeout 200ms)", d)
	}
	t.Logf("lookup on a hung registry gave up after %s", d.Round(time.Millisecond))
}

// A claim whose request timed out may be run by the registry later (it
// hung, then came back). Released in between, it must not stay until its
// TTL: the heartbeat deletes it.
func TestLateClaimWriteIsDeleted(t *testing.T) {
	srv, rdb := startRedis(t)
	ctx := context.Background()
	addr := origin(t)
	a := open(t, srv.URL(), addr, 10*time.Second, 300*time.Millisecond)
	mustClaim(t, a, "__defaultvhost__/live/other", 1)
	h, _, _ := a.Lookup(ctx, "__defaultvhost__/live/other")
	instance, _, _ := strings.Cut(h.Token, "/")

	if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c := a.Claim(ctx, stream, 2)
	a.Release(stream, 2) // the publisher left
	if err := syscall.Kill(srv.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if c.Outcome != cluster.Unavailable {
		t.Fatalf("claim on a hung registry: %+v", c)
	}
	// The late write lands after the release's delete.
	time.Sleep(100 * time.Millisecond)
	if _, err := rdb.Do(ctx, "SET", cluster.KeyPrefix+stream, addr+" "+instance+"/2", "PX", "10000"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Second, func() bool {
		n, err := rdb.Do(ctx, "EXISTS", cluster.KeyPrefix+stream)
		return err == nil && n == int64(0)
	}) {
		t.Fatal("a released claim that landed late was not deleted")
	}
}
