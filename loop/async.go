package loop

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/hook"
)

// suspend stops reading the connection's messages until resume: the bytes
// that arrive meanwhile stay in gnet's buffer.
func (ss *session) suspend() { ss.suspended = true }

// resume runs then on the connection's loop and goes on reading. It may be
// called from any goroutine.
func (ss *session) resume(then func()) { ss.resumeOr(then, nil) }

// resumeOr is resume, running gone (if not nil) on the loop instead of then
// when the connection closed meanwhile.
func (ss *session) resumeOr(then, gone func()) {
	_ = ss.c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if ss.gone {
			if gone != nil {
				gone()
			}
			return nil
		}
		ss.resumeOnLoop(then)
		return nil
	}))
}

func (ss *session) resumeOnLoop(then func()) {
	if ss.gone {
		return
	}
	ss.suspended = false
	then()
	if ss.closing {
		_ = ss.c.Close()
		return
	}
	_ = ss.c.Wake(nil) // handle what arrived while suspended
}

// callHook runs an HTTP hook in the background, then calls then with its
// verdict on the loop.
func (ss *session) callHook(v *conf.Vhost, url, action, stream, param string, then func(err error)) {
	req := hook.Request{
		Action: action, ClientID: strconv.FormatUint(ss.id, 10), IP: hostOf(ss.remote),
		Vhost: v.Name, App: ss.app, TcURL: ss.tcURL, Stream: stream, Param: param,
		PageURL: ss.connectObj.String("pageUrl"), ServerID: ss.srv.serverID,
	}
	ss.suspend()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), v.Hooks.Timeout)
		start := time.Now()
		err := hook.Call(ctx, url, req)
		cancel()
		ss.srv.tele.recordHook(action, time.Since(start), err)
		ss.resume(func() { then(err) })
	}()
}

// traverse performs the client's connect against an origin (token
// traverse) and calls then on the loop with the origin's answer.
func (ss *session) traverse(v *conf.Vhost, t target, then func(err error)) {
	ss.suspend()
	tr := &traversal{ss: ss, v: v, t: t, then: then}
	tr.order = ss.srv.originsOf(v).Order(t.app, time.Now())
	tr.next()
}

// traversal tries the origins in order until one answers the connect.
type traversal struct {
	ss    *session
	v     *conf.Vhost
	t     target
	order []string
	i     int
	then  func(err error)
	conn  *outbound
	errs  []error
}

func (tr *traversal) next() {
	if tr.i >= len(tr.order) {
		err := fmt.Errorf("no origin answered: %w", errors.Join(tr.errs...))
		tr.ss.resumeOnLoop(func() { tr.then(err) })
		return
	}
	addr := tr.order[tr.i]
	tr.i++
	ut := upstreamTarget{vhost: tr.v, app: tr.ss.appRaw, query: tr.t.query}
	extra := amf.Object{}
	for _, p := range tr.ss.connectObj {
		switch p.Key {
		case "app", "tcUrl", "type", "flashVer":
		default:
			extra = append(extra, p)
		}
	}
	up := edge.NewUpstream(edge.UpstreamConfig{Mode: edge.UpstreamConnect, TcURL: ut.tcURL(addr), App: ut.app, Extra: extra})
	c := tr.v.Cluster
	tr.conn = tr.ss.srv.dialUpstream(addr, c.ConnectTimeout, c.CommandTimeout, 0, 0, up, tr, tr.ss.c.EventLoop(), tr.ss.log)
}

func (tr *traversal) upstreamReady(o *outbound, _ []any) {
	tr.conn = nil
	o.close(errors.New("token traverse done"))
	tr.ss.resumeOnLoop(func() { tr.then(nil) })
}

func (tr *traversal) upstreamClosed(o *outbound, err error) {
	if tr.conn != o {
		return // the connect was answered already
	}
	tr.conn = nil
	var ue *edge.UpstreamError
	if errors.As(err, &ue) {
		tr.ss.resumeOnLoop(func() { tr.then(err) }) // the origin decided
		return
	}
	tr.errs = append(tr.errs, err)
	tr.next()
}

func hostOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i]
		}
	}
	return addr
}
