package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc (100 on Linux).
const clockTicks = 100

// Usage is a server process tree's resource use.
type Usage struct {
	CPUSeconds float64 `json:"cpu_seconds"` // utime+stime of the tree
	PeakRSSMB  float64 `json:"peak_rss_mb"` // VmHWM summed over the tree
	RSSMB      float64 `json:"rss_mb"`      // VmRSS now, summed over the tree
	AnonMB     float64 `json:"rss_anon_mb"` // RssAnon now: private memory
	FileMB     float64 `json:"rss_file_mb"` // RssFile now: mapped binary and libraries
	Upstreams  int     `json:"upstreams"`   // TCP connections to UpstreamPort
	Processes  int     `json:"processes"`
}

// ProcWatch measures a process and its descendants through /proc.
type ProcWatch struct {
	PID          int
	UpstreamPort int // count established connections to this remote port (0: none)
}

// Usage reads the tree's current counters.
func (w *ProcWatch) Usage() Usage {
	var u Usage
	for _, pid := range tree(w.PID) {
		u.Processes++
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := statFields(b); len(f) > 13 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				u.CPUSeconds += (ut + st) / clockTicks
			}
		}
		u.PeakRSSMB += float64(StatusKB(pid, "VmHWM:")) / 1024
		u.RSSMB += float64(StatusKB(pid, "VmRSS:")) / 1024
		u.AnonMB += float64(StatusKB(pid, "RssAnon:")) / 1024
		u.FileMB += float64(StatusKB(pid, "RssFile:")) / 1024
		if w.UpstreamPort > 0 {
			u.Upstreams += countConns(pid, w.UpstreamPort)
		}
	}
	return u
}

// statFields returns the fields of /proc/PID/stat after the command name
// (field 3, state, is index 0).
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// StatusKB returns a kB field (such as "VmRSS:") of /proc/PID/status (0:
// absent or unreadable).
func StatusKB(pid int, key string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return statusField(b, key)
}

// statusField returns a kB field of a /proc/PID/status text (0: absent).
func statusField(b []byte, key string) int {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// tree returns pid and its descendants.
func tree(pid int) []int {
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		p, _ := strconv.Atoi(strings.Split(d, "/")[2])
		children[ppid] = append(children[ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// countConns counts pid's established TCP connections to remote port.
func countConns(pid, port int) int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 10 || f[3] != "01" || !inodes[f[9]] { // 01: ESTABLISHED
				continue
			}
			rem := f[2]
			j := strings.LastIndexByte(rem, ':')
			p, _ := strconv.ParseInt(rem[j+1:], 16, 32)
			if int(p) == port {
				n++
			}
		}
	}
	return n
}
