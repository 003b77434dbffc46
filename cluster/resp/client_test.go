package resp_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/cluster/redisproc"
	"github.com/rtmpedge/rtmpedge/cluster/resp"
)

// hang stops srv with SIGSTOP (connections open, no answers) until the
// test ends or it is continued.
func hang(t *testing.T, srv *redisproc.Server) {
	t.Helper()
	if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(srv.PID(), syscall.SIGCONT) })
}

// restart starts srv again, empty, and checks that c works on it.
func restart(t *testing.T, srv *redisproc.Server, c *resp.Client) {
	t.Helper()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	do(t, c, "PING")
}

// client returns a client of url, closed when the test ends.
func client(t *testing.T, url string) *resp.Client {
	t.Helper()
	opt, err := resp.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout = 200 * time.Millisecond
	c := resp.New(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// do runs a command that must succeed, within a second.
func do(t *testing.T, c *resp.Client, args ...string) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := c.Do(ctx, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// timed runs a command with a 200 ms deadline and returns how long it took.
func timed(c *resp.Client, args ...string) (any, error, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	v, err := c.Do(ctx, args...)
	return v, err, time.Since(start)
}

func TestReplies(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	ctx := context.Background()
	if v := do(t, c, "SET", "k", "v", "PX", "10000"); v != "OK" {
		t.Errorf("SET: %#v", v)
	}
	if v := do(t, c, "GET", "k"); v != "v" {
		t.Errorf("GET: %#v", v)
	}
	if v := do(t, c, "PEXPIRE", "k", "5000"); v != int64(1) {
		t.Errorf("PEXPIRE: %#v", v)
	}
	if v, err := c.Do(ctx, "GET", "missing"); !errors.Is(err, resp.ErrNil) || v != nil {
		t.Errorf("GET of a missing key: %#v, %v; want ErrNil", v, err)
	}
	if _, err := c.Do(ctx, "SET", "k", "w", "NX", "PX", "10000"); !errors.Is(err, resp.ErrNil) {
		t.Errorf("SET NX of a key that exists: %v; want ErrNil", err)
	}
	v := do(t, c, "EVAL", "return {1, false, 'x', {2}}", "0")
	if a, ok := v.([]any); !ok || len(a) != 4 || a[0] != int64(1) || a[1] != nil || a[2] != "x" {
		t.Errorf("an array with a null: %#v", v)
	}
	if v := do(t, c, "DEL", "k"); v != int64(1) {
		t.Errorf("DEL: %#v", v)
	}

	// An error reply is the server's, and leaves the connection usable.
	id := do(t, c, "CLIENT", "ID")
	do(t, c, "SET", "s", "x")
	_, err := c.Do(ctx, "LPUSH", "s", "y")
	var e *resp.Error
	if !errors.As(err, &e) || e.Code() != "WRONGTYPE" {
		t.Errorf("LPUSH to a string: %v; want WRONGTYPE", err)
	}
	if again := do(t, c, "CLIENT", "ID"); again != id {
		t.Errorf("connection %v after an error reply, was %v", again, id)
	}
}

func TestPipeline(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	rs, err := c.Pipeline(context.Background(),
		[]string{"SET", "a", "1"}, []string{"GET", "a"}, []string{"GET", "b"}, []string{"INCR", "a"}, []string{"HGET", "a", "f"})
	if err != nil {
		t.Fatal(err)
	}
	var e *resp.Error
	if rs[0].Val != "OK" || rs[1].Val != "1" || !errors.Is(rs[2].Err, resp.ErrNil) || rs[3].Val != int64(2) ||
		!errors.As(rs[4].Err, &e) || e.Code() != "WRONGTYPE" {
		t.Errorf("pipeline results %#v", rs)
	}
}

func TestAuthAndSelect(t *testing.T) {
	srv := redisproc.ForTest(t)
	admin := client(t, srv.URL())
	do(t, admin, "ACL", "SETUSER", "alice", "on", ">wonder", "~*", "+@all")
	do(t, admin, "CONFIG", "SET", "requirepass", "s3cret") // the default user's password

	noAuth := client(t, srv.URL())
	var e *resp.Error
	if _, err, _ := timed(noAuth, "GET", "k"); !errors.As(err, &e) || e.Code() != "NOAUTH" {
		t.Errorf("without a password: %v; want NOAUTH", err)
	}
	addr := strings.TrimPrefix(srv.URL(), "redis://")
	wrong := client(t, "redis://:nope@"+addr)
	if _, err, _ := timed(wrong, "GET", "k"); !errors.As(err, &e) || e.Code() != "WRONGPASS" || !strings.Contains(err.Error(), "AUTH") {
		t.Errorf("with a wrong password: %v; want WRONGPASS from AUTH", err)
	}
	if strings.Contains(wrongErr(wrong).Error(), "nope") {
		t.Error("the error names the password")
	}

	pass := client(t, "redis://:s3cret@"+strings.Replace(addr, "/0", "/3", 1))
	do(t, pass, "SET", "in3", "x")
	if v := do(t, pass, "CLIENT", "INFO"); !strings.Contains(v.(string), " db=3 ") {
		t.Errorf("the client is not on db 3: %v", v)
	}
	user := client(t, "redis://alice:wonder@"+strings.Replace(addr, "/0", "/3", 1))
	if v := do(t, user, "GET", "in3"); v != "x" {
		t.Errorf("alice on db 3 reads %#v", v)
	}
	if v := do(t, user, "ACL", "WHOAMI"); v != "alice" {
		t.Errorf("authenticated as %v", v)
	}
	db0 := client(t, "redis://alice:wonder@"+addr)
	if _, err, _ := timed(db0, "GET", "in3"); !errors.Is(err, resp.ErrNil) {
		t.Errorf("db 0 has db 3's key: %v", err)
	}
}

func wrongErr(c *resp.Client) error { _, err, _ := timed(c, "PING"); return err }

func TestScriptFallsBackToEval(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	ctx := context.Background()
	s := resp.NewScript("return redis.call('SET', KEYS[1], ARGV[1])")
	for i, v := range []string{"1", "2"} {
		if r, err := s.Run(ctx, c, []string{"k"}, v); err != nil || r != "OK" {
			t.Fatalf("run %d: %#v, %v", i, r, err)
		}
	}
	stats := do(t, c, "INFO", "commandstats").(string)
	if !strings.Contains(stats, "cmdstat_evalsha:calls=2,") || !strings.Contains(stats, "cmdstat_eval:calls=1,") {
		t.Errorf("want two EVALSHA (one NOSCRIPT) and one EVAL:\n%s", stats)
	}
	do(t, c, "SCRIPT", "FLUSH")
	if r, err := s.Run(ctx, c, []string{"k"}, "3"); err != nil || r != "OK" || do(t, c, "GET", "k") != "3" {
		t.Fatalf("run after SCRIPT FLUSH: %#v, %v", r, err)
	}
	if _, err := resp.NewScript("return redis.call('NOPE')").Run(ctx, c, nil); err == nil {
		t.Error("a failing script succeeded")
	}
}

func TestKilledAndRestarted(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	do(t, c, "PING")
	// Restarted between two commands: the pooled connection is dead, the
	// command goes to a new one.
	restart(t, srv, c)
	// Down: commands fail at once; back: the next one works.
	srv.Kill()
	for range 2 {
		if _, err, d := timed(c, "PING"); err == nil || d > 150*time.Millisecond {
			t.Fatalf("PING to a killed server: %v after %s", err, d)
		}
	}
	restart(t, srv, c)
}

func TestKilledMidCommand(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Do(ctx, "BLPOP", "list", "4")
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	srv.Kill()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("BLPOP on a killed server succeeded")
		}
	case <-time.After(time.Second):
		t.Fatal("BLPOP on a killed server did not return")
	}
	restart(t, srv, c)
}

func TestHungServer(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	do(t, c, "PING")
	hang(t, srv)
	// On the pooled connection, then on a new one (the kernel accepts it).
	for range 2 {
		_, err, d := timed(c, "PING")
		if !errors.Is(err, context.DeadlineExceeded) || d > 400*time.Millisecond {
			t.Fatalf("PING to a hung server: %v after %s; want the deadline", err, d)
		}
	}
	if err := syscall.Kill(srv.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	do(t, c, "PING")
}

// A hung password check counts against the dial timeout.
func TestHungServerAuth(t *testing.T) {
	srv := redisproc.ForTest(t)
	do(t, client(t, srv.URL()), "CONFIG", "SET", "requirepass", "pw")
	hang(t, srv)
	opt, _ := resp.ParseURL("redis://:pw@" + srv.Addr)
	opt.DialTimeout = 100 * time.Millisecond
	c := resp.New(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.Do(ctx, "PING"); err == nil || time.Since(start) > 400*time.Millisecond {
		t.Fatalf("PING to a hung server: %v after %s; want the dial timeout", err, time.Since(start))
	}
}

// A command that waits does not hold up the others, and a cancelled one
// returns at once.
func TestConcurrentAndCancel(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Do(ctx, "BLPOP", "list", "0"); done <- err }()
	time.Sleep(50 * time.Millisecond)
	if _, err, d := timed(c, "PING"); err != nil || d > 100*time.Millisecond {
		t.Errorf("PING beside a blocked command: %v after %s", err, d)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled BLPOP: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a cancelled BLPOP did not return")
	}
	if n := clientsAfter(t, c, 1); n != 1 {
		t.Errorf("%d connections: the cancelled command's is still open", n)
	}
}

func TestPoolSize(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := resp.New(resp.Options{Addr: srv.Addr, PoolSize: 1})
	defer c.Close()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = c.Do(ctx, "BLPOP", "list", "1")
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err, _ := timed(c, "PING"); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for one of 1 connections") {
		t.Errorf("PING with the only connection busy: %v", err)
	}
}

func TestReplyTooLarge(t *testing.T) {
	srv := redisproc.ForTest(t)
	c := client(t, srv.URL())
	do(t, c, "SET", "big", strings.Repeat("x", resp.MaxBulk+1))
	if _, err := c.Do(context.Background(), "GET", "big"); !errors.Is(err, resp.ErrProtocol) || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("GET of a value over the limit: %v", err)
	}
	if v := do(t, c, "STRLEN", "big"); v != int64(resp.MaxBulk+1) {
		t.Errorf("STRLEN: %v", v)
	}
}

func TestMinIdleAndClose(t *testing.T) {
	srv := redisproc.ForTest(t)
	admin := client(t, srv.URL())
	c := resp.New(resp.Options{Addr: srv.Addr, MinIdle: 1})
	if n := clientsAfter(t, admin, 2); n != 2 {
		t.Errorf("%d clients, want the admin and one dialled ahead", n)
	}
	c.Close()
	if _, err := c.Do(context.Background(), "PING"); !errors.Is(err, resp.ErrClosed) {
		t.Errorf("PING after Close: %v", err)
	}
	if n := clientsAfter(t, admin, 1); n != 1 {
		t.Errorf("%d clients after Close", n)
	}
}

// clientsAfter returns the number of connections the server has once it
// is want, or after a second.
func clientsAfter(t *testing.T, c *resp.Client, want int) int {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		n := strings.Count(do(t, c, "CLIENT", "LIST").(string), "\n")
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}
