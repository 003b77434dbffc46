package loop

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
	"github.com/rtmpedge/rtmpedge/flv"
	"github.com/rtmpedge/rtmpedge/httpflv"
)

// HTTP limits.
const (
	maxRequestHead = 8 << 10 // request line and headers
	maxClientFrame = 4 << 10 // a WebSocket player's own frames (pings, close); players send nothing else
)

// httpState is what a session on an HTTP listener keeps: an HTTP-FLV or
// WebSocket-FLV player once its request is served.
type httpState struct {
	served bool // the request head was read and answered (or is being decided)
	ws     bool // the player reads WebSocket frames
}

// protocol names what the session speaks, for its log lines.
func (ss *session) protocol() string {
	switch {
	case ss.http == nil:
		return "rtmp"
	case ss.http.ws:
		return "ws-flv"
	}
	return "http-flv"
}

// consumeHTTP handles bytes from an HTTP client: its request head, then
// (WebSocket) its control frames; anything else it sends is dropped.
func (ss *session) consumeHTTP(buf []byte) (int, error) {
	h := ss.http
	if h.served {
		if h.ws {
			return ss.consumeWebSocket(buf)
		}
		return len(buf), nil // an HTTP player has nothing more to say
	}
	n, req, err := httpflv.ParseRequest(buf, maxRequestHead)
	if err != nil {
		status, reason := 400, err.Error()
		var he *httpflv.Error
		if errors.As(err, &he) {
			status, reason = he.Status, he.Reason
		}
		ss.answerHTTP(status, reason, true)
		return len(buf), nil
	}
	if req == nil {
		return 0, nil // the head is not complete yet (the parser bounds it)
	}
	h.served = true
	ss.handshakeBytes += uint64(n)
	ss.serveHTTP(req)
	// A GET has no body; what follows is a WebSocket player's first frames,
	// read when more arrives.
	return n, nil
}

// serveHTTP answers a request head: CORS preflight, HEAD, or a GET that
// plays a stream as FLV (over WebSocket when it asks to upgrade).
func (ss *session) serveHTTP(req *httpflv.Request) {
	switch req.Method {
	case "GET", "HEAD":
	case "OPTIONS":
		ss.writeHTTP(204, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS",
			"Access-Control-Allow-Headers", "*", "Access-Control-Max-Age", "86400", "Connection", "close")
		ss.fail("answered OPTIONS")
		return
	default:
		ss.writeHTTP(405, "Allow", "GET, HEAD, OPTIONS", "Content-Length", "0", "Connection", "close")
		ss.protocolErr = true
		ss.fail("http 405: method " + req.Method + " not allowed")
		return
	}
	app, stream, err := httpflv.SplitStreamPath(req.Path)
	if err != nil {
		status, reason := 404, err.Error()
		var he *httpflv.Error
		if errors.As(err, &he) {
			status, reason = he.Status, he.Reason
		}
		ss.answerHTTP(status, reason, status != 404)
		return
	}
	query, qerr := url.ParseQuery(req.RawQuery)
	if qerr != nil {
		ss.answerHTTP(400, "bad query: "+qerr.Error(), true)
		return
	}
	vhost := req.Host
	if q := query.Get("vhost"); q != "" {
		vhost = q
	}
	if err := checkNames("app", app, "stream", stream, "vhost", vhost); err != nil {
		ss.answerHTTP(400, err.Error(), true)
		return
	}
	v := ss.srv.config().Vhost(vhost)
	if v == nil {
		ss.answerHTTP(404, fmt.Sprintf("vhost %q is not served here", vhost), false)
		return
	}
	ws := httpflv.HasToken(req.Upgrade, "websocket")
	if ws {
		if err := httpflv.CheckWebSocket(req); err != nil {
			var he *httpflv.Error
			if errors.As(err, &he) && he.Status == 426 {
				ss.writeHTTP(426, "Sec-WebSocket-Version", "13", "Connection", "close")
				ss.protocolErr = true
				ss.fail("websocket upgrade: " + he.Reason)
				return
			}
			ss.answerHTTP(400, "websocket upgrade: "+err.Error(), true)
			return
		}
	}
	ss.http.ws = ws
	ss.vhostPtr.Store(v)
	ss.app, ss.appRaw = app, app
	ss.tcURL = "http://" + req.Host + "/" + app
	ss.tcQuery = req.RawQuery
	ss.key.Vhost, ss.key.App = v.Name, app
	ss.connected.Store(true)
	ss.publishView()
	ss.log.Debug("http request", "method", req.Method, "path", req.Path, "websocket", ws)

	if req.Method == "HEAD" {
		// The head a GET would get, without running hooks or pulling the
		// stream: on an origin a stream nobody publishes is 404.
		if v.Cluster.Mode != conf.ModeRemote && !ss.srv.hubs.Publishing(edge.Key{Vhost: v.Name, App: app, Stream: stream}) {
			ss.answerHTTP(404, fmt.Sprintf("stream %s/%s is not published", app, stream), false)
			return
		}
		ss.writeHTTP(200, flvHeaders...)
		ss.fail("answered HEAD")
		return
	}
	if v.Hooks.OnPlay == "" {
		ss.startHTTPPlay(stream, req, v)
		return
	}
	ss.callHook(v, v.Hooks.OnPlay, "on_play", stream, queryParam(req.RawQuery), func(err error) {
		if err != nil {
			ss.answerHTTP(403, "refused by on_play: "+err.Error(), false)
			return
		}
		ss.startHTTPPlay(stream, req, v)
	})
}

