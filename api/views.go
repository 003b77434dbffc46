package api

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rtmpedge/rtmpedge/codec"
	"github.com/rtmpedge/rtmpedge/loop"
)

// kbps is SRS's rate object: kilobits per second over the last 30 s.
type kbps struct {
	Recv30s int64 `json:"recv_30s"`
	Send30s int64 `json:"send_30s"`
}

type clientJSON struct {
	ID        string  `json:"id"`
	Vhost     string  `json:"vhost"`
	Stream    string  `json:"stream"`
	IP        string  `json:"ip"`
	PageURL   string  `json:"pageUrl"`
	SwfURL    string  `json:"swfUrl"`
	TcURL     string  `json:"tcUrl"`
	URL       string  `json:"url"`
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	Publish   bool    `json:"publish"`
	Alive     float64 `json:"alive"`
	SendBytes uint64  `json:"send_bytes"`
	RecvBytes uint64  `json:"recv_bytes"`
	Kbps      kbps    `json:"kbps"`
	Protocol  string  `json:"protocol"`
}

type videoJSON struct {
	Codec   string `json:"codec"`
	Profile string `json:"profile"`
	Level   string `json:"level"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
}

type audioJSON struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	Channel    int    `json:"channel"`
	Profile    string `json:"profile"`
}

type upstreamJSON struct {
	Origin    string `json:"origin"`
	State     string `json:"state"`
	Since     string `json:"since,omitempty"`
	Failovers int64  `json:"failovers"`
	RecvBytes uint64 `json:"recv_bytes"`
}

type streamJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Vhost     string `json:"vhost"`
	App       string `json:"app"`
	TcURL     string `json:"tcUrl"`
	URL       string `json:"url"`
	LiveMs    int64  `json:"live_ms"`
	Clients   int    `json:"clients"`
	Players   int    `json:"players"`
	Frames    uint64 `json:"frames"`
	SendBytes uint64 `json:"send_bytes"`
	RecvBytes uint64 `json:"recv_bytes"`
	Kbps      kbps   `json:"kbps"`
	Publish   struct {
		Active bool   `json:"active"`
		CID    string `json:"cid,omitempty"`
	} `json:"publish"`
	Video    *videoJSON    `json:"video"`
	Audio    *audioJSON    `json:"audio"`
	Upstream *upstreamJSON `json:"upstream,omitempty"`
}

type originJSON struct {
	Addr      string `json:"addr"`
	Alive     bool   `json:"alive"`
	DeadUntil string `json:"dead_until,omitempty"`
}

type vhostJSON struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Enabled   bool         `json:"enabled"`
	Mode      string       `json:"mode"`
	Clients   int          `json:"clients"`
	Streams   int          `json:"streams"`
	SendBytes uint64       `json:"send_bytes"`
	RecvBytes uint64       `json:"recv_bytes"`
	Kbps      kbps         `json:"kbps"`
	Select    string       `json:"select,omitempty"`
	Origins   []originJSON `json:"origins,omitempty"`
}

func (a *API) clientJSON(c loop.ClientStat) clientJSON {
	url := ""
	if c.Stream != "" {
		url = "/" + c.App + "/" + c.Stream
	}
	in, out := a.rates.kbps(rateKey{kind: 'c', id: strconv.FormatUint(c.ID, 10)})
	return clientJSON{
		ID: strconv.FormatUint(c.ID, 10), Vhost: c.Vhost, Stream: c.StreamID, IP: c.IP,
		PageURL: c.PageURL, SwfURL: c.SwfURL, TcURL: c.TcURL, URL: url, Name: c.Stream, Type: c.Type,
		Publish: c.Publish, Alive: roundSeconds(time.Since(c.Opened)),
		SendBytes: c.BytesOut, RecvBytes: c.BytesIn, Kbps: kbps{Recv30s: in, Send30s: out}, Protocol: c.Protocol,
	}
}

func (a *API) streamJSON(s loop.StreamStat) streamJSON {
	in, out := a.rates.kbps(rateKey{kind: 's', id: s.ID})
	j := streamJSON{
		ID: s.ID, Name: s.Key.Stream, Vhost: s.Key.Vhost, App: s.Key.App,
		URL: "/" + s.Key.App + "/" + s.Key.Stream, LiveMs: s.Created.UnixMilli(),
		Clients: s.Clients, Players: s.Players, Frames: s.Frames, SendBytes: s.BytesOut, RecvBytes: s.BytesIn,
		Kbps: kbps{Recv30s: in, Send30s: out},
	}
	j.TcURL = "rtmp://" + s.Key.Vhost + "/" + s.Key.App
	j.Publish.Active = s.Publishing
	if s.PublisherID != 0 {
		j.Publish.CID = strconv.FormatUint(s.PublisherID, 10)
	}
	if v, err := codec.ParseVideo(s.VideoHeader); err == nil {
		j.Video = &videoJSON{Codec: v.Codec, Profile: v.Profile, Level: v.Level, Width: v.Width, Height: v.Height}
	}
	if au, err := codec.ParseAudio(s.AudioHeader); err == nil {
		j.Audio = &audioJSON{Codec: au.Codec, SampleRate: au.SampleRate, Channel: au.Channels, Profile: au.Profile}
	}
	if u := s.Upstream; u != nil {
		j.Upstream = &upstreamJSON{Origin: u.Origin, State: u.State, Failovers: u.Failovers, RecvBytes: u.BytesIn}
		if !u.Since.IsZero() {
			j.Upstream.Since = u.Since.UTC().Format(time.RFC3339Nano)
		}
	}
	return j
}

func (a *API) vhostJSON(v loop.VhostStat) vhostJSON {
	in, out := a.rates.kbps(rateKey{kind: 'v', id: v.Name})
	j := vhostJSON{
		ID: v.Name, Name: v.Name, Enabled: v.Enabled, Mode: v.Mode, Clients: v.Clients, Streams: v.Streams,
		SendBytes: v.BytesOut, RecvBytes: v.BytesIn, Kbps: kbps{Recv30s: in, Send30s: out}, Select: v.Select,
	}
	for _, o := range v.Origins {
		oj := originJSON{Addr: o.Addr, Alive: o.DeadUntil.IsZero()}
		if !o.DeadUntil.IsZero() {
			oj.DeadUntil = o.DeadUntil.UTC().Format(time.RFC3339Nano)
		}
		j.Origins = append(j.Origins, oj)
	}
	return j
}

func (a *API) clients(w http.ResponseWriter, r *http.Request) {
	all := a.srv.Clients()
	a.reply(w, http.StatusOK, codeOK, map[string]any{"clients": paged(r, all, a.clientJSON), "total": len(all)})
}

func (a *API) client(w http.ResponseWriter, r *http.Request) {
	id, ok := loop.ParseClientID(r.PathValue("id"))
	var c loop.ClientStat
	if ok {
		c, ok = a.srv.Client(id)
	}
	if !ok {
		a.fail(w, http.StatusNotFound, codeClientNotFound, "no client "+r.PathValue("id"))
		return
	}
	a.reply(w, http.StatusOK, codeOK, map[string]any{"client": a.clientJSON(c)})
}

func (a *API) kick(w http.ResponseWriter, r *http.Request) {
	id, ok := loop.ParseClientID(r.PathValue("id"))
	if !ok || !a.srv.Kick(id) {
		a.fail(w, http.StatusNotFound, codeClientNotFound, "no client "+r.PathValue("id"))
		return
	}
	a.log.Info("client kicked", "id", id, "by", r.RemoteAddr)
	a.reply(w, http.StatusOK, codeOK, nil)
}

func (a *API) streams(w http.ResponseWriter, r *http.Request) {
	all := a.srv.Streams()
	a.reply(w, http.StatusOK, codeOK, map[string]any{"streams": paged(r, all, a.streamJSON), "total": len(all)})
}

func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	for _, s := range a.srv.Streams() {
		if s.ID == r.PathValue("id") {
			a.reply(w, http.StatusOK, codeOK, map[string]any{"stream": a.streamJSON(s)})
			return
		}
	}
	a.fail(w, http.StatusNotFound, codeStreamNotFound, "no stream "+r.PathValue("id"))
}

func (a *API) vhosts(w http.ResponseWriter, _ *http.Request) {
	all := a.srv.Vhosts()
	out := make([]vhostJSON, 0, len(all))
	for _, v := range all {
		out = append(out, a.vhostJSON(v))
	}
	a.reply(w, http.StatusOK, codeOK, map[string]any{"vhosts": out})
}

func (a *API) vhost(w http.ResponseWriter, r *http.Request) {
	for _, v := range a.srv.Vhosts() {
		if strings.EqualFold(v.Name, r.PathValue("id")) {
			a.reply(w, http.StatusOK, codeOK, map[string]any{"vhost": a.vhostJSON(v)})
			return
		}
	}
	a.fail(w, http.StatusNotFound, codeVhostNotFound, "no vhost "+r.PathValue("id"))
}

// summaries is SRS's summary of the process and the machine.
func (a *API) summaries(w http.ResponseWriter, _ *http.Request) {
	c := a.srv.Counters()
	rss := statusKB("VmRSS:")
	memTotal := meminfoKB("MemTotal:")
	self := map[string]any{
		"version": a.version, "pid": os.Getpid(), "ppid": os.Getppid(), "argv": strings.Join(os.Args, " "),
		"mem_kbyte": rss, "mem_percent": percent(rss, memTotal), "cpu_percent": a.rates.cpuPercent(),
		"srs_uptime": int64(time.Since(c.Started).Seconds()), "conns": c.Connections, "players": c.Players,
		"streams": c.Streams, "upstreams": c.Upstreams, "goroutines": runtime.NumGoroutine(),
	}
	if cwd, err := os.Getwd(); err == nil {
		self["cwd"] = cwd
	}
	load := loadAvg()
	system := map[string]any{
		"cpus": runtime.NumCPU(), "cpus_online": runtime.NumCPU(), "mem_ram_kbyte": memTotal,
		"load_1m": load[0], "load_5m": load[1], "load_15m": load[2], "conn_srs": c.Connections,
	}
	a.reply(w, http.StatusOK, codeOK, map[string]any{"data": map[string]any{
		"ok": true, "now_ms": time.Now().UnixMilli(), "self": self, "system": system,
	}})
}

func roundSeconds(d time.Duration) float64 { return float64(d.Milliseconds()/10) / 100 }

func percent(part, whole int) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part*10000/whole) / 100
}

// statusKB reads a field of /proc/self/status in KiB.
func statusKB(field string) int { return procKB("/proc/self/status", field) }

// meminfoKB reads a field of /proc/meminfo in KiB.
func meminfoKB(field string) int { return procKB("/proc/meminfo", field) }

func procKB(path, field string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == field {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// loadAvg reads the 1, 5 and 15 minute load averages.
func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}
