package loop

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rtmpedge/rtmpedge/amf"
	"github.com/rtmpedge/rtmpedge/chunk"
	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// csidCommand is the chunk stream replies go out on.
const csidCommand = 3

// ignoredCommands are sent by real clients and need no answer.
var ignoredCommands = map[string]bool{
	"receiveAudio": true, "receiveVideo": true, "FCSubscribe": true, "FCUnsubscribe": true,
	"_checkbw": true, "_result": true, "_error": true, "onStatus": true, "onBWDone": true,
	"setBufferLength": true, "seek": true,
}

func (ss *session) handleCommand(streamID uint32, body []byte) error {
	vals, err := amf.DecodeAll(body)
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if len(vals) == 0 {
		return errors.New("command: empty body")
	}
	name, ok := vals[0].(string)
	if !ok {
		return fmt.Errorf("command: name is %T, not a string", vals[0])
	}
	txn := 0.0
	if len(vals) > 1 {
		txn, _ = vals[1].(float64)
	}
	args := vals[min(len(vals), 3):] // after name, transaction id and the command object (null)
	if name == "connect" {
		return ss.onConnect(txn, vals)
	}
	if !ss.connected.Load() {
		return fmt.Errorf("command %q before connect", name)
	}
	switch name {
	case "createStream":
		ss.sendCommand(0, "_result", txn, nil, float64(edge.StreamID))
	case "releaseStream":
		ss.sendCommand(0, "_result", txn, nil, amf.Undefined{})
	case "getStreamLength":
		ss.sendCommand(0, "_result", txn, nil, 0.0) // live: no length
	case "FCPublish":
		ss.sendCommand(0, "onFCPublish", 0.0, nil, statusObject("status", "NetStream.Publish.Start", "FCPublish received."))
	case "publish":
		return ss.onPublish(txn, args)
	case "play":
		return ss.onPlay(txn, args)
	case "FCUnpublish":
		ss.sendCommand(0, "onFCUnpublish", 0.0, nil, statusObject("status", "NetStream.Unpublish.Success", "FCUnpublish received."))
		ss.endRole(true)
	case "deleteStream", "closeStream":
		ss.endRole(true)
	case "pause":
		return ss.onPause(txn, args)
	default:
		if ignoredCommands[name] {
			return nil
		}
		return fmt.Errorf("unknown command %q", name)
	}
	_ = streamID
	return nil
}

func statusObject(level, code, description string) amf.Object {
	return amf.Object{
		{Key: "level", Value: level},
		{Key: "code", Value: code},
		{Key: "description", Value: description},
	}
}

// sendCommand writes an AMF0 command on csidCommand.
func (ss *session) sendCommand(streamID uint32, vals ...any) {
	body, err := amf.AppendAll(ss.out[:0], vals...)
	if err != nil {
		ss.log.Error("encoding a reply failed", "err", err) // a bug: replies are built from fixed types
		return
	}
	ss.out = body
	hdr := chunk.Header{CSID: csidCommand, Length: uint32(len(body)), TypeID: chunk.TypeCommandAMF0, StreamID: streamID}
	msg := chunk.AppendMessage(make([]byte, 0, chunk.WireSize(hdr, len(body), ss.outChunk)), hdr, body, ss.outChunk)
	ss.write(msg)
}

func (ss *session) sendStatus(level, code, description string) {
	ss.sendCommand(edge.StreamID, "onStatus", 0.0, nil, statusObject(level, code, description))
}

// fail answers with an error status and closes the connection once the
// answer is written.
func (ss *session) fail(reason string) {
	ss.setReason(reason)
	ss.closing = true
}

