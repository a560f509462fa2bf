package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// cli runs the command in-process with its own streams and environment.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return out.String(), errb.String(), err
}

func TestUserAddAndTokenCreateOnFreshDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, _, err := cli(t, nil, "a very long password\n", "user", "add", "--data", dir, "--email", "ops@example.com", "--role", "admin", "--name", "Ops")
	if err != nil || !strings.Contains(out, "ops@example.com (admin)") {
		t.Fatalf("user add: %q %v", out, err)
	}
	out, _, err = cli(t, map[string]string{"DASHBOARD_DATA": dir}, "", "token", "create", "--name", "deploy", "--scopes", "events:read,rollout:decide")
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, "tfd_") || strings.Contains(token, " ") {
		t.Fatalf("last line of stdout is not the token: %q", out)
	}
	d, err := db.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tok, err := d.TokenBySecret(context.Background(), token)
	if err != nil || tok.Name != "deploy" || strings.Join(tok.Scopes, ",") != "events:read,rollout:decide" {
		t.Fatalf("stored token: %+v %v", tok, err)
	}
	u, err := d.UserByEmail(context.Background(), "ops@example.com")
	if err != nil || u.Role != db.RoleAdmin || u.Name != "Ops" {
		t.Fatalf("stored user: %+v %v", u, err)
	}
	rows, _, _ := d.ListAudit(context.Background(), db.AuditFilter{})
	if len(rows) != 2 || rows[0].Actor != "cli" || rows[0].Action != "token.create" || rows[1].Action != "user.create" {
		t.Fatalf("audit rows: %+v", rows)
	}
	st, _ := os.Stat(filepath.Join(dir, "master.key"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("master key mode %v", st.Mode())
	}
	st, _ = os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v", st.Mode())
	}
}

func TestCommandLineErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		want  string
	}{
		{"unknown command", nil, "", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"user without add", nil, "", []string{"user"}, "usage: dashboard user add"},
		{"bad role", nil, "pw", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "root"}, "role must be one of"},
		{"no password", nil, "", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "viewer"}, "no password on stdin"},
		{"short password", nil, "short\n", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "viewer"}, "at least 12"},
		{"common password", nil, "password1234\n", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "viewer"}, "password is one of the 30,000 most common passwords"},
		{"one character", nil, "aaaaaaaaaaaa\n", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "viewer"}, "password is one character repeated"},
		{"sequence", nil, "123456789012\n", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "viewer"}, "password is a simple sequence"},
		{"password of the email", nil, "Ops.Team@example.com!\n", []string{"user", "add", "--data", dir, "--email", "ops.team@example.com", "--role", "viewer"}, "password is made of the account's email address"},
		{"password of the product", nil, "tensfer-dashboard-1\n", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "viewer"}, "password is made of the product's name"},
		{"password easy to guess", nil, "tensferr2026!\n", []string{"user", "add", "--data", dir, "--email", "a@example.com", "--role", "viewer"}, "password is too easy to guess"},
		{"bad email", nil, "a very long password\n", []string{"user", "add", "--data", dir, "--email", "nope", "--role", "viewer"}, "not an email address"},
		{"bad scope", nil, "", []string{"token", "create", "--data", dir, "--name", "x", "--scopes", "root"}, `unknown scope "root"`},
		{"no scopes", nil, "", []string{"token", "create", "--data", dir, "--name", "x"}, "at least one scope"},
		{"no token name", nil, "", []string{"token", "create", "--data", dir, "--scopes", "admin"}, "name is required"},
		{"backup without out", nil, "", []string{"backup", "--data", dir}, "--out FILE is required"},
		{"bad addr", nil, "", []string{"serve", "--data", dir, "--addr", "nonsense"}, `--addr "nonsense": must be host:port and the port is missing; e.g. 127.0.0.1:8080, or :8080 for every network interface`},
		{"bad public url", nil, "", []string{"--data", dir, "--public-url", "ftp://x"}, "must use http or https"},
		{"public url with path", nil, "", []string{"--data", dir, "--public-url", "https://x.example/dash"}, "without a path"},
		{"bad proxies", nil, "", []string{"--data", dir, "--trusted-proxies", "10.0.0.0/8,banana"}, `"banana" is not an IP address or CIDR`},
		{"bad env duration", map[string]string{"DASHBOARD_SESSION_IDLE": "soon"}, "", []string{"--data", dir}, `DASHBOARD_SESSION_IDLE="soon": not a duration`},
		{"bad log format", nil, "", []string{"--data", dir, "--log-format", "xml"}, "text or json"},
		{"bad master key", map[string]string{"DASHBOARD_MASTER_KEY": "short"}, "", []string{"token", "create", "--data", dir, "--name", "x", "--scopes", "admin"}, "DASHBOARD_MASTER_KEY"},
		{"missing key file", map[string]string{"DASHBOARD_MASTER_KEY_FILE": "/nonexistent/key"}, "", []string{"--data", dir}, "DASHBOARD_MASTER_KEY_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cli(t, tt.env, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	// None of the failures above created a user or token.
	d, err := db.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n, _ := d.CountUsers(context.Background()); n != 0 {
		t.Fatalf("failed commands created %d users", n)
	}
}

