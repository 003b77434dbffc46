package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The kinds of players of a soak.
const (
	soakNormal   = iota // bench.Player, leaves with a FIN; its waits are measured
	soakReset           // reads, then leaves with a TCP reset
	soakSilent          // plays through a 4 KiB receive buffer and never reads
	soakRtmpdump        // an rtmpdump process
	soakKinds
)

var soakKindNames = [soakKinds]string{"normal", "reset", "silent", "rtmpdump"}

// soakDial bounds each of a player's dial, handshake + connect and play
// (a slow hook takes HookDelay on connect and again on play).
const soakDial = 10 * time.Second

// soakPopulation keeps cfg.Players players on the edge, joining at most
// JoinRate a second, each staying LifeMin-LifeMax on a random stream.
type soakPopulation struct {
	s       *soaker
	base    string // rtmp://edge/live/
	streams []*soakStream
	hook    *soakHook

	active, joined [soakKinds]atomic.Int64

	mu       sync.Mutex
	outcomes map[string]int
	examples map[string]string

	tracker soakTracker
	wg      sync.WaitGroup
	lag     atomic.Int64 // ns: the poll ticker's longest lateness since the last sample
}

func newSoakPopulation(s *soaker, base string, hook *soakHook) *soakPopulation {
	return &soakPopulation{s: s, base: base, hook: hook,
		outcomes: map[string]int{}, examples: map[string]string{},
		tracker: soakTracker{s: s, live: map[*soakTracked]bool{}}}
}

func (p *soakPopulation) activeCount() int {
	n := 0
	for i := range p.active {
		n += int(p.active[i].Load())
	}
	return n
}

// run keeps the population until ctx is done, then waits for every player
// to leave (each is bounded by its dial timeouts).
func (p *soakPopulation) run(ctx context.Context) {
	defer p.wg.Wait()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	join := time.NewTicker(100 * time.Millisecond)
	defer join.Stop()
	rate := p.s.cfg.JoinRate
	tokens := rate / 10
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			now := time.Now()
			if late := int64(now.Sub(last) - 50*time.Millisecond); late > p.lag.Load() {
				p.lag.Store(late)
			}
			last = now
			p.tracker.poll(now)
		case <-join.C:
			tokens = min(rate, tokens+rate/10)
			for deficit := p.s.cfg.Players - p.activeCount(); deficit > 0 && tokens >= 1; deficit-- {
				tokens--
				p.spawn(ctx)
			}
		}
	}
}

func (p *soakPopulation) pickKind() int {
	mix := p.s.cfg.Mix
	switch x := p.s.float(); {
	case x < mix.Reset:
		return soakReset
	case x < mix.Reset+mix.Silent:
		return soakSilent
	case x < mix.Reset+mix.Silent+mix.Rtmpdump:
		return soakRtmpdump
	}
	return soakNormal
}

func (p *soakPopulation) spawn(ctx context.Context) {
	kind := p.pickKind()
	st := p.streams[p.s.intN(len(p.streams))]
	life := p.s.between(p.s.cfg.LifeMin, p.s.cfg.LifeMax)
	phase := p.hook.phaseAt(time.Now())
	p.active[kind].Add(1)
	p.joined[kind].Add(1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.active[kind].Add(-1)
		url := p.base + st.name
		var err error
		switch kind {
		case soakNormal:
			err = p.playNormal(ctx, url, st, life)
		case soakReset:
			err = playResetting(ctx, url, life)
		case soakSilent:
			err = playSilent(ctx, url, life)
		case soakRtmpdump:
			err = playRtmpdump(ctx, url, life)
		}
		p.note(kind, phase, err)
	}()
}

// soakPorts hides the ephemeral ports in error texts, so that one kind of
// failure is counted as one.
var soakPorts = regexp.MustCompile(`127\.0\.0\.1:\d+->`)

// note counts a player's outcome, by kind and the hook's phase when it
// joined.
func (p *soakPopulation) note(kind int, phase string, err error) {
	outcome := "left as planned"
	if err != nil {
		outcome = soakPorts.ReplaceAllString(err.Error(), "")
		if len(outcome) > 120 {
			outcome = outcome[:120]
		}
	}
	key := fmt.Sprintf("%s, hook %s at join: %s", soakKindNames[kind], phase, outcome)
	p.mu.Lock()
	p.outcomes[key]++
	p.mu.Unlock()
}

