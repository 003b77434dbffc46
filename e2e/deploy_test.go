package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/bench"
)

// `make install DESTDIR=...` stages the binary, the starter config, the unit
// and the sysctl file, keeps an existing config, rewrites the unit's paths
// for another PREFIX; the unit passes `systemd-analyze verify`; the
// installed binary runs on the installed config (moved to free loopback
// ports) as the unit runs it: checked with -t, started, healthy, reloaded
// by SIGHUP, stopped by SIGTERM with status 0. `make uninstall` leaves only
// the config. (No systemd is PID 1 here, so the unit itself is not started.)
func TestMakeInstall(t *testing.T) {
	requireTool(t, "make")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	out := runMake(t, root, "install", "DESTDIR="+dest, "INSTALL_BIN="+plainServerBin)

	want := map[string]fs.FileMode{
		"usr/local/bin/rtmpedge":              0o755,
		"etc/rtmpedge/rtmpedge.yaml":          0o640,
		"etc/systemd/system/rtmpedge.service": 0o644,
		"etc/sysctl.d/60-rtmpedge.conf":       0o644,
	}
	if got := stagedFiles(t, dest); !equalModes(got, want) {
		t.Fatalf("make install staged %v, want %v\n%s", got, want, out)
	}
	sameContent(t, filepath.Join(dest, "usr/local/bin/rtmpedge"), plainServerBin)
	sameContent(t, filepath.Join(dest, "etc/rtmpedge/rtmpedge.yaml"), filepath.Join(root, "deploy/rtmpedge.yaml"))
	sameContent(t, filepath.Join(dest, "etc/sysctl.d/60-rtmpedge.conf"), filepath.Join(root, "deploy/sysctl.conf"))
	unitPath := filepath.Join(dest, "etc/systemd/system/rtmpedge.service")
	unit := readString(t, unitPath)
	for _, line := range []string{
		"Type=simple", "User=rtmpedge",
		"ExecStartPre=/usr/local/bin/rtmpedge -t -c /etc/rtmpedge/rtmpedge.yaml",
		"ExecStart=/usr/local/bin/rtmpedge -c /etc/rtmpedge/rtmpedge.yaml",
		"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "LimitNOFILE=1048576",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
	} {
		if !slices.Contains(strings.Split(unit, "\n"), line) {
			t.Errorf("the unit lacks the line %q", line)
		}
	}
	verifyUnit(t, dest, unit)

	// An operator's config survives another install.
	cfgPath := filepath.Join(dest, "etc/rtmpedge/rtmpedge.yaml")
	mine := "# the operator's own\n" + readString(t, cfgPath)
	if err := os.WriteFile(cfgPath, []byte(mine), 0o640); err != nil {
		t.Fatal(err)
	}
	if out := runMake(t, root, "install", "DESTDIR="+dest, "INSTALL_BIN="+plainServerBin); !strings.Contains(out, "kept the existing") {
		t.Errorf("a second install did not say it kept the config:\n%s", out)
	}
	if got := readString(t, cfgPath); got != mine {
		t.Fatalf("a second install overwrote the config")
	}

	// Another PREFIX: the unit runs the binary from there.
	opt := t.TempDir()
	runMake(t, root, "install", "DESTDIR="+opt, "PREFIX=/opt/rtmpedge", "INSTALL_BIN="+plainServerBin)
	if optUnit := readString(t, filepath.Join(opt, "etc/systemd/system/rtmpedge.service")); !strings.Contains(optUnit,
		"\nExecStart=/opt/rtmpedge/bin/rtmpedge -c /etc/rtmpedge/rtmpedge.yaml\n") || strings.Contains(optUnit, "/usr/local/bin") {
		t.Errorf("PREFIX=/opt/rtmpedge: the unit still names /usr/local/bin:\n%s", optUnit)
	}

	// The installed binary on the installed config, ports moved to free
	// loopback ones, run as the unit runs it.
	bin := filepath.Join(dest, "usr/local/bin/rtmpedge")
	rtmpAddr, apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := mine
	for from, to := range map[string]string{`listen: ["0.0.0.0:1935"]`: fmt.Sprintf("listen: [%q]", rtmpAddr),
		`listen: "127.0.0.1:1985"`: fmt.Sprintf("listen: %q", apiAddr)} {
		if strings.Count(cfg, from) != 1 {
			t.Fatalf("the starter config has not exactly one %s", from)
		}
		cfg = strings.Replace(cfg, from, to, 1)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-t", "-c", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("ExecStartPre (-t): %v\n%s", err, out)
	}
	s := startServerFile(t, bin, cfgPath, rtmpAddr)
	health := func() int {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + apiAddr + "/healthz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for health() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the installed server never answered /healthz with 200:\n%s", s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := bench.Dial(s.url("live/installed"), 5*time.Second) // RTMP handshake and connect
	if err != nil {
		t.Fatalf("RTMP connect to the installed server: %v", err)
	}
	c.Close()
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil { // ExecReload
		t.Fatal(err)
	}
	if !s.waitLog("configuration reloaded", 5*time.Second) {
		t.Fatalf("no reload after SIGHUP:\n%s", s.log.String())
	}
	if code := health(); code != http.StatusOK {
		t.Errorf("/healthz after the reload: HTTP %d", code)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // systemctl stop
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not stop within 10 s of SIGTERM (TimeoutStopSec is 20 s)")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0 (Restart=on-failure would restart it)", code)
	}

	out = runMake(t, root, "uninstall", "DESTDIR="+dest)
	if got := stagedFiles(t, dest); !equalModes(got, map[string]fs.FileMode{"etc/rtmpedge/rtmpedge.yaml": 0o640}) {
		t.Errorf("after make uninstall: %v, want only the config\n%s", got, out)
	}
}

// runMake runs make in dir with args and returns its output.
func runMake(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-C", dir, "--no-print-directory"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stagedFiles returns the regular files under dir with their permissions.
func stagedFiles(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	files := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel] = info.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func equalModes(a, b map[string]fs.FileMode) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameContent(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// verifyUnit runs systemd-analyze verify on the staged unit, its binary
// paths pointed into the staging tree (verify wants them to exist).
func verifyUnit(t *testing.T, dest, unit string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified")
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "rtmpedge.service")
	unit = strings.ReplaceAll(unit, "/usr/local/bin/", filepath.Join(dest, "usr/local/bin")+"/")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