func (ss *session) onConnect(txn float64, vals []any) error {
	if ss.connected.Load() {
		return errors.New("second connect on one connection")
	}
	if len(vals) < 3 {
		return errors.New("connect: no command object")
	}
	obj, ok := asObject(vals[2])
	if !ok {
		return fmt.Errorf("connect: command object is %T", vals[2])
	}
	var t target
	err := checkNames("tcUrl", obj.String("tcUrl"), "app", obj.String("app"), "pageUrl", obj.String("pageUrl"))
	if err == nil {
		t, err = parseConnect(obj.String("tcUrl"), obj.String("app"))
	}
	if err == nil {
		err = checkNames("vhost", t.vhost) // as the query decodes it
	}
	if err != nil {
		// Bad input: answered, then closed with a WARN line.
		ss.sendCommand(0, "_error", txn, nil, statusObject("error", "NetConnection.Connect.Rejected", err.Error()))
		return fmt.Errorf("connect: %w", err)
	}
	v := ss.srv.config().Vhost(t.vhost)
	if v == nil {
		desc := fmt.Sprintf("vhost %q is not served here", t.vhost)
		ss.sendCommand(0, "_error", txn, nil, statusObject("error", "NetConnection.Connect.Rejected", desc))
		ss.fail("connect rejected: " + desc)
		return nil
	}
	ss.vhostPtr.Store(v)
	ss.app, ss.tcURL = t.app, t.tcURL
	ss.appRaw, ss.tcQuery, ss.connectObj = obj.String("app"), t.query, obj
	ss.key.Vhost, ss.key.App = v.Name, t.app

	reject := func(code, desc string) {
		ss.sendCommand(0, "_error", txn, nil, statusObject("error", code, desc))
		ss.fail("connect rejected: " + desc)
	}
	accept := func() { ss.acceptConnect(txn, obj, vals, t, v) }
	traverse := func() {
		if v.Cluster.Mode != conf.ModeRemote || !v.Cluster.TokenTraverse {
			accept()
			return
		}
		ss.traverse(v, t, func(err error) {
			var ue *edge.UpstreamError
			switch {
			case errors.As(err, &ue):
				reject(ue.Code, "origin: "+ue.Description)
			case err != nil:
				reject("NetConnection.Connect.Rejected", "token traverse: "+err.Error())
			default:
				accept()
			}
		})
	}
	if v.Hooks.OnConnect == "" {
		traverse()
		return nil
	}
	ss.callHook(v, v.Hooks.OnConnect, "on_connect", "", queryParam(t.query), func(err error) {
		if err != nil {
			reject("NetConnection.Connect.Rejected", err.Error())
			return
		}
		traverse()
	})
	return nil
}

func queryParam(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

// acceptConnect answers a connect that was allowed.
func (ss *session) acceptConnect(txn float64, obj amf.Object, vals []any, t target, v *conf.Vhost) {
	encoding, _ := obj.Number("objectEncoding")
	b := chunk.AppendWindowAckSize(ss.out[:0], windowAckSize)
	b = chunk.AppendSetPeerBandwidth(b, peerBandwidth, 2)
	b = chunk.AppendSetChunkSize(b, uint32(ss.srv.config().ChunkSize))
	ss.write(b)
	ss.outChunk = ss.srv.config().ChunkSize
	ss.sendCommand(0, "_result", txn,
		amf.Object{{Key: "fmsVer", Value: "FMS/3,5,3,888"}, {Key: "capabilities", Value: 127.0}, {Key: "mode", Value: 1.0}},
		amf.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetConnection.Connect.Success"},
			{Key: "description", Value: "Connection succeeded."},
			{Key: "objectEncoding", Value: encoding},
		})
	ss.connected.Store(true)
	ss.publishView()
	ss.log.Debug("connected", "vhost", v.Name, "app", t.app, "tc_url", t.tcURL)
	if len(vals) > 3 {
		if up, ok := vals[3].(amf.Object); ok && up.String("srs_sig") != "" {
			ss.fromEdge = true
			pid, _ := up.Number("srs_pid")
			ss.log.Info("connection from an edge", "vhost", v.Name, "tc_url", t.tcURL,
				"edge_server", up.String("srs_server"), "edge_pid", int(pid), "edge_id", up.String("srs_id"), "edge_ip", up.String("srs_server_ip"))
		}
	}
}

