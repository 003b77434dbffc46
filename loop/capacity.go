package loop

import (
	"fmt"
	"time"

	"github.com/rtmpedge/rtmpedge/conf"
	"github.com/rtmpedge/rtmpedge/edge"
)

// overCapacity returns the capacity limit a new player of hub would break,
// or "" when it fits. Egress is estimated as egressEstimate does, the new
// player included.
func (s *Server) overCapacity(hub *edge.Hub) string {
	c := s.config().Capacity
	if c.MaxPlayers > 0 {
		if n := s.players.Load(); n >= int64(c.MaxPlayers) {
			return fmt.Sprintf("max_players %d reached", c.MaxPlayers)
		}
	}
	if c.MaxEgress > 0 {
		if egress := s.egressEstimate() + wireRate(hub); egress > int64(c.MaxEgress) {
			return fmt.Sprintf("max_egress %s reached (%s with this player)", c.MaxEgress, conf.BitRate(egress))
		}
	}
	return ""
}

// egressEstimate is the server's egress in bits per second on the wire as
// capacity sees it: the sum over streams of players x wireRate.
func (s *Server) egressEstimate() int64 {
	var egress int64
	s.hubs.Each(func(h *edge.Hub) { egress += int64(h.Players()) * wireRate(h) })
	return egress
}

// What a player's media costs on the wire beyond its bytes: every message
// an RTMP chunk header (12 bytes at most; the continuation chunks of
// chunk_size 4096 add a byte per 4 KiB, left out), and every full TCP
// segment (1448 bytes) an Ethernet frame of 1514 (Ethernet 14, IPv4 20, TCP
// with timestamps 32 bytes): 4.6% more. Measured behind a shaped veth: the
// link carried 1.047 times the RTMP bytes the players read. Counting it
// keeps max_egress and busy_load in the units of capacity.link.
const (
	rtmpHeaderBytes = 12
	segmentPayload  = 1448
	segmentFrame    = 1514
)

// wireRate is what one player of h costs the link, in bits per second:
// the stream's bit rate with its chunk headers, in Ethernet frames.
func wireRate(h *edge.Hub) int64 {
	rtmp := h.BitRate() + h.MessageRate()*rtmpHeaderBytes*8
	return rtmp * segmentFrame / segmentPayload
}

// busyHysteresis: a busy box stops being busy below this share of
// capacity.busy_load, so that an estimate hovering at the threshold
// (players joining and leaving, bit rates moving from GOP to GOP) does not
// switch the windows back and forth.
const busyHysteresis = 0.9

// How recent a stalled write must be for the box to become busy, and to
// stay busy: a box whose own queue stopped dropping writes for a minute
// goes back to whole windows.
const (
	stallRecent = 10 * time.Second
	stallForget = time.Minute
)

// updateBusy re-estimates the egress (every tick) and tells whether the
// box is busy: at or above capacity.busy_load of capacity.link, and its own
// queue stalled a player's write lately (sendStalled). While it is,
// players' merged writes use half their window (group.followBusy). A box
// whose link is not what capacity.link says (a faster NIC, loopback) sees
// no stalls and never pays for the halving.
func (s *Server) updateBusy(now time.Time) {
	c := s.config().Capacity
	egress := s.egressEstimate()
	s.egress.Store(egress)
	was := s.busy.Load()
	load := float64(egress) / float64(max(c.Link, 1))
	sinceStall := now.Sub(time.Unix(0, s.lastStall.Load()))
	busy := c.BusyLoad > 0 && (!was && load >= c.BusyLoad && sinceStall < stallRecent ||
		was && load >= c.BusyLoad*busyHysteresis && sinceStall < stallForget)
	if busy == was {
		return
	}
	s.busy.Store(busy)
	if busy {
		s.log.Info("link busy: players' merged writes use half their window",
			"egress", conf.BitRate(egress), "link", c.Link, "busy_load", c.BusyLoad, "last_stalled_write", sinceStall.Round(time.Millisecond))
	} else {
		s.log.Info("link no longer busy: players' merged writes use their whole window",
			"egress", conf.BitRate(egress), "link", c.Link, "busy_load", c.BusyLoad, "last_stalled_write", sinceStall.Round(time.Millisecond))
	}
}

// refusePlay answers a play the server has no capacity for: an RTMP
// redirect to the next sibling edge when some are configured (as SRS
// redirects: NetConnection.Connect.Rejected with ex.code 302 and
// ex.redirect, which edges and our upstream client follow), else
// NetStream.Play.Failed naming the limit. The connection is closed.
func (ss *session) refusePlay(name, limit string) {
	ss.srv.refusedPlays.Add(1)
	if sib := ss.srv.config().Capacity.Redirect; len(sib) > 0 {
		to := sib[int(ss.srv.refusedPlays.Load())%len(sib)]
		ss.log.Warn("play redirected: server at capacity", "stream", name, "limit", limit, "to", to)
		ss.redirect(to, name, limit)
		return
	}
	ss.sendStatus("error", "NetStream.Play.Failed", "Server at capacity: "+limit+".")
	ss.log.Warn("play refused: server at capacity", "stream", name, "limit", limit)
	ss.fail("play refused: " + limit)
}
