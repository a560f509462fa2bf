package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// served is a dashboard running in-process as main runs it, with its own NOTIFY_SOCKET.
type served struct {
	addr           string // from READY=1; "" until then
	dir            string
	stdout, stderr *lockedBuffer
	notify         *notifyListener
	cancel         context.CancelFunc
	exited         chan struct{} // closed when serve has returned
	err            error         // what serve returned, once exited is closed
}

// runServe runs `dashboard serve --data dir --addr 127.0.0.1:0 args...` in-process with ctx (which
// serve sees as it is, so cancelAtLook counts every look) without waiting for it to be ready.
// cancel ends ctx, as SIGINT or SIGTERM does.
func runServe(t *testing.T, ctx context.Context, cancel context.CancelFunc, dir string, args ...string) *served {
	t.Helper()
	s := &served{dir: dir, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, notify: listenNotify(t), cancel: cancel, exited: make(chan struct{})}
	env := map[string]string{"NOTIFY_SOCKET": s.notify.socket}
	args = append([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	go func() {
		defer close(s.exited)
		s.err = run(ctx, args, strings.NewReader(""), s.stdout, s.stderr, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		<-s.exited
	})
	return s
}

// startServing launches the dashboard and returns once it has notified READY=1.
func startServing(t *testing.T, dir string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := runServe(t, ctx, cancel, dir, args...)
	s.addr = servingAddr(t, s.notify.await(t, "READY=1", s.exited, s.stderr))
	return s
}

// stop cancels serve's context, as SIGINT or SIGTERM does, and returns what serve returned.
func (s *served) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	return s.wait(t)
}

// wait waits for serve to return and returns its result.
func (s *served) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-s.exited:
		return s.err
	case <-time.After(notifyDeadline):
		t.Fatalf("serve did not return:\n%s", s.stderr)
		return nil
	}
}

// logProblems returns the log lines at level WARN or ERROR.
func logProblems(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
			out = append(out, line)
		}
	}
	return out
}

// assertReleased checks what a clean stop leaves behind: the data directory's lock is free and
// no database file of it is open any more.
func assertReleased(t *testing.T, dir string) {
	t.Helper()
	release, err := lockData(dir, "testing")
	if err != nil {
		t.Fatalf("data directory still locked after serve returned: %v", err)
	}
	release()
	// NB: database/sql closes a connection that is busy at Close (a cancelled transaction still
	// rolling back) when it comes back to the pool, a moment after serve has returned.
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, err := openFilesUnder(filepath.Join(dir, db.FileName))
		if err != nil {
			t.Logf("cannot tell whether the database is closed: %v", err)
			return
		}
		if len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database not closed after serve returned: %s still open", open)
		}
		time.Sleep(time.Millisecond)
	}
}

// openFilesUnder lists the files this process has open whose path starts with prefix, from
// /proc/self/fd (Linux).
func openFilesUnder(prefix string) ([]string, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var open []string
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, prefix) {
			open = append(open, target)
		}
	}
	return open, nil
}

// TestStopBeforeStartUpIsACleanStop: a stop asked for before serve runs returns nil without
// touching the data directory, and a start afterwards serves.
func TestStopBeforeStartUpIsACleanStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := runServe(t, ctx, cancel, dir)
	if err := s.wait(t); err != nil {
		t.Fatalf("serve with a context already cancelled: %v", err)
	}
	if p := logProblems(s.stderr.String()); len(p) > 0 || s.stdout.String() != "" {
		t.Fatalf("a stop before start-up printed %q and logged %q", s.stdout, p)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a stop before start-up created the data directory: %v", err)
	}
	if err := startServing(t, dir).stop(t); err != nil {
		t.Fatal(err)
	}
}

// cancelAtLook is a context that cancels itself at its n-th look (a call of Done or Err). Handed
// to serve, it interrupts start-up at the n-th place where a SIGINT would be noticed, whichever
// step that is, rather than wherever a timer happens to land. NB: goroutines that watch the
// context (the SQLite driver's interrupt watcher) look too, so counts vary a little between runs.
type cancelAtLook struct {
	context.Context
	cancel context.CancelFunc
	left   atomic.Int64
	looks  atomic.Int64
}

func newCancelAtLook(n int64) *cancelAtLook {
	ctx, cancel := context.WithCancel(context.Background())
	c := &cancelAtLook{Context: ctx, cancel: cancel}
	c.left.Store(n)
	return c
}

func (c *cancelAtLook) Done() <-chan struct{} { c.look(); return c.Context.Done() }
func (c *cancelAtLook) Err() error            { c.look(); return c.Context.Err() }

func (c *cancelAtLook) look() {
	c.looks.Add(1)
	if c.left.Add(-1) == 0 {
		c.cancel()
	}
}

// countLooks starts the dashboard with args on dir once, uninterrupted, and returns how many
// times it looked at its context before READY=1.
func countLooks(t *testing.T, dir string, args ...string) int64 {
	t.Helper()
	ctx := newCancelAtLook(-1)
	s := runServe(t, ctx, ctx.cancel, dir, args...)
	s.notify.await(t, "READY=1", s.exited, s.stderr)
	looks := ctx.looks.Load()
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	return looks
}

