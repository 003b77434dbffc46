package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestStatAlive(t *testing.T) {
	for stat, want := range map[string]bool{
		"123 (rtmpedge) S 1 123 123 0 -1":     true,
		"123 (a) (b)) R 1 123 123 0 -1":       true,
		"123 (rtmpedge) Z 1 123 123 0 -1":     false,
		"123 (rtmpedge) X 1 123 123 0 -1":     false,
		"123 (rtmpedge":                       false,
		"":                                    false,
		"123 (rtmp edge) D 1 123 123 0 -1 42": true,
	} {
		if got := statAlive([]byte(stat)); got != want {
			t.Errorf("statAlive(%q) = %v", stat, got)
		}
	}
}

func TestProcWatchAlive(t *testing.T) {
	if !(&ProcWatch{PID: os.Getpid()}).Alive() {
		t.Fatal("this process is not alive")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &ProcWatch{PID: cmd.Process.Pid}
	deadline := time.Now().Add(5 * time.Second)
	for w.Alive() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w.Alive() {
		t.Error("an exited child (a zombie until reaped) is alive")
	}
	_ = cmd.Wait()
	if w.Alive() {
		t.Error("a reaped child is alive")
	}
}

func TestChurnErrorKind(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for err, want := range map[error]string{
		fmt.Errorf("dial 127.0.0.1:1: %w", refused):                                                      "dial: refused",
		fmt.Errorf("handshake: %w", reset):                                                               "handshake: reset",
		fmt.Errorf("connect: %w", io.EOF):                                                                "connect: closed by server",
		fmt.Errorf("createStream: %w", reset):                                                            "createStream: reset",
		fmt.Errorf("play: %w", &StatusError{Code: "NetStream.Play.Failed"}):                              "play: NetStream.Play.Failed",
		fmt.Errorf("play: %w", os.ErrDeadlineExceeded):                                                   "play: timeout",
		fmt.Errorf("read: %w", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.EPIPE)}): "read: broken pipe",
		errors.New("something else"):                                                                     "other: other",
	} {
		if got := churnErrorKind(err); got != want {
			t.Errorf("churnErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

// A churn against a port nobody listens on counts refusals, and stops at
// its cycle count.
func TestChurnCountsErrors(t *testing.T) {
	addr := freeAddr(t)
	r, err := Churn(context.Background(), ChurnConfig{URL: "rtmp://" + addr + "/live/x", Cycles: 30, Concurrency: 5, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Attempted != 30 || r.Cycles != 0 || r.Errors["dial: refused"] != 30 || len(r.Examples) != 1 || r.TimedOut {
		t.Fatalf("%+v", r)
	}
	if _, err := Churn(context.Background(), ChurnConfig{URL: "http://x/y/z", Cycles: 1}); err == nil {
		t.Error("a bad URL was accepted")
	}
}