func asObject(v any) (amf.Object, bool) {
	switch o := v.(type) {
	case amf.Object:
		return o, true
	case amf.ECMAArray:
		return amf.Object(o), true
	}
	return nil, false
}

// maxNameBytes bounds the names a client sends (tcUrl, app, stream name,
// each with its query): every log line and hook request of the connection
// carries them. Tokens in queries fit; 64 KiB names do not.
const maxNameBytes = 4096

// checkNames returns why one of the client's names (pairs of what it is
// and its value) cannot be used: longer than maxNameBytes, not UTF-8 (a
// hook's JSON would get U+FFFD instead, so two names would look the same
// to it), or with control characters (newlines, NUL, escapes), which no
// client needs and hooks, scripts and log readers should not have to
// defend against. Path-like and markup-like names are names like any
// other: the server never uses them as paths, and hooks get them exactly,
// JSON-escaped.
func checkNames(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		what, s := pairs[i], pairs[i+1]
		if len(s) > maxNameBytes {
			return fmt.Errorf("%s is %d bytes long, over the limit of %d", what, len(s), maxNameBytes)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("%s %q is not valid UTF-8", what, s)
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				return fmt.Errorf("%s %q contains the control character %U", what, s, r)
			}
		}
	}
	return nil
}

// streamArg returns the stream name argument of publish or play.
func streamArg(cmd string, args []any) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("%s: no stream name", cmd)
	}
	name, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("%s: stream name is %T", cmd, args[0])
	}
	if err := checkNames("stream name", name); err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	return name, nil
}

func (ss *session) onPublish(txn float64, args []any) error {
	if role(ss.role.Load()) != roleNone {
		return fmt.Errorf("publish while already a %s", role(ss.role.Load()))
	}
	raw, err := streamArg("publish", args)
	if err != nil {
		ss.sendStatus("error", "NetStream.Publish.BadName", err.Error())
		return err
	}
	name, _ := splitQuery(raw)
	if name == "" {
		ss.sendStatus("error", "NetStream.Publish.BadName", "Stream name is empty.")
		ss.fail("publish refused: empty stream name")
		return nil
	}
	v := ss.vhostPtr.Load()
	if v.Hooks.OnPublish == "" {
		ss.startPublish(raw, name, v)
		return nil
	}
	_, q := splitQuery(raw)
	ss.callHook(v, v.Hooks.OnPublish, "on_publish", name, queryParam(q), func(err error) {
		if err != nil {
			ss.sendStatus("error", "NetStream.Publish.Rejected", err.Error())
			ss.fail("publish refused by on_publish: " + err.Error())
			return
		}
		ss.startPublish(raw, name, v)
	})
	return nil
}

// becomePublisher gives the session the publisher role and lets it send
// messages up to max_message_size (until now: max_command_size), placed
// in their packets as they arrive and read in batches.
func (ss *session) becomePublisher(v *conf.Vhost) {
	ss.role.Store(int32(rolePublisher))
	ss.rd.SetMaxMessageSize(int(ss.srv.config().MaxMessageSize))
	ss.rd.SetPlacer(ss)
	ss.startBatch(v)
}