// playNormal plays with a bench.Player for life; its waits for media are
// measured by the tracker.
func (p *soakPopulation) playNormal(ctx context.Context, url string, st *soakStream, life time.Duration) error {
	pl := &Player{URL: url}
	tr := p.tracker.add(pl, st)
	lctx, cancel := context.WithTimeout(ctx, life)
	pl.Run(lctx)
	cancel()
	p.tracker.finish(tr, time.Now())
	if pl.State.Load() == StateFailed {
		if r := pl.Reason.Load(); r != nil {
			return errors.New(*r)
		}
		return errors.New("failed")
	}
	if tr.first == 0 {
		if !pl.Started.Load() {
			return errors.New("left before its play was answered")
		}
		return errors.New("left without media")
	}
	return nil
}

// playResetting reads for life, then closes with a TCP reset.
func playResetting(ctx context.Context, url string, life time.Duration) error {
	c, err := Dialer{Timeout: soakDial}.Dial(url)
	if err != nil {
		return err
	}
	// The soak's end cuts the read short; the player still resets.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(soakDial))
	if err := c.Play(); err != nil {
		c.Close()
		return err
	}
	_ = c.SetDeadline(time.Now().Add(life))
	if ctx.Err() != nil {
		_ = c.SetDeadline(time.Now())
	}
	for {
		if _, err := c.ReadMessage(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return c.Abort()
			}
			c.Close()
			return fmt.Errorf("read: %w", err)
		}
	}
}

// playSilent plays through a tiny receive buffer, never reads, and closes
// after life. The server is expected to drop it on its own once it is
// player_backlog + player_lag_timeout behind.
func playSilent(ctx context.Context, url string, life time.Duration) error {
	c, err := stallPlayer(StallConfig{URL: url, DialTimeout: soakDial, ReadBuffer: 4096})
	if err != nil {
		return err
	}
	sleepCtx(ctx, life)
	return c.Close()
}

// playRtmpdump runs `rtmpdump --live` for life and stops it by PID.
// rtmpdump ends by itself when its stream is unpublished.
func playRtmpdump(ctx context.Context, url string, life time.Duration) error {
	pr, err := StartProc("rtmpdump", os.DevNull, "-r", url, "--live", "-o", os.DevNull, "-q")
	if err != nil {
		return err
	}
	t := time.NewTimer(life)
	defer t.Stop()
	select {
	case <-pr.done:
		return fmt.Errorf("rtmpdump ended by itself: %s", pr.Cmd.ProcessState)
	case <-ctx.Done():
	case <-t.C:
	}
	pr.Stop()
	return nil
}

// SoakWait is one wait for media of a normal player while its stream had a
// live publisher.
type SoakWait struct {
	Ms     float64 `json:"ms"`
	Player int64   `json:"player"`
	Stream string  `json:"stream"`
	FromS  float64 `json:"from_s"` // the previous video message (or the play's answer), s since the start
	ToS    float64 `json:"to_s"`   // the next video message (or the player's end)
	End    bool    `json:"at_end,omitempty"`
}

// soakTracker measures the normal players' waits for media. It polls
// their video message counters (every 50 ms, so times are that precise).
//
// A player's wait is the longest stretch during which its stream had a
// live publisher, within one live span, that lies between two of its
// reference points: the answer to its play (NetStream.Play.Start), each
// video message it received, and its end. The time from joining to the
// play's answer (hooks, possibly slow) is not a wait for media; it is
// reported as part of the time to the first media.
type soakTracker struct {
	s *soaker

	mu         sync.Mutex
	live       map[*soakTracked]bool
	nextID     int64
	tracked    int
	firstMedia []float64 // ms from dial to the first video message
	longest    SoakWait
	waits      []SoakWait // those of 1 s and more (the 1,000 longest)
	over1s     int
	overTarget int
	// The same for the monitors, players of the second origin itself: a
	// wait they see too comes from the publisher or the origin, not the edge.
	monLongest SoakWait
	monWaits   []SoakWait
}

