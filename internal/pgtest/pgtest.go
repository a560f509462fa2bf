// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb and the server run from
// Debian's postgresql package, as the postgres user when the tests run as root (PostgreSQL refuses
// root), in a temporary directory, on a free loopback port. One cluster serves a whole test
// binary; each test gets a database of its own.
//
// Without PostgreSQL installed the tests that need it skip with a message; with CI set in the
// environment they fail instead, so CI cannot pass by skipping them.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	Dir  string // data directory
	Port int
	Bin  string // directory of initdb, postgres, pg_ctl
	cmd  *exec.Cmd
	cred *syscall.Credential
	exit chan struct{}
}

var (
	once    sync.Once
	shared  *Cluster
	initErr error
	dbSeq   atomic.Int64
)

// binDir finds PostgreSQL's server programs: $PG_BIN, then /usr/lib/postgresql/<newest>/bin,
// then the directory of initdb on PATH.
func binDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(ms) > 0 {
		best, bestV := "", -1
		for _, m := range ms {
			v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
			if v > bestV {
				best, bestV = filepath.Dir(m), v
			}
		}
		return best, nil
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL's server programs (initdb, postgres) are not installed; on Debian: apt-get install postgresql")
}

// Require returns the shared cluster, starting it on first use. Without PostgreSQL it skips the
// test, or fails it when CI is set.
func Require(t testing.TB) *Cluster {
	t.Helper()
	once.Do(func() { shared, initErr = start(false) })
	if initErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: PostgreSQL is needed under CI: %v", initErr)
		}
		t.Skipf("pgtest: skipped, no PostgreSQL: %v", initErr)
	}
	return shared
}

// URL creates an empty database for the test and returns its URL; the database is dropped when
// the test ends.
func URL(t testing.TB) string {
	t.Helper()
	return URLFrom(t, "")
}

var (
	templatesMu sync.Mutex
	templates   = map[string]error{}
)

// Template makes database name once per test binary, by running setup on its URL (migrating it,
// say); URLFrom then copies it, which is much faster than setting up each test's database anew.
// setup must close its connections before it returns.
func Template(t testing.TB, name string, setup func(url string) error) string {
	t.Helper()
	c := Require(t)
	templatesMu.Lock()
	defer templatesMu.Unlock()
	err, done := templates[name]
	if !done {
		err = c.exec("CREATE DATABASE " + name)
		if err == nil {
			err = setup(c.DatabaseURL(name))
		}
		templates[name] = err
	}
	if err != nil {
		t.Fatalf("pgtest: template database %s: %v", name, err)
	}
	return name
}

// URLFrom is URL with the new database copied from template (made by Template); "" copies
// PostgreSQL's own empty template.
func URLFrom(t testing.TB, template string) string {
	t.Helper()
	c := Require(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	if err := c.exec(stmt); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		// WITH (FORCE) ends sessions a test left open (a process it killed, a pool not closed).
		if err := c.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.DatabaseURL(name)
}

// DatabaseURL is the URL of database name on the cluster.
func (c *Cluster) DatabaseURL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", "postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + name}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

func (c *Cluster) exec(stmt string) error {
	db, err := sql.Open("pgx", c.DatabaseURL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// start runs initdb and the server. The server is started with a parent-death signal, so it ends
// with the test binary even when the binary is killed.
//
// The shared cluster trades durability for speed (no fsync, asynchronous commit). A cluster of a
// test's own (New) is durable: its tests stop it as a crash would, and what it acknowledged must
// be there after the restart.
func start(durable bool) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Bin: bin, exit: make(chan struct{})}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and there is no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte("postgres\n"), 0o600); err != nil {
		return nil, err
	}
	if c.cred != nil {
		os.Chown(pwfile, int(c.cred.Uid), int(c.cred.Gid))
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile,
		"-A", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.Port = port
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	args := []string{"-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + dir,
		"-c", "max_connections=400", "-c", "shared_buffers=64MB"}
	if !durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Dir = dir
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: %v", err)
	}
	go func() { c.cmd.Wait(); logf.Close(); close(c.exit) }()
	if err := c.waitReady(60 * time.Second); err != nil {
		c.cmd.Process.Kill()
		b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return nil, fmt.Errorf("%v; server log: %s", err, b)
	}
	return c, nil
}

// waitReady polls until the server accepts a connection and answers a query, or it exits.
func (c *Cluster) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := c.exec("SELECT 1")
		if err == nil {
			return nil
		}
		select {
		case <-c.exit:
			return errors.New("postgres exited during start")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s: %v", limit, err)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop stops the server (an immediate shutdown, as a crash would) and waits for it to exit.
// Tests of outages use Stop and Start on a cluster of their own (New).
func (c *Cluster) Stop() {
	if c.cmd.Process != nil {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGQUIT)
	}
	<-c.exit
}

// Restart starts the server again on the same port after Stop.
func (c *Cluster) Restart() error {
	logf, err := os.OpenFile(filepath.Join(c.Dir, "server.log"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	args := c.cmd.Args[1:]
	c.cmd = exec.Command(c.cmd.Path, args...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Dir = c.Dir
	c.exit = make(chan struct{})
	if err := c.cmd.Start(); err != nil {
		return err
	}
	exit := c.exit
	go func() { c.cmd.Wait(); logf.Close(); close(exit) }()
	return c.waitReady(60 * time.Second)
}

// New starts a cluster of the test's own (for tests that stop and restart PostgreSQL); it is
// stopped and removed when the test ends.
func New(t testing.TB) *Cluster {
	t.Helper()
	Require(t) // skip or fail the same way when PostgreSQL is missing
	c, err := start(true)
	if err != nil {
		t.Fatalf("pgtest: start a cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		os.RemoveAll(c.Dir)
	})
	return c
}

// CreateDatabase creates database name on the cluster.
func (c *Cluster) CreateDatabase(name string) error {
	return c.exec("CREATE DATABASE " + name)
}

// Log is the server's log so far, for a failing test's message.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
	return strings.TrimSpace(string(b))
}

// removeStale removes the directories of earlier runs whose server is gone (a test binary that
// was killed leaves its directory behind; its server died with it).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgtest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
		if err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				continue
			}
		}
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Minute {
			os.RemoveAll(d)
		}
	}
}

// Available reports why PostgreSQL cannot be used here, or nil when it can (its programs are
// installed; the cluster itself starts on first use).
func Available() error {
	_, err := binDir()
	return err
}

// EnvStore selects the store of a test binary: "sqlite" (the default) or "postgres".
const EnvStore = "DASHBOARD_TEST_STORE"

// Second reports whether this test binary is the PostgreSQL run that Main starts.
func Second() bool { return os.Getenv(EnvStore) == "postgres" }

// Main runs the package's tests (on SQLite), then runs the same test binary again with the same
// flags and DASHBOARD_TEST_STORE=postgres, and exits with failure if either run failed. Without
// PostgreSQL installed the second run is skipped with a message; under CI it fails instead.
// TEST_SQLITE_ONLY=1 leaves the second run out (a quick local loop).
func Main(m *testing.M) {
	code := m.Run()
	if Second() || os.Getenv("TEST_SQLITE_ONLY") != "" {
		os.Exit(code)
	}
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "pgtest: the PostgreSQL run is needed under CI: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "pgtest: the PostgreSQL run of this package is skipped: %v\n", err)
		os.Exit(code)
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), EnvStore+"=postgres")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Println("pgtest: the same tests again, on PostgreSQL")
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: the PostgreSQL run failed: %v\n", err)
		code = 1
	}
	os.Exit(code)
}