// startPublish makes the session the stream's publisher (or forwards it).
func (ss *session) startPublish(raw, name string, v *conf.Vhost) {
	key := edge.Key{Vhost: ss.key.Vhost, App: ss.app, Stream: name}
	if v.Cluster.Mode == conf.ModeRemote {
		// An edge forwards the publish; the origin's answer is the client's.
		ss.key = key
		ss.lastMedia.Store(time.Now().UnixNano())
		ss.becomePublisher(v)
		ss.srv.startForward(ss, v, upstreamTarget{vhost: v, app: ss.appRaw, query: ss.tcQuery, stream: raw})
		ss.publishView()
		ss.log.Info("publish forwarding", "vhost", key.Vhost, "app", key.App, "stream", name)
		return
	}
	hub := ss.srv.hubs.Acquire(key, ss.srv.hubOptions(v))
	if err := hub.Publish(ss); err != nil {
		ss.srv.hubs.Release(hub)
		ss.sendStatus("error", "NetStream.Publish.BadName", fmt.Sprintf("Stream %s is already publishing.", name))
		ss.fail(fmt.Sprintf("publish %s refused: %v", key, err))
		return
	}
	ss.key, ss.hub = key, hub
	if loc := ss.srv.locator(); loc != nil {
		// The only publisher here: now the only one in the cluster?
		ss.claimPublish(loc, name)
		return
	}
	ss.beginPublish(name)
}

// beginPublish tells the client its publish started, on the stream's hub.
func (ss *session) beginPublish(name string) {
	ss.lastMedia.Store(time.Now().UnixNano())
	ss.becomePublisher(ss.vhostPtr.Load())
	ss.write(chunk.AppendUserControl(ss.out[:0], chunk.EventStreamBegin, edge.StreamID))
	ss.sendStatus("status", "NetStream.Publish.Start", fmt.Sprintf("%s is now published.", name))
	ss.publishView()
	ss.log.Info("publish start", "vhost", ss.key.Vhost, "app", ss.key.App, "stream", name)
}

func (ss *session) onPlay(txn float64, args []any) error {
	if role(ss.role.Load()) != roleNone {
		return fmt.Errorf("play while already a %s", role(ss.role.Load()))
	}
	raw, err := streamArg("play", args)
	if err != nil {
		ss.sendStatus("error", "NetStream.Play.StreamNotFound", err.Error())
		return err
	}
	name, _ := splitQuery(raw)
	if name == "" {
		ss.sendStatus("error", "NetStream.Play.StreamNotFound", "Stream name is empty.")
		ss.fail("play refused: empty stream name")
		return nil
	}
	reset := true
	if len(args) > 3 {
		if r, ok := args[3].(bool); ok {
			reset = r
		}
	}
	v := ss.vhostPtr.Load()
	if v.Hooks.OnPlay == "" {
		ss.startPlay(raw, name, reset, v)
		return nil
	}
	_, q := splitQuery(raw)
	ss.callHook(v, v.Hooks.OnPlay, "on_play", name, queryParam(q), func(err error) {
		if err != nil {
			ss.sendStatus("error", "NetStream.Play.Failed", err.Error())
			ss.fail("play refused by on_play: " + err.Error())
			return
		}
		ss.startPlay(raw, name, reset, v)
	})
	return nil
}

// startPlay attaches the session to the stream as a player. An origin
// first asks the registry about a stream it does not have, and redirects
// the player to the origin that has it.
func (ss *session) startPlay(raw, name string, reset bool, v *conf.Vhost) {
	key := edge.Key{Vhost: ss.key.Vhost, App: ss.app, Stream: name}
	if v.Cluster.Mode == conf.ModeLocal && ss.locatePlay(key, func() { ss.playHere(raw, name, reset, v) }) {
		return
	}
	ss.playHere(raw, name, reset, v)
}

