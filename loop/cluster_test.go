package loop

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/cluster"
	"github.com/rtmpedge/rtmpedge/cluster/redisproc"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// An edge looks a stream up under the name its origins give it.
func TestUpstreamKey(t *testing.T) {
	k := edge.Key{Vhost: "edge.example.com", App: "live", Stream: "x"}
	for _, tc := range []struct {
		name, transform, want string
	}{
		{conf.DefaultVhost, "", conf.DefaultVhost},
		{"edge.example.com", "", "edge.example.com"},
		{"edge.example.com", "Origin.Example.com", "origin.example.com"},
	} {
		v := &conf.Vhost{Name: tc.name, Cluster: conf.Cluster{Vhost: tc.transform}}
		if got := upstreamKey(v, k); got != (edge.Key{Vhost: tc.want, App: "live", Stream: "x"}) {
			t.Errorf("vhost %s, transform %q: %v, want vhost %s", tc.name, tc.transform, got, tc.want)
		}
	}
}

// A redirect names the same app on the other server, with the client's
// parameters and its vhost (which the other server's address would lose),
// in SRS's form: ex.code 302, ex.redirect the tcUrl, ex.redirect2 the
// stream's URL.
func TestRedirectKeepsParametersAndVhost(t *testing.T) {
	cfg, err := conf.Parse([]byte("vhosts: {live.example.com: {}}"), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFuzzServer(t, cfg)
	c := fs.open()
	c.capture = true
	in := newClientSession().command(0, "connect", amf.Object{
		{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://live.example.com:1935/live?token=abc"},
	}).b
	if !fs.feed(c, append(fuzzHandshake, in...)) {
		t.Fatal("connect closed the connection")
	}
	ss := c.ctx.(*session)
	c.replies = c.replies[:0]
	ss.redirect("10.0.0.3:1935", "x", "test")
	for _, want := range []string{
		"NetConnection.Connect.Rejected",
		"rtmp://10.0.0.3:1935/live?token=abc&vhost=live.example.com",
		"rtmp://10.0.0.3:1935/live/x?token=abc&vhost=live.example.com",
	} {
		if !bytes.Contains(c.replies, []byte(want)) {
			t.Errorf("the redirect lacks %q", want)
		}
	}
	if !ss.closing {
		t.Error("the connection stays open after the redirect")
	}
	fs.shutdown()
}

// A local publish claims its stream before it starts and releases it when
// it ends; a publisher that leaves while its claim is being decided leaves
// neither a claim nor a stream behind.
func TestPublishClaimsAndReleases(t *testing.T) {
	r := redisproc.ForTest(t)
	cfg, err := conf.Parse([]byte(fmt.Sprintf("listen: ['127.0.0.1:19399']\ncluster: {registry: %q, heartbeat: 300ms, claim_ttl: 5s}", r.URL())), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFuzzServer(t, cfg)
	if err := fs.srv.openRegistry(); err != nil {
		t.Fatal(err)
	}
	defer fs.srv.closeRegistry(context.Background())
	loc := fs.srv.locator()
	ctx := context.Background()
	claimed := func() (cluster.Holder, bool) {
		h, found, _ := loc.Lookup(ctx, "__defaultvhost__/live/x")
		return h, found
	}
	// settle runs the loop's tasks until cond holds (2 s at most).
	settle := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			fs.loop.run(t)
			if cond() {
				return
			}
		}
		t.Fatalf("%s: not within 2s", what)
	}

	c := fs.open()
	c.capture = true
	fs.feed(c, append(fuzzHandshake, publishSession("x", 0, false)...))
	// onStatus NetStream.Publish.Start (FCPublish's answer has the code too).
	settle("publish started", func() bool { return bytes.Contains(c.replies, []byte("x is now published.")) })
	if h, found := claimed(); !found || !loc.Mine(h) || h.Addr != "127.0.0.1:19399" {
		t.Fatalf("claim %+v (found %v), want this server's; stats %+v", h, found, loc.Stats())
	}
	fs.close(c)
	settle("claim released", func() bool { _, found := claimed(); return !found })

	// The registry hangs: the publisher leaves while its claim waits, and
	// the claim times out. The registry comes back and runs the claim's
	// SET late: the heartbeat deletes it, well before its TTL.
	if err := syscall.Kill(r.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c = fs.open()
	fs.feed(c, append(fuzzHandshake, publishSession("x", 0, false)...))
	fs.close(c)
	settle("claim given up", func() bool {
		st := loc.Stats() // the second claim was made, and given up on the loop
		return st.Claims == 2 && st.Held == 0 && fs.srv.hubs.Len() == 0
	})
	if err := syscall.Kill(r.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if h, found := claimed(); found {
		t.Fatalf("a publisher that left holds the claim: %+v", h)
	}
	fs.shutdown()
}