func TestBackupIsAConsistentCopy(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := cli(t, nil, "a very long password\n", "user", "add", "--data", dir, "--email", "a@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	if _, _, err := cli(t, nil, "", "backup", "--data", dir, "--out", out); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v", st.Mode(), err)
	}
	if _, _, err := cli(t, nil, "", "backup", "--data", dir, "--out", out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	// The copy opens as a database of its own with the user in it.
	restored := t.TempDir()
	b, _ := os.ReadFile(out)
	os.WriteFile(filepath.Join(restored, db.FileName), b, 0o600)
	d, err := db.Open(context.Background(), restored)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.UserByEmail(context.Background(), "a@example.com"); err != nil {
		t.Fatalf("user not in backup: %v", err)
	}
}

// lockedBuffer is an io.Writer safe to read while the server writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeSignalsReadyOnlyOnceServingAndStopsGracefully runs the real server on a free port:
// when READY=1 arrives it already answers /readyz with 200 (first try, no retry), has printed the
// setup link and logged "dashboard started" with the address it serves on; a stop then ends it
// cleanly, with STOPPING=1 and the data directory released.
func TestServeSignalsReadyOnlyOnceServingAndStopsGracefully(t *testing.T) {
	s := startServing(t, t.TempDir())
	res, err := http.Get("http://" + s.addr + "/readyz")
	if err != nil {
		t.Fatalf("readyz right after READY=1: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"ready"`) {
		t.Fatalf("readyz right after READY=1: %d %s", res.StatusCode, body)
	}
	if !strings.Contains(s.stdout.String(), "/setup?token=") {
		t.Fatalf("READY=1 before the setup link was printed: %q", s.stdout)
	}
	if !strings.Contains(s.stderr.String(), `"msg":"dashboard started","addr":"`+s.addr+`"`) {
		t.Fatalf("READY=1 before \"dashboard started\" was logged with addr %s:\n%s", s.addr, s.stderr)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	s.notify.await(t, "STOPPING=1", make(chan struct{}), s.stderr)
	if !strings.Contains(s.stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop logged: %s", s.stderr)
	}
	d, err := db.Open(context.Background(), s.dir)
	if err != nil {
		t.Fatal(err)
	}
	head, err := d.AuditHead(context.Background())
	d.Close()
	if line := `"msg":"audit head","head":"` + head.String() + `","seq":` + fmt.Sprint(head.Seq) + `,"hash":"` + head.Hash + `","reason":"stop"`; err != nil || !strings.Contains(s.stderr.String(), line) {
		t.Fatalf("the audit head %s was not published at stop (%v):\n%s", head, err, s.stderr)
	}
	if strings.Contains(s.stderr.String(), "token=") {
		t.Fatal("the setup token leaked into the log")
	}
	assertReleased(t, s.dir)
}

func TestServeRefusesWrongMasterKey(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := cli(t, nil, "a very long password\n", "user", "add", "--data", dir, "--email", "a@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	other := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	_, _, err := cli(t, map[string]string{"DASHBOARD_MASTER_KEY": other}, "", "--data", dir, "--addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "does not match this database") {
		t.Fatalf("wrong master key: %v", err)
	}
}

func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, box, _, err := openData(ctx, dir, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := box.Seal([]byte("sk_live_ROTATE123"), "env/production/secret_key")
	_, err = d.UpdateEnvironment(ctx, "production", db.EnvChange{Keys: []db.NewEnvKey{{Kind: "secret_key", Sealed: sealed, Last4: "E123", Fingerprint: box.Fingerprint([]byte("sk_live_ROTATE123"))}}}, db.Audit{Actor: "test", Action: "environment.update"})
	if err != nil {
		t.Fatal(err)
	}
	oldID := box.KeyID()
	d.Close()

	out, _, err := cli(t, nil, "", "rotate-master-key", "--data", dir)
	if err != nil || !strings.Contains(out, "re-encrypted 2 values") {
		t.Fatalf("rotate: %q %v", out, err)
	}
	d, box, _, err = openData(ctx, dir, "", "", "")
	if err != nil {
		t.Fatalf("open after rotation: %v", err)
	}
	defer d.Close()
	if box.KeyID() == oldID {
		t.Fatal("master.key still holds the old key")
	}
	keys, _ := d.ListEnvKeys(ctx, "production")
	plain, err := box.Open(keys[0].Sealed, "env/production/secret_key")
	if err != nil || string(plain) != "sk_live_ROTATE123" || keys[0].Fingerprint != box.Fingerprint(plain) {
		t.Fatalf("secret after rotation: %q %v", plain, err)
	}
	if _, err := os.Stat(filepath.Join(dir, pendingKeyFile)); !os.IsNotExist(err) {
		t.Fatal("pending key file left behind")
	}
}

func TestRotationInterruptedBeforeRenameIsFinishedAtStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, oldBox, _, err := openData(ctx, dir, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	newKey, _ := secrets.GenerateKey()
	newBox, _ := secrets.NewBox(newKey)
	writeKeyFile(filepath.Join(dir, pendingKeyFile), newKey)
	if _, err := secrets.RotateMasterKey(ctx, d, oldBox, newBox, db.Audit{Actor: "test", Action: "master_key.rotate"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Crash here: master.key is old, the database is under the new key.
	d, box, src, err := openData(ctx, dir, "", "", "")
	if err != nil {
		t.Fatalf("start after interrupted rotation: %v", err)
	}
	d.Close()
	if box.KeyID() != newKey.ID || !strings.Contains(string(src), "finished rotation") {
		t.Fatalf("key %s (%s), want %s", box.KeyID(), src, newKey.ID)
	}
}

// TestDemoConfiguresAndVerifiesBothEnvironments runs `dashboard --demo` for real: by the time it
// is ready the simulator runs on loopback and both environments are configured and verified.
func TestDemoConfiguresAndVerifiesBothEnvironments(t *testing.T) {
	dir := t.TempDir()
	s := startServing(t, dir, "--demo")
	if !strings.Contains(s.stdout.String(), "Demo mode") {
		t.Errorf("READY=1 before the demo was wired: %q", s.stdout)
	}
	// The demo's front end signs its beacons as an integrator's backend would, so they count
	// toward the guardrails: a production beacon verified by a beacon key arrives.
	ro, err := sql.Open("sqlite", "file:"+filepath.Join(dir, db.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for deadline := time.Now().Add(60 * time.Second); ; {
		var n int
		err := ro.QueryRow(`SELECT count(*) FROM events WHERE source = 'callback' AND env = 'production' AND verification LIKE '%"beacon_key"%'`).Scan(&n)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verified production beacon from the demo within 60 s (%v)", err)
		}
		select {
		case <-s.exited:
			t.Fatalf("the demo stopped: %s", s.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("demo: %v\n%s", err, s.stderr)
	}
	d, err := db.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	envs, _ := d.ListEnvironments(context.Background())
	for _, e := range envs {
		if e.VerifyOutcome != "ok" || !strings.HasPrefix(e.BaseURL, "http://127.0.0.1:") {
			t.Errorf("%s after demo start: %s %q", e.Name, e.VerifyOutcome, e.VerifyDetail)
		}
	}
	secrets, _ := d.ListWebhookSecrets(context.Background(), "")
	if len(secrets) != 2 {
		t.Errorf("webhook secrets after demo start: %d, want one per environment", len(secrets))
	}
}

func TestDemoUsesItsOwnDataDirectory(t *testing.T) {
	c, err := parseServe([]string{"--demo"}, io.Discard, func(string) string { return "" })
	if err != nil || c.dataDir != "./data-demo" {
		t.Fatalf("demo data dir %q %v", c.dataDir, err)
	}
	c, _ = parseServe([]string{"--demo", "--data", "/x"}, io.Discard, func(string) string { return "" })
	if c.dataDir != "/x" {
		t.Fatalf("--data ignored in demo: %q", c.dataDir)
	}
}

// TestRotateAndRestoreRefusedWhileServing: commands that replace what a running server holds
// open are refused while it holds the data directory, and work once it has stopped.
func TestRotateAndRestoreRefusedWhileServing(t *testing.T) {
	dir := t.TempDir()
	s := startServing(t, dir)
	_, _, err := cli(t, nil, "", "rotate-master-key", "--data", dir)
	if err == nil || !strings.Contains(err.Error(), "is running with") {
		t.Fatalf("rotate beside a running server: %v", err)
	}
	backupFile := filepath.Join(t.TempDir(), "backup.db")
	if _, _, err := cli(t, nil, "", "backup", "--data", dir, "--out", backupFile); err != nil {
		t.Fatalf("backup beside a running server: %v", err)
	}
	before, _ := os.Stat(filepath.Join(dir, db.FileName))
	_, _, err = cli(t, nil, "", "restore", "--data", dir, "--from", backupFile)
	if err == nil || !strings.Contains(err.Error(), "is running with") || !strings.Contains(err.Error(), "stop it before restoring a backup") {
		t.Fatalf("restore beside a running server: %v", err)
	}
	// The server's files stay as they are (their content changes as it serves).
	after, _ := os.Stat(filepath.Join(dir, db.FileName))
	if !os.SameFile(before, after) {
		t.Fatal("a refused restore replaced the database under the running server")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, db.FileName+".*")); len(files) != 0 {
		t.Fatalf("a refused restore left %v", files)
	}
	// A second server on the same data is refused too.
	if _, _, err := cli(t, nil, "", "--data", dir, "--addr", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "is running with") {
		t.Fatalf("second server: %v", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if out, _, err := cli(t, nil, "", "restore", "--data", dir, "--from", backupFile); err != nil || !strings.Contains(out, "restored") {
		t.Fatalf("restore after stop: %q %v", out, err)
	}
	if out, _, err := cli(t, nil, "", "rotate-master-key", "--data", dir); err != nil || !strings.Contains(out, "re-encrypted") {
		t.Fatalf("rotate after stop: %q %v", out, err)
	}
}

// TestStartRefusesAMasterKeyWithoutItsDatabase: a data directory whose database was deleted or
// emptied next to its master key is refused with what to do, instead of starting a fresh install.
func TestStartRefusesAMasterKeyWithoutItsDatabase(t *testing.T) {
	for _, loss := range []string{"deleted", "emptied"} {
		t.Run(loss, func(t *testing.T) {
			dir := t.TempDir()
			if _, _, err := cli(t, nil, "a long enough password\n", "user", "add", "--data", dir, "--email", "ana@example.com", "--role", "admin"); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, db.FileName)
			for _, suffix := range []string{"-wal", "-shm"} {
				os.Remove(path + suffix)
			}
			if loss == "deleted" {
				os.Remove(path)
			} else if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			_, _, err := cli(t, nil, "", "serve", "--data", dir, "--addr", "127.0.0.1:0")
			if err == nil || !strings.Contains(err.Error(), "missing or empty") || !strings.Contains(err.Error(), "restore it from a backup") {
				t.Fatalf("start: %v", err)
			}
			if st, err := os.Stat(path); loss == "deleted" && err == nil {
				t.Fatalf("a new database was created: %d bytes", st.Size())
			}
		})
	}
}

// TestRefusedStartLeavesNoNewFile: a start refused for what the data directory holds (its master
// key missing beside its database, a key that does not open it, a schema too new or not its own,
// a damaged file) says what to do and leaves the directory exactly as it was: above all, no
// master.key is written for a database it cannot open. A key left pending by a restore cut short is the one
// case taken: it opens the database, so it is moved into place.
func TestRefusedStartLeavesNoNewFile(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	addAdmin(t, src)
	otherKey, _ := secrets.GenerateKey()
	for _, tt := range []struct {
		name    string
		env     map[string]string
		prepare func(t *testing.T, dir string)
		want    []string
	}{
		{"master.key missing", nil, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, secrets.KeyFileName))
		}, []string{"holds the database", "no master key", "put that master.key back"}},
		{"master.key missing, another install's key pending", nil, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, secrets.KeyFileName))
			if err := writeKeyFile(filepath.Join(dir, pendingKeyFile), otherKey); err != nil {
				t.Fatal(err)
			}
		}, []string{"no master key", "put that master.key back"}},
		{"another key from the environment", map[string]string{"DASHBOARD_MASTER_KEY": otherKey.Encode()}, nil,
			[]string{"does not match this database"}},
		{"schema too new", nil, func(t *testing.T, dir string) {
			d, err := db.Open(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			d.W.Exec("PRAGMA user_version = 99")
			d.Close()
		}, []string{"schema version 99 is newer"}},
		{"a trigger added behind its back", nil, func(t *testing.T, dir string) {
			execOn(t, filepath.Join(dir, db.FileName),
				`CREATE TRIGGER promote AFTER INSERT ON sessions BEGIN UPDATE users SET role = 'admin' WHERE id = NEW.user_id; END`)
		}, []string{"trigger promote (on sessions) that this dashboard does not create", "serves only the schema it creates"}},
		{"damaged database", nil, func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, db.FileName), os.O_WRONLY, 0)
			f.WriteAt(bytes.Repeat([]byte{0xA5}, 3*4096), 4096)
			f.Close()
		}, []string{"restore it from a backup"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, src)
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			before := dirState(t, dir)
			_, _, err := cli(t, tt.env, "", "serve", "--data", dir, "--addr", "127.0.0.1:0")
			if err == nil {
				t.Fatal("the start was not refused")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := dirState(t, dir); !maps.Equal(before, after) {
				t.Errorf("the refused start changed the data directory:\nbefore %v\nafter  %v", before, after)
			}
		})
	}

	t.Run("master.key missing, its own key pending", func(t *testing.T) {
		dir := copyDir(t, src)
		keyPath := filepath.Join(dir, secrets.KeyFileName)
		own, _ := os.ReadFile(keyPath)
		if err := os.Rename(keyPath, filepath.Join(dir, pendingKeyFile)); err != nil {
			t.Fatal(err)
		}
		d, _, src, err := openData(ctx, dir, "", "", "")
		if err != nil {
			t.Fatalf("start with the database's key pending: %v", err)
		}
		d.Close()
		if got, _ := os.ReadFile(keyPath); !bytes.Equal(got, own) || !strings.Contains(string(src), "finished installing") {
			t.Errorf("master.key after the start is not the pending key (source %q)", src)
		}
	})
}

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := cli(t, nil, "a long enough password\n", "user", "add", "--data", dir, "--email", "ana@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, nil, "", "audit", "verify", "--data", dir)
	if err != nil || !strings.Contains(out, "audit log intact: 1 rows") {
		t.Fatalf("verify: %q %v", out, err)
	}
	d, err := db.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET actor = 'nobody'"} {
		if _, err := d.W.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	if _, _, err := cli(t, nil, "", "audit", "verify", "--data", dir); err == nil || !strings.Contains(err.Error(), "row 1 was changed") {
		t.Fatalf("verify after an edit: %v", err)
	}
}