// playHere attaches the session to the stream as a player of this server.
func (ss *session) playHere(raw, name string, reset bool, v *conf.Vhost) {
	key := edge.Key{Vhost: ss.key.Vhost, App: ss.app, Stream: name}
	hub := ss.srv.hubs.Acquire(key, ss.srv.hubOptions(v))
	if limit := ss.srv.overCapacity(hub); limit != "" {
		ss.srv.hubs.Release(hub)
		ss.refusePlay(name, limit)
		return
	}
	ss.key, ss.hub = key, hub

	ss.write(chunk.AppendUserControl(ss.out[:0], chunk.EventStreamBegin, edge.StreamID))
	if reset {
		ss.sendStatus("status", "NetStream.Play.Reset", fmt.Sprintf("Playing and resetting %s.", name))
	}
	ss.sendStatus("status", "NetStream.Play.Start", fmt.Sprintf("Started playing %s.", name))
	body, _ := amf.AppendAll(ss.out[:0], "|RtmpSampleAccess", true, true)
	ss.out = body
	hdr := chunk.Header{CSID: 5, Length: uint32(len(body)), TypeID: chunk.TypeDataAMF0, StreamID: edge.StreamID}
	ss.write(chunk.AppendMessage(nil, hdr, body, ss.outChunk))

	if ss.closedMeanwhile(hub) {
		return
	}
	if !hub.Publishing() {
		ss.waitingFor.Store(time.Now().UnixNano())
	}
	ss.role.Store(int32(rolePlayer))
	ss.rd.Release() // a player sends little more than acknowledgements: no 4 KiB buffers kept for it
	ss.srv.join(ss, v, formatRTMP)
	if v.Cluster.Mode == conf.ModeRemote {
		ss.srv.ingestJoin(ss, v, upstreamTarget{vhost: v, app: ss.appRaw, query: ss.tcQuery, stream: raw})
	}
	ss.publishView()
	ss.log.Info("play start", "vhost", key.Vhost, "app", key.App, "stream", name, "waiting_for_publisher", !hub.Publishing())
}

// closedMeanwhile reports whether the connection closed while a play was
// being set up, giving back the stream it held: a write error inside one
// of the replies makes gnet run OnClose at once, before the session is a
// player, and a session joined after that would have its group write to a
// file descriptor the next connection may already have.
func (ss *session) closedMeanwhile(hub *edge.Hub) bool {
	if !ss.gone {
		return false
	}
	ss.srv.hubs.Release(hub)
	ss.hub = nil
	return true
}

func (ss *session) onPause(txn float64, args []any) error {
	if role(ss.role.Load()) != rolePlayer || len(args) == 0 {
		return nil
	}
	pause, _ := args[0].(bool)
	ss.srv.pause(ss, pause)
	if pause {
		ss.sendStatus("status", "NetStream.Pause.Notify", "Paused live stream.")
	} else {
		ss.sendStatus("status", "NetStream.Unpause.Notify", "Unpaused live stream.")
	}
	return nil
}

// endRole stops publishing or playing (the connection may stay open) and
// returns the role that ended.
func (ss *session) endRole(logIt bool) role {
	r := role(ss.role.Swap(int32(roleNone)))
	if v := ss.vhostPtr.Load(); v != nil {
		switch r {
		case rolePublisher:
			ss.notify(v.Hooks.OnUnpublish, "on_unpublish", v)
		case rolePlayer:
			ss.notify(v.Hooks.OnStop, "on_stop", v)
		}
	}
	if r == rolePublisher {
		ss.rd.SetPlacer(nil)
		ss.stopBatch()
	}
	switch {
	case r == rolePublisher && ss.fwd != nil:
		ss.fwd.stop()
		ss.fwd = nil
		if logIt {
			ss.log.Info("publisher stop", "stream", ss.key.Stream)
		}
		ss.publishView()
		return r
	case r == rolePublisher:
		ss.unclaim()
		ss.hub.Unpublish(ss)
	case r == rolePlayer:
		ss.srv.ingestLeave(ss)
		ss.srv.leave(ss)
	case ss.claiming: // closed while the registry decided its publish
		ss.dropPendingPublish()
		return r
	default:
		return r
	}
	ss.srv.hubs.Release(ss.hub)
	if logIt {
		ss.log.Info(r.String()+" stop", "stream", ss.key.Stream)
	}
	ss.hub = nil
	ss.waitingFor.Store(0)
	ss.publishView()
	return r
}