// TestStopAtAnyPointOfStartUpIsACleanStop interrupts start-up at look after look of its context,
// from the lock to the demo's wiring, on a first start and on restarts: each time serve returns
// nil, logs no warning or error, and leaves the data directory unlocked with the database closed;
// and a start after an interrupted one serves.
func TestStopAtAnyPointOfStartUpIsACleanStop(t *testing.T) {
	restartDir := t.TempDir()
	plain := countLooks(t, t.TempDir())
	demo := countLooks(t, t.TempDir(), "--demo")
	countLooks(t, restartDir, "--demo")
	restart := countLooks(t, restartDir, "--demo")
	for _, sweep := range []struct {
		name           string
		args           []string
		dir            string // "" for a fresh data directory each time
		from, to, step int64
	}{
		// Every statement looks several times (database/sql, the driver, its interrupt watcher), so
		// a stride of a few looks stops start-up inside each one.
		{"first start", nil, "", 1, plain, 4},
		// The demo starts as the plain dashboard does, then wires the simulator over HTTP, each call
		// looking dozens of times.
		{"first demo", []string{"--demo"}, "", plain, demo, max(4, (demo-plain)/20)},
		// A restart finds the schema in place and moves the demo to the simulator's new port;
		// interrupted restarts follow one another on the same data.
		{"demo restart", []string{"--demo"}, restartDir, 1, restart, max(4, restart/30)},
	} {
		t.Run(sweep.name, func(t *testing.T) {
			var dirs []string
			interrupted := 0
			for n := sweep.from; n <= sweep.to; n += sweep.step {
				dir := sweep.dir
				if dir == "" {
					dir = t.TempDir()
				}
				dirs = append(dirs, dir)
				ctx := newCancelAtLook(n)
				s := runServe(t, ctx, ctx.cancel, dir, sweep.args...)
				if err := s.wait(t); err != nil {
					t.Fatalf("stopped at look %d of %d: serve returned %v\n%s", n, sweep.to, err, s.stderr)
				}
				if p := logProblems(s.stderr.String()); len(p) > 0 {
					t.Fatalf("stopped at look %d of %d: logged %q", n, sweep.to, p)
				}
				assertReleased(t, dir)
				if !strings.Contains(s.stderr.String(), `"msg":"dashboard started"`) {
					interrupted++
				}
			}
			if interrupted == 0 {
				t.Fatalf("no start-up was stopped before serving (looks %d to %d)", sweep.from, sweep.to)
			}
			t.Logf("%d of %d start-ups stopped before serving (looks %d to %d)", interrupted, len(dirs), sweep.from, sweep.to)
			if err := startServing(t, dirs[len(dirs)/2], sweep.args...).stop(t); err != nil {
				t.Fatalf("start after an interrupted one: %v", err)
			}
		})
	}
}

// dashboardBinary is the dashboard built once for the tests that run it as a process.
var dashboardBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dashboardBinary.dir != "" {
		os.RemoveAll(dashboardBinary.dir)
	}
	os.Exit(code)
}

// buildDashboard builds cmd/dashboard (once per test run) and returns the binary's path.
func buildDashboard(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the dashboard binary; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("building the dashboard binary needs the go command on PATH")
	}
	b := &dashboardBinary
	b.once.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			b.err = err
			return
		}
		if b.dir, b.err = os.MkdirTemp("", "dashboard-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "dashboard")
		// As it ships (the Dockerfile, scripts/release): static and -trimpath, which also lets the
		// packaging tests' builds reuse the compiled packages.
		build := exec.Command(goBin, "build", "-trimpath", "-o", b.path, "./cmd/dashboard")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			b.err = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// dashboardCommand is the dashboard binary with args, its environment cleared of DASHBOARD_*
// and NOTIFY_SOCKET settings and given the socket of notify.
func dashboardCommand(t *testing.T, notify *notifyListener, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(buildDashboard(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DASHBOARD_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+notify.socket)
	return cmd
}

// TestSIGTERMDuringStartUpExitsZero runs the binary and sends it SIGTERM as soon as it reports
// each start-up step (STATUS=...) and once it is ready: every time it exits 0 with no error on
// stderr and leaves the data directory unlocked.
func TestSIGTERMDuringStartUpExitsZero(t *testing.T) {
	for _, at := range []string{"STATUS=starting", "STATUS=opening the database", "STATUS=starting the demo", "READY=1"} {
		t.Run(at, func(t *testing.T) {
			dir := t.TempDir()
			notify := listenNotify(t)
			cmd := dashboardCommand(t, notify, "--demo", "--data", dir, "--addr", "127.0.0.1:0", "--log-format", "json")
			stderr := &lockedBuffer{}
			cmd.Stdout, cmd.Stderr = io.Discard, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			var waitErr error
			go func() { waitErr = cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			notify.await(t, at, exited, stderr)
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(notifyDeadline):
				t.Fatalf("still running %s after SIGTERM:\n%s", notifyDeadline, stderr)
			}
			if waitErr != nil {
				t.Fatalf("SIGTERM after %s: %v, want exit status 0\n%s", at, waitErr, stderr)
			}
			if p := logProblems(stderr.String()); len(p) > 0 || strings.Contains(stderr.String(), "dashboard:") {
				t.Fatalf("SIGTERM after %s printed an error:\n%s", at, stderr)
			}
			if at == "READY=1" {
				notify.await(t, "STOPPING=1", make(chan struct{}), stderr)
			}
			assertReleased(t, dir)
		})
	}
}