// TestAuditVerifyChecksPublishedHeads: audit verify --head and --heads (a file of heads, log lines
// will do) prove the chain still holds heads published before; a cut tail or removed hashes are
// named by the head they break, and a head that is not SEQ:HASH is refused before anything opens.
func TestAuditVerifyChecksPublishedHeads(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	addAdmin(t, src)
	for i := range 3 {
		if _, _, err := cli(t, nil, "", "token", "create", "--data", src, "--name", fmt.Sprintf("t%d", i), "--scopes", "events:read"); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := cli(t, nil, "", "audit", "verify", "--data", src)
	m := regexp.MustCompile(`head (\d+:[0-9a-f]{64})`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("verify: %q %v", out, err)
	}
	head := m[1]
	d, err := db.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	early, err := d.AuditHead(ctx)
	d.Close()
	if err != nil || early.String() != head || early.Seq != 4 {
		t.Fatalf("head %s, verify said %s", early, head)
	}
	heads := filepath.Join(t.TempDir(), "heads.txt")
	os.WriteFile(heads, []byte("# grepped from the log\n"+`{"time":"2026-03-01T12:00:00Z","level":"INFO","msg":"audit head","head":"`+head+`","reason":"start"}`+"\n\n"), 0o600)

	for _, tt := range []struct {
		name   string
		tamper []string
		args   []string
		want   string // "" when verify passes
	}{
		{"an intact log", nil, []string{"--head", head, "--heads", heads}, ""},
		{"the last row deleted", []string{"DROP TRIGGER audit_log_no_delete", "DELETE FROM audit_log WHERE id = 4"}, []string{"--heads", heads},
			"published head " + head + ": row 4 is gone (the log ends at row 3): rows were deleted"},
		{"every hash removed, with a head", []string{"DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET hash = NULL"}, []string{"--head", head},
			"row 4 stores no hash"},
		{"every hash removed, without a head", []string{"DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET hash = NULL"}, nil,
			"none of its 4 rows stores a hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, src)
			execOn(t, filepath.Join(dir, db.FileName), tt.tamper...)
			out, _, err := cli(t, nil, "", append([]string{"audit", "verify", "--data", dir}, tt.args...)...)
			if tt.want == "" {
				if err != nil || !strings.Contains(out, "all 2 published heads held, the newest at row 4") {
					t.Fatalf("verify: %q %v", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("verify: %v, want it to say %q", err, tt.want)
			}
		})
	}

	garbage := filepath.Join(t.TempDir(), "garbage.txt")
	os.WriteFile(garbage, []byte(head+"\nnot a head\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--head", "4"}, `head "4" must be SEQ:HASH`},
		{[]string{"--head", "4:abc"}, "the hash must be 64 hex digits"},
		{[]string{"--heads", garbage}, "line 2 holds no head SEQ:HASH"},
	} {
		before := dirState(t, src)
		if _, _, err := cli(t, nil, "", append([]string{"audit", "verify", "--data", src}, tt.args...)...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
		if !maps.Equal(before, dirState(t, src)) {
			t.Errorf("%v changed the data directory", tt.args)
		}
	}
}

func TestPublicIngestDiskAndMetricsFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(serveConfig) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c serveConfig) bool {
			return c.publicBudget == events.DefaultPublicBudget && c.disk.Soft == diskguard.DefaultSoft && c.disk.Hard == diskguard.DefaultHard && !c.disk.Off
		}, ""},
		{"flags", []string{"--public-ingest-bytes", "256KiB", "--public-ingest-rows", "50", "--disk-soft-watermark", "2GB", "--disk-hard-watermark", "2%"}, nil, func(c serveConfig) bool {
			return c.publicBudget.BytesPerSecond == 256<<10 && c.publicBudget.RowsPerSecond == 50 && c.disk.Soft == diskguard.Threshold{Bytes: 2e9} && c.disk.Hard == diskguard.Threshold{Percent: 2}
		}, ""},
		{"environment", nil, map[string]string{"DASHBOARD_PUBLIC_INGEST_BYTES": "2MB", "DASHBOARD_DISK_SOFT_WATERMARK": "0", "DASHBOARD_DISK_HARD_WATERMARK": "0"}, func(c serveConfig) bool {
			return c.publicBudget.BytesPerSecond == 2e6 && c.disk.Off
		}, ""},
		{"a budget too small to hold one beacon", []string{"--public-ingest-bytes", "1KiB"}, nil, nil, "--public-ingest-bytes \"1KiB\": must be an amount of bytes a second from 16KiB to 1TiB"},
		{"rows not a number", []string{"--public-ingest-rows", "lots"}, nil, nil, "--public-ingest-rows \"lots\": must be a whole number"},
		{"a watermark that is not one", []string{"--disk-soft-watermark", "half"}, nil, nil, "--disk-soft-watermark \"half\": \"half\" is not an amount of space"},
		{"a share of 100%", []string{"--disk-hard-watermark", "100%"}, nil, nil, "--disk-hard-watermark \"100%\": \"100%\" is not a share of the disk"},
		{"three instances share the budget", []string{"--database-url", "postgres://u@db.example/dash", "--instances", "3", "--public-ingest-rows", "900"}, nil, func(c serveConfig) bool {
			return c.publicBudget.RowsPerSecond == 300 && c.publicBudget.BytesPerSecond == float64(events.DefaultPublicBudget.BytesPerSecond)/3
		}, ""},
		{"instances from the environment", nil, map[string]string{"DASHBOARD_DATABASE_URL": "postgres://u@db.example/dash", "DASHBOARD_INSTANCES": "2"}, func(c serveConfig) bool {
			return c.publicBudget.RowsPerSecond == events.DefaultPublicBudget.RowsPerSecond/2
		}, ""},
		{"several instances on SQLite", []string{"--instances", "2"}, nil, nil, "--instances \"2\": is 2, but several dashboards can only share a PostgreSQL database: set --database-url too"},
		{"instances not a count", []string{"--instances", "0"}, nil, nil, "--instances \"0\": must be a whole number from 1 to 64"},
		{"no metrics listener by default", nil, nil, func(c serveConfig) bool { return c.metricsAddr == "" }, ""},
		{"metrics listener", []string{"--metrics-addr", "127.0.0.1:9090"}, map[string]string{"DASHBOARD_METRICS_ADDR": "10.0.0.5:9090"}, func(c serveConfig) bool { return c.metricsAddr == "127.0.0.1:9090" }, ""},
		{"metrics listener from the environment", nil, map[string]string{"DASHBOARD_METRICS_ADDR": "10.0.0.5:9090"}, func(c serveConfig) bool { return c.metricsAddr == "10.0.0.5:9090" }, ""},
		{"metrics listener not host:port", []string{"--metrics-addr", "9090"}, nil, nil, `--metrics-addr "9090": give host:port, not a port alone: :9090 for every network interface, 127.0.0.1:9090 for this machine only`},
		{"metrics on the dashboard's address", []string{"--addr", "127.0.0.1:8080", "--metrics-addr", "127.0.0.1:8080"}, nil, nil, "must differ from --addr"},
		{"metrics on the dashboard's port on every interface", []string{"--addr", "127.0.0.1:8080", "--metrics-addr", ":8080"}, nil, nil, `--metrics-addr ":8080": must differ from --addr`},
		{"metrics on the dashboard's port, spelt otherwise", []string{"--addr", "[::]:8080", "--metrics-addr", "127.0.0.1:08080"}, nil, nil, "must differ from --addr"},
		{"metrics on another port", []string{"--addr", ":8080", "--metrics-addr", "127.0.0.1:9090"}, nil, func(c serveConfig) bool { return c.metricsAddr == "127.0.0.1:9090" }, ""},
		{"metrics and the dashboard on port 0", []string{"--addr", ":0", "--metrics-addr", ":0"}, nil, func(c serveConfig) bool { return c.metricsAddr == ":0" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseServe(c.args, io.Discard, func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !c.check(got) {
				t.Fatalf("%+v %+v %v", got.publicBudget, got.disk, err)
			}
		})
	}
}