// flvHeaders are the headers of a 200 answer to an HTTP-FLV player. The
// body is delimited by the connection's close: a live stream has no length,
// and unlike chunked encoding this sends players exactly the bytes every
// other player gets, with nothing to add per write.
var flvHeaders = []string{"Content-Type", "video/x-flv", "Cache-Control", "no-cache", "Connection", "close"}

// startHTTPPlay makes the session a player of the stream: on an origin the
// stream must be publishing (404 otherwise); an edge pulls it from its
// origin and the player waits, as RTMP players do.
func (ss *session) startHTTPPlay(stream string, req *httpflv.Request, v *conf.Vhost) {
	key := edge.Key{Vhost: ss.key.Vhost, App: ss.app, Stream: stream}
	hub := ss.srv.hubs.Acquire(key, ss.srv.hubOptions(v))
	if v.Cluster.Mode != conf.ModeRemote && !hub.Publishing() {
		ss.srv.hubs.Release(hub)
		ss.answerHTTP(404, fmt.Sprintf("stream %s is not published", key), false)
		return
	}
	if limit := ss.srv.overCapacity(hub); limit != "" {
		ss.srv.hubs.Release(hub)
		ss.srv.refusedPlays.Add(1)
		ss.log.Warn("play refused: server at capacity", "stream", stream, "limit", limit)
		ss.answerHTTP(503, "server at capacity: "+limit, false)
		return
	}
	ss.key, ss.hub = key, hub
	audio, video := true, true
	if hub.Publishing() && (hub.HasAudio() || hub.HasVideo()) {
		audio, video = hub.HasAudio(), hub.HasVideo()
	}
	start := flv.AppendHeader(nil, audio, video)
	if ss.http.ws {
		ss.writeHTTP(101, "Upgrade", "websocket", "Connection", "Upgrade",
			"Sec-WebSocket-Accept", httpflv.AcceptKey(req.WebSocketKey))
		start = append(httpflv.AppendFrameHeader(nil, httpflv.OpBinary, len(start)), start...)
	} else {
		ss.writeHTTP(200, flvHeaders...)
	}
	ss.write(start)
	if ss.closedMeanwhile(hub) {
		return
	}
	if !hub.Publishing() {
		ss.waitingFor.Store(time.Now().UnixNano())
	}
	ss.role.Store(int32(rolePlayer))
	f := formatFLV
	if ss.http.ws {
		f = formatWebSocket
	}
	ss.srv.join(ss, v, f)
	if v.Cluster.Mode == conf.ModeRemote {
		raw := stream + queryParam(req.RawQuery)
		ss.srv.ingestJoin(ss, v, upstreamTarget{vhost: v, app: ss.appRaw, query: ss.tcQuery, stream: raw})
	}
	ss.publishView()
	ss.log.Info("play start", "protocol", ss.protocol(), "vhost", key.Vhost, "app", key.App, "stream", stream,
		"waiting_for_publisher", !hub.Publishing())
}

// writeHTTP writes a response head with the CORS header (when configured)
// and the given headers, as name, value pairs.
func (ss *session) writeHTTP(status int, headers ...string) {
	all := make([]string, 0, len(headers)+2)
	if o := ss.srv.config().HTTP.CORSOrigin; o != "" {
		all = append(all, "Access-Control-Allow-Origin", o)
	}
	all = append(all, headers...)
	ss.write(httpflv.AppendResponse(ss.out[:0], status, all...))
}

// answerHTTP ends the exchange with an error status and a one-line text
// body, then closes. badInput marks a client that sent something invalid
// (logged at WARN).
func (ss *session) answerHTTP(status int, reason string, badInput bool) {
	body := fmt.Sprintf("%d %s: %s\n", status, httpflv.StatusText(status), reason)
	ss.writeHTTP(status, "Content-Type", "text/plain; charset=utf-8", "Content-Length", strconv.Itoa(len(body)), "Connection", "close")
	ss.write([]byte(body))
	ss.protocolErr = ss.protocolErr || badInput
	ss.fail(fmt.Sprintf("http %d: %s", status, reason))
}

// consumeWebSocket reads a WebSocket player's frames: a ping gets its pong,
// a close ends the connection, data is dropped.
func (ss *session) consumeWebSocket(buf []byte) (int, error) {
	used := 0
	for !ss.closing {
		n, f, err := httpflv.ParseFrame(buf[used:], maxClientFrame)
		if err != nil {
			ss.write(httpflv.AppendClose(nil, closeCode(err), ""))
			return used, fmt.Errorf("websocket: %w", err)
		}
		if n == 0 {
			break
		}
		used += n
		switch f.Opcode {
		case httpflv.OpPing:
			ss.write(httpflv.AppendPong(nil, f.Payload))
		case httpflv.OpClose:
			ss.write(httpflv.AppendClose(nil, 1000, ""))
			ss.fail("client closed the WebSocket")
		}
	}
	return used, nil
}

// closeCode is the WebSocket close code for a frame error.
func closeCode(err error) uint16 {
	var fe *httpflv.CloseError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return 1002
}
