package freeport

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPortsAreDistinctBelowTheEphemeralRangeAndUnbound(t *testing.T) {
	hi := ephemeralLow()
	if hi-lowest < 1000 {
		t.Skipf("ephemeral range starts at %d: nothing below it to hand out", hi)
	}
	if _, err := Port(); err != nil { // the sequence file exists from here on
		t.Fatal(err)
	}
	// Hold the port the sequence hands out next: it must be skipped.
	b, err := os.ReadFile(filepath.Join(os.TempDir(), sequenceFile))
	if err != nil {
		t.Fatal(err)
	}
	held, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("sequence file %q: %v", b, err)
	}
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(held)))
	if err != nil {
		t.Skipf("port %d is taken by someone else: %v", held, err)
	}
	defer l.Close()

	seen := map[int]bool{}
	for range 200 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowest || p >= hi {
			t.Fatalf("port %d outside %d-%d", p, lowest, hi-1)
		}
		if p == held {
			t.Fatalf("port %d handed out while a listener holds it", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	a, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", a)
	if err != nil {
		t.Fatalf("Addr %s cannot be bound: %v", a, err)
	}
	ln.Close()
}

// Test binaries run side by side (go test ./...): two processes taking
// ports at the same time never get the same one.
func TestProcessesNeverShareAPort(t *testing.T) {
	if os.Getenv("FREEPORT_CHILD") != "" {
		for range 300 {
			p, err := Port()
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			fmt.Println(p)
		}
		os.Exit(0)
	}
	if ephemeralLow()-lowest < 1000 {
		t.Skip("nothing below the ephemeral range to hand out")
	}
	child := exec.Command(os.Args[0], "-test.run", "^TestProcessesNeverShareAPort$")
	child.Env = append(os.Environ(), "FREEPORT_CHILD=1")
	var out strings.Builder
	child.Stdout = &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	mine := map[int]bool{}
	for range 300 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		mine[p] = true
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	lines := strings.Fields(out.String())
	if len(lines) != 300 {
		t.Fatalf("child printed %d ports, want 300:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		p, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("child printed %q", l)
		}
		if mine[p] {
			t.Fatalf("port %d handed to both processes", p)
		}
	}
}