// TestTokenCreateOwnerOrService (issue 18): a token made on the command line is either a service
// token (nobody's, listed as such and revoked in Settings) or owned by an active admin named with
// --owner, and then dies when that admin is disabled or demoted, like one made in Settings.
func TestTokenCreateOwnerOrService(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	for _, u := range [][2]string{{"boss@example.com", "admin"}, {"ana@example.com", "admin"}, {"vic@example.com", "viewer"}} {
		if _, _, err := cli(t, nil, "a very long password\n", "user", "add", "--data", dir, "--email", u[0], "--role", u[1]); err != nil {
			t.Fatal(err)
		}
	}
	create := func(args ...string) (string, error) {
		out, _, err := cli(t, nil, "", append([]string{"token", "create", "--data", dir, "--name", "svc", "--scopes", "events:read"}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1], err
	}
	service, err := create()
	if err != nil {
		t.Fatal(err)
	}
	owned, err := create("--owner", "ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ owner, says string }{
		{"vic@example.com", "not an active admin"},
		{"nobody@example.com", "no user has the email"},
	} {
		if _, err := create("--owner", bad.owner); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("--owner %s: %v, want %q", bad.owner, err, bad.says)
		}
	}
	d, err := db.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if tok, err := d.TokenBySecret(ctx, service); err != nil || tok.CreatedBy != accounts.ServiceOwner {
		t.Fatalf("service token: %+v %v", tok, err)
	}
	if tok, err := d.TokenBySecret(ctx, owned); err != nil || tok.CreatedBy != "ana@example.com" {
		t.Fatalf("owned token: %+v %v", tok, err)
	}
	if list, _ := d.ListTokens(ctx); len(list) != 2 {
		t.Fatalf("%d tokens stored, want 2: a refused owner stored one", len(list))
	}
	ana, _ := d.UserByEmail(ctx, "ana@example.com")
	if _, err := accounts.New(accounts.Config{DB: d}).SetRole(ctx, ana.ID, "operator", db.Audit{Actor: "test", Action: "user.role"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.TokenBySecret(ctx, owned); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("the demoted owner's token still works: %v", err)
	}
	if _, err := d.TokenBySecret(ctx, service); err != nil {
		t.Fatalf("the service token died with a user: %v", err)
	}
}