type soakTracked struct {
	p       *Player
	st      *soakStream
	id      int64
	monitor bool
	joined  time.Time
	ref     time.Time // last reference point (zero: play not answered yet)
	video   int64
	first   time.Duration
}

func (t *soakTracker) add(p *Player, st *soakStream) *soakTracked {
	return t.addKind(p, st, false)
}

func (t *soakTracker) addKind(p *Player, st *soakStream, monitor bool) *soakTracked {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nextID++
	if !monitor {
		t.tracked++
	}
	tr := &soakTracked{p: p, st: st, id: t.nextID, monitor: monitor, joined: time.Now()}
	t.live[tr] = true
	return tr
}

func (t *soakTracker) poll(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tr := range t.live {
		t.step(tr, now)
	}
}

// finish measures the player's last stretch, up to its end.
func (t *soakTracker) finish(tr *soakTracked, end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.step(tr, end)
	if !tr.ref.IsZero() {
		t.note(tr, tr.ref, end, true)
	}
	delete(t.live, tr)
}

func (t *soakTracker) step(tr *soakTracked, now time.Time) {
	if tr.ref.IsZero() && tr.p.Started.Load() {
		tr.ref = now
	}
	v := tr.p.Video.Load()
	if v <= tr.video {
		return
	}
	tr.video = v
	if tr.first == 0 {
		tr.first = now.Sub(tr.joined)
		if !tr.monitor {
			t.firstMedia = append(t.firstMedia, float64(tr.first.Milliseconds()))
		}
	}
	if !tr.ref.IsZero() {
		t.note(tr, tr.ref, now, false)
		tr.ref = now
	}
}

func (t *soakTracker) note(tr *soakTracked, from, to time.Time, end bool) {
	w := tr.st.liveWithin(from, to)
	if w < time.Second {
		return
	}
	sw := SoakWait{Ms: float64(w.Milliseconds()), Player: tr.id, Stream: tr.st.name, FromS: t.s.since(from), ToS: t.s.since(to), End: end}
	if tr.monitor {
		t.monWaits = keepLongest(t.monWaits, sw, 1000)
		if sw.Ms > t.monLongest.Ms {
			t.monLongest = sw
		}
		return
	}
	t.over1s++
	if w > t.s.cfg.MaxWait {
		t.overTarget++
	}
	t.waits = keepLongest(t.waits, sw, 1000)
	if sw.Ms > t.longest.Ms {
		t.longest = sw
	}
}

// keepLongest adds w to waits, keeping at most n: the longest.
func keepLongest(waits []SoakWait, w SoakWait, n int) []SoakWait {
	if len(waits) < n {
		return append(waits, w)
	}
	shortest := 0
	for i := range waits {
		if waits[i].Ms < waits[shortest].Ms {
			shortest = i
		}
	}
	if w.Ms > waits[shortest].Ms {
		waits[shortest] = w
	}
	return waits
}

func (t *soakTracker) longestMs() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.longest.Ms
}

// result fills in the players' part of res.
func (p *soakPopulation) result(res *SoakResult) {
	res.Joined = map[string]int64{}
	for k := range soakKinds {
		res.Joined[soakKindNames[k]] = p.joined[k].Load()
	}
	p.mu.Lock()
	res.Outcomes = p.outcomes
	p.mu.Unlock()
	t := &p.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	res.NormalPlayers = t.tracked
	res.LongestWait = t.longest
	res.WaitsOver1s = t.over1s
	res.WaitsOverTarget = t.overTarget
	res.Waits = append([]SoakWait(nil), t.waits...)
	sort.Slice(res.Waits, func(i, j int) bool { return res.Waits[i].Ms > res.Waits[j].Ms })
	res.MonitorLongestWait = t.monLongest
	res.MonitorWaits = append([]SoakWait(nil), t.monWaits...)
	fm := append([]float64(nil), t.firstMedia...)
	res.FirstMediaP50 = percentile(fm, 0.5)
	res.FirstMediaP99 = percentile(fm, 0.99)
	if len(fm) > 0 {
		res.FirstMediaMax = fm[len(fm)-1] // sorted by percentile
	}
}
