// Package redisproc runs a throwaway redis-server for tests and benchmarks:
// on a free loopback port, without persistence, stopped by its PID.
package redisproc

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rtmpedge/rtmpedge/internal/freeport"
)

// startWait bounds the wait for a started redis-server to accept connections.
const startWait = 5 * time.Second

// Binary returns the path of redis-server, or an error when it is not
// installed (scripts/deps.sh --test installs it).
func Binary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	const debian = "/usr/bin/redis-server"
	if _, err := exec.LookPath(debian); err == nil {
		return debian, nil
	}
	return "", errors.New("redis-server is not installed (scripts/deps.sh --test installs it)")
}

// T is what ForTest needs of a *testing.T (without linking package
// testing into the benchmark's binary).
type T interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
	TempDir() string
	Cleanup(func())
}

// ForTest starts a redis-server that stops when the test ends, or skips
// the test when redis-server is not installed.
func ForTest(t T) *Server {
	t.Helper()
	if _, err := Binary(); err != nil {
		t.Skip(err)
	}
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Server is a running redis-server.
type Server struct {
	Addr string // 127.0.0.1:port
	bin  string
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

// Start runs redis-server on a free loopback port with dir as its working
// directory. It saves nothing (no RDB snapshots, no append-only file).
func Start(dir string) (*Server, error) {
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	return StartAt(dir, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// StartAt is Start on a given address (host:port), such as the example
// cluster's 127.0.0.1:6379.
func StartAt(dir, addr string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: addr, bin: bin, dir: dir}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// URL returns the registry URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// PID returns the process id of the running redis-server.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Output returns what redis-server wrote (its log).
func (s *Server) Output() string { return s.out.String() }

func (s *Server) start() error {
	host, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.bin, "--port", port, "--bind", host, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()
	deadline := time.Now().Add(startWait)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start: %s", s.Addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s did not accept connections within %s", s.Addr, startWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops redis-server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() { s.end(syscall.SIGKILL, 0) }

// Stop stops redis-server with SIGTERM (SIGKILL after 5 s) and waits.
func (s *Server) Stop() { s.end(syscall.SIGTERM, 5*time.Second) }

// end sends sig and waits; SIGKILL after grace if it is still running.
func (s *Server) end(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return
		case <-time.After(grace):
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	<-done
}

// Restart starts a new, empty redis-server on the same address after the
// previous one was stopped or killed.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
