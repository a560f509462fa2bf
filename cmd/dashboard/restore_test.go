package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// seeded is what seedThroughAPI stored, to be found again after a restore.
type seeded struct {
	secretKey     string // the production secret key, in plain
	webhookSecret string // the production webhook signing secret, whsec_...
	requestID     string // carried by a stored webhook and a reported API call
}

// cliToken creates an admin API token with the CLI and returns it.
func cliToken(t *testing.T, dir string) string {
	t.Helper()
	out, _, err := cli(t, nil, "", "token", "create", "--data", dir, "--name", "restore-test", "--scopes", "admin")
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// apiCall sends a JSON request with a bearer token and fails the test unless the answer is want.
func apiCall(t *testing.T, method, url, token, body string, want int) []byte {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, res.StatusCode, b, want)
	}
	return b
}

// seedThroughAPI puts data of every kind into a running dashboard the way its users do: sealed
// keys and a webhook secret, a signed webhook, a reported API call and a rollout at its first stage.
func seedThroughAPI(t *testing.T, base, token string) seeded {
	t.Helper()
	s := seeded{secretKey: "sk_live_RESTORE_0123456789", requestID: "req_restore_0001"}
	apiCall(t, http.MethodPatch, base+"/api/v1/environments/production", token,
		`{"secret_key":"`+s.secretKey+`","public_key":"pk_live_RESTORE_0123456789"}`, http.StatusOK)
	var created struct{ Secret string }
	json.Unmarshal(apiCall(t, http.MethodPost, base+"/api/v1/environments/production/webhook-secrets", token, "", http.StatusCreated), &created)
	s.webhookSecret = created.Secret
	key, err := tensfer.ParseSecret(created.Secret)
	if err != nil {
		t.Fatalf("webhook secret %q: %v", created.Secret, err)
	}
	body := []byte(`{"id":"evt_restore_1","type":"payment.cancelled","created_at":"2026-03-01T12:00:00Z","request_id":"` + s.requestID + `","data":{"user_id":"user_1"}}`)
	req, _ := http.NewRequest(http.MethodPost, base+"/hooks/production", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	tensfer.SignRequest(req, "msg_restore_1", time.Now(), body, key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("signed webhook: status %d", res.StatusCode)
	}
	apiCall(t, http.MethodPost, base+"/api/v1/api-calls", token,
		`{"env":"production","method":"POST","path":"/payments","status":502,"duration_ms":31,"request_id":"`+s.requestID+`","error_code":"upstream"}`, http.StatusCreated)
	apiCall(t, http.MethodPut, base+"/api/v1/rollout", token, `{"stages":[{"percent":5,"min_soak":"1h"},{"percent":100}]}`, http.StatusOK)
	apiCall(t, http.MethodPost, base+"/api/v1/rollout/advance", token, "", http.StatusOK)
	return s
}

// assertRestored opens dir as the server would and finds everything seedThroughAPI stored, with
// every secret readable and the audit chain intact, ending with the restore.
func assertRestored(t *testing.T, dir string, want seeded) {
	t.Helper()
	ctx := context.Background()
	d, box, _, err := openData(ctx, dir, "", "", "")
	if err != nil {
		t.Fatalf("open the restored data directory: %v", err)
	}
	defer d.Close()
	if _, err := d.UserByEmail(ctx, "ana@example.com"); err != nil {
		t.Errorf("user after restore: %v", err)
	}
	keys, _ := d.ListEnvKeys(ctx, "production")
	found := false
	for _, k := range keys {
		if k.Kind == "secret_key" && k.RetiredAt.IsZero() {
			plain, err := box.Open(k.Sealed, secrets.EnvKeyContext("production", "secret_key"))
			found = err == nil && string(plain) == want.secretKey
		}
	}
	if !found {
		t.Errorf("the production secret key does not decrypt to what was stored (%d keys)", len(keys))
	}
	ws, _ := d.ListWebhookSecrets(ctx, "production")
	if len(ws) != 1 {
		t.Fatalf("webhook secrets after restore: %d", len(ws))
	}
	if plain, err := box.Open(ws[0].Sealed, secrets.WebhookSecretContext("production", ws[0].ID)); err != nil || string(plain) != want.webhookSecret {
		t.Errorf("webhook secret after restore: %v", err)
	}
	evs, _ := d.LookupEvents(ctx, want.requestID, 0)
	var sources []string
	for _, e := range evs {
		sources = append(sources, string(e.Source))
	}
	if slices.Sort(sources); !slices.Equal(sources, []string{"api", "webhook"}) {
		t.Errorf("events of %s after restore: %v", want.requestID, sources)
	}
	if r, err := d.Rollout(ctx, "tensfer-production"); err != nil || r.Stage != 1 {
		t.Errorf("rollout after restore: stage %d, %v", r.Stage, err)
	}
	rows, _, _ := d.ListAudit(ctx, db.AuditFilter{Limit: 1})
	if len(rows) != 1 || rows[0].Action != "backup.restore" || rows[0].Actor != "cli" {
		t.Errorf("newest audit row after restore: %+v", rows)
	}
	if out, _, err := cli(t, nil, "", "audit", "verify", "--data", dir); err != nil || !strings.Contains(out, "audit log intact") {
		t.Errorf("audit verify after restore: %q %v", out, err)
	}
}

// addAdmin adds the admin ana@example.com to the data directory dir with the CLI.
func addAdmin(t *testing.T, dir string) {
	t.Helper()
	if _, _, err := cli(t, nil, "a long enough password\n", "user", "add", "--data", dir, "--email", "ana@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
}

// adminAndBackup makes a data directory holding one admin and returns it with a backup of it.
func adminAndBackup(t *testing.T) (dir, backupFile string) {
	t.Helper()
	dir = t.TempDir()
	addAdmin(t, dir)
	backupFile = filepath.Join(t.TempDir(), "backup.db")
	if _, _, err := cli(t, nil, "", "backup", "--data", dir, "--out", backupFile); err != nil {
		t.Fatal(err)
	}
	return dir, backupFile
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string, skip ...string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if e.Type().IsRegular() && !slices.Contains(skip, e.Name()) {
			if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

// dirState is every file of dir with a hash of its content (the lock file aside).
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "dashboard.lock" { // lock_unix.go rewrites it with its pid
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		sum := sha256.Sum256(b)
		state[e.Name()] = hex.EncodeToString(sum[:8])
	}
	return state
}

// TestRestoreRoundTrip: data of every kind goes in through the API of a running dashboard, a
// backup is taken while it serves, and a later change is made; the backup then restores over the
// live database, into a directory whose database was lost, and onto a new machine that has only
// the backup and its master key. Each time everything comes back with its secrets readable, and
// the restored dashboard starts and is ready.
func TestRestoreRoundTrip(t *testing.T) {
	src := t.TempDir()
	addAdmin(t, src)
	token := cliToken(t, src)
	s := startServing(t, src)
	want := seedThroughAPI(t, "http://"+s.addr, token)
	backupFile := filepath.Join(t.TempDir(), "backup.db")
	if _, _, err := cli(t, nil, "", "backup", "--data", src, "--out", backupFile); err != nil {
		t.Fatal(err)
	}
	// A change after the backup, which restoring it undoes.
	if _, _, err := cli(t, nil, "a long enough password\n", "user", "add", "--data", src, "--email", "late@example.com", "--role", "viewer"); err != nil {
		t.Fatal(err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	keyKept := filepath.Join(t.TempDir(), "master.key")
	if err := copyFile(filepath.Join(src, secrets.KeyFileName), keyKept); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name  string
		dir   func() string
		args  []string
		aside bool // the previous database is kept aside
	}{
		{"over the live database", func() string { return copyDir(t, src) }, nil, true},
		{"after the database was lost", func() string { return copyDir(t, src, db.FileName) }, nil, false},
		{"on a new machine", func() string { return filepath.Join(t.TempDir(), "new") }, []string{"--master-key-file", keyKept}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir()
			out, _, err := cli(t, nil, "", append([]string{"restore", "--data", dir, "--from", backupFile}, tt.args...)...)
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if !strings.Contains(out, "integrity ok") || !strings.Contains(out, "restored "+filepath.Join(dir, db.FileName)) {
				t.Errorf("restore said:\n%s", out)
			}
			assertRestored(t, dir, want)
			d, err := db.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			_, lateErr := d.UserByEmail(context.Background(), "late@example.com")
			d.Close()
			if lateErr == nil {
				t.Error("the user added after the backup is still there")
			}
			asides, _ := filepath.Glob(filepath.Join(dir, db.FileName+".before-restore-*"))
			if !tt.aside {
				if len(asides) != 0 {
					t.Fatalf("kept aside with no previous database: %v", asides)
				}
				return
			}
			if len(asides) != 1 || !strings.Contains(out, "kept the previous database as "+asides[0]) {
				t.Fatalf("previous database kept as %v; restore said:\n%s", asides, out)
			}
			old, err := db.OpenFile(context.Background(), asides[0])
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			if _, err := old.UserByEmail(context.Background(), "late@example.com"); err != nil {
				t.Errorf("the previous database kept aside lacks what was added after the backup: %v", err)
			}
		})
	}

	// The restored dashboard starts and is ready (the master key opens the database).
	dir := filepath.Join(t.TempDir(), "started")
	if _, _, err := cli(t, nil, "", "restore", "--data", dir, "--from", backupFile, "--master-key-file", keyKept); err != nil {
		t.Fatal(err)
	}
	s = startServing(t, dir)
	res, err := http.Get("http://" + s.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("readyz after restore: %d", res.StatusCode)
	}
	if strings.Contains(s.stdout.String(), "/setup?token=") {
		t.Error("the restored dashboard offered a setup link, as if it had no users")
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefusesAndChangesNothing: every backup that must not be restored is refused with a
// message that says why and what to do, and the data directory is left exactly as it was.
func TestRestoreRefusesAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	live := t.TempDir()
	other := t.TempDir()
	addAdmin(t, live)
	addAdmin(t, other)
	files := t.TempDir()
	backupOf := func(dir, name string) string {
		out := filepath.Join(files, name)
		if _, _, err := cli(t, nil, "", "backup", "--data", dir, "--out", out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ownBackup := backupOf(live, "own.db")
	otherBackup := backupOf(other, "other.db")
	liveKey, _ := os.ReadFile(filepath.Join(live, secrets.KeyFileName))

	damaged := backupOf(live, "damaged.db")
	f, _ := os.OpenFile(damaged, os.O_WRONLY, 0)
	f.WriteAt(bytes.Repeat([]byte{0xA5}, 3*4096), 4096) // pages 2 to 4: tables and indexes
	f.Close()
	garbage := filepath.Join(files, "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	empty := filepath.Join(files, "empty.db")
	os.WriteFile(empty, nil, 0o600)
	newer := backupOf(live, "newer.db")
	d, err := db.OpenFile(ctx, newer)
	if err != nil {
		t.Fatal(err)
	}
	d.W.Exec("PRAGMA user_version = 99")
	d.Close()

	tests := []struct {
		name string
		env  map[string]string
		dir  string // default: live
		args []string
		want []string
	}{
		{"made with another master key", nil, "", []string{"--from", otherBackup},
			[]string{"sealed with master key", "Restore the master.key kept with that backup too", "--master-key-file"}},
		{"another key given by file", nil, "", []string{"--from", otherBackup, "--master-key-file", filepath.Join(live, secrets.KeyFileName)},
			[]string{"sealed with master key", "Give the master.key that was in use when the backup was made"}},
		{"another key from the environment", map[string]string{"DASHBOARD_MASTER_KEY": strings.TrimSpace(string(liveKey))}, "", []string{"--from", otherBackup},
			[]string{"sealed with master key", "but DASHBOARD_MASTER_KEY is master key", "Set DASHBOARD_MASTER_KEY"}},
		{"damaged", nil, "", []string{"--from", damaged}, []string{"damaged.db was not restored (nothing was changed)", "malformed"}},
		{"not a database", nil, "", []string{"--from", garbage}, []string{"not a readable SQLite database"}},
		{"empty file", nil, "", []string{"--from", empty}, []string{"not the dashboard's"}},
		{"newer schema", nil, "", []string{"--from", newer}, []string{"schema version 99 is newer than this dashboard knows", "a newer dashboard made it"}},
		{"no such file", nil, "", []string{"--from", filepath.Join(files, "nope.db")}, []string{"--from", "no such file"}},
		{"the live database itself", nil, "", []string{"--from", filepath.Join(live, db.FileName)}, []string{"the data directory's own database"}},
		{"no key on a new machine", nil, filepath.Join(files, "new"), []string{"--from", ownBackup}, []string{"holds no master key", "--master-key-file"}},
		{"no --from", nil, "", nil, []string{"--from FILE is required"}},
		{"key file and key from the environment", map[string]string{"DASHBOARD_MASTER_KEY": strings.TrimSpace(string(liveKey))}, "", []string{"--from", ownBackup, "--master-key-file", filepath.Join(other, secrets.KeyFileName)},
			[]string{"leave out --master-key-file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if dir == "" {
				dir = live
			}
			before := dirState(t, dir)
			_, _, err := cli(t, tt.env, "", append([]string{"restore", "--data", dir}, tt.args...)...)
			if err == nil {
				t.Fatal("restore succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := dirState(t, dir); !maps.Equal(before, after) {
				t.Errorf("the data directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}

	// With the other backup's key, it is restored, and the key replaced is kept aside.
	out, _, err := cli(t, nil, "", "restore", "--data", live, "--from", otherBackup, "--master-key-file", filepath.Join(other, secrets.KeyFileName))
	if err != nil {
		t.Fatalf("restore with the backup's key: %v", err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(other, secrets.KeyFileName))
	if got, _ := os.ReadFile(filepath.Join(live, secrets.KeyFileName)); !bytes.Equal(got, otherKey) {
		t.Error("master.key is not the backup's key")
	}
	keptKeys, _ := filepath.Glob(filepath.Join(live, secrets.KeyFileName+".before-restore-*"))
	if len(keptKeys) != 1 || !strings.Contains(out, "kept the previous master key as "+keptKeys[0]) {
		t.Fatalf("previous master key kept as %v; restore said:\n%s", keptKeys, out)
	}
	if got, _ := os.ReadFile(keptKeys[0]); !bytes.Equal(got, liveKey) {
		t.Error("the key kept aside is not the previous key")
	}
	d, _, _, err = openData(ctx, live, "", "", "")
	if err != nil {
		t.Fatalf("start after restoring with the backup's key: %v", err)
	}
	d.Close()
}

// TestRestoreHandlesWriteAheadLogs: a database left with a write-ahead log (a server that was
// killed) restores with what its log holds, and a restore over such a database neither replays the
// old log into the restored one nor loses it from the database kept aside.
func TestRestoreHandlesWriteAheadLogs(t *testing.T) {
	ctx := context.Background()
	src, backupFile := adminAndBackup(t)
	// A copy of the files taken while the database is open and has just committed: what a killed
	// server leaves behind.
	d, err := db.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.InsertUser(ctx, db.User{Email: "wal@example.com", Role: db.RoleViewer, PasswordHash: "x"}, db.Audit{Actor: "test", Action: "user.create"}); err != nil {
		t.Fatal(err)
	}
	crashed := copyDir(t, src)
	d.Close()
	if st, err := os.Stat(filepath.Join(crashed, db.FileName+"-wal")); err != nil || st.Size() == 0 {
		t.Fatalf("the crashed copy has no write-ahead log to test with: %v", err)
	}

	t.Run("from a database with its log", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if _, _, err := cli(t, nil, "", "restore", "--data", dir, "--from", filepath.Join(crashed, db.FileName), "--master-key-file", filepath.Join(crashed, secrets.KeyFileName)); err != nil {
			t.Fatal(err)
		}
		if names := slices.Sorted(maps.Keys(dirState(t, dir))); !slices.Equal(names, []string{db.FileName, secrets.KeyFileName}) {
			t.Errorf("data directory after restore holds %v", names)
		}
		r, err := db.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.UserByEmail(ctx, "wal@example.com"); err != nil {
			t.Errorf("the row held only in the backup's log is missing: %v", err)
		}
	})

	t.Run("over a database with a leftover log", func(t *testing.T) {
		dir := copyDir(t, crashed)
		if _, _, err := cli(t, nil, "", "restore", "--data", dir, "--from", backupFile); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, db.FileName+"-wal")); err == nil {
			t.Error("a write-ahead log is left beside the restored database")
		}
		r, err := db.Open(ctx, dir)
		if err != nil {
			t.Fatalf("open the restored database: %v", err)
		}
		_, walErr := r.UserByEmail(ctx, "wal@example.com")
		_, anaErr := r.UserByEmail(ctx, "ana@example.com")
		r.Close()
		if walErr == nil || anaErr != nil {
			t.Errorf("restored database: the old log's row found (%v), the backup's row %v", walErr, anaErr)
		}
		asides, _ := filepath.Glob(filepath.Join(dir, db.FileName+".before-restore-*"))
		if len(asides) == 0 {
			t.Fatal("nothing kept aside")
		}
		old, err := db.OpenFile(ctx, asides[0])
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		if _, err := old.UserByEmail(ctx, "wal@example.com"); err != nil {
			t.Errorf("the database kept aside lost what its log held: %v", err)
		}
	})
}

// execOn runs statements on the database file at path with a plain connection.
func execOn(t *testing.T, path string, stmts ...string) {
	t.Helper()
	conn, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// olderBackup writes a database made by this binary's migrations 1 to version only, as an older
// dashboard made it, with no rows.
func olderBackup(t *testing.T, path string, version int) {
	t.Helper()
	files, err := filepath.Glob("../../internal/db/migrations/*.sql")
	if err != nil || len(files) < version {
		t.Fatalf("migrations: %v %v", files, err)
	}
	slices.Sort(files)
	var stmts []string
	for _, f := range files[:version] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(b))
	}
	execOn(t, path, append(stmts, fmt.Sprintf("PRAGMA user_version = %d", version))...)
}

// TestRestoreRefusesAForeignSchema: a backup is restored only with exactly the schema this binary
// creates at the backup's version. An added trigger (the issue's: a session insert that makes its
// user an admin), an added view, a changed or dropped index and a dropped append-only trigger are
// each refused with a message naming what differs, and the data directory is left as it was. An
// older backup with its version's own schema restores, and is migrated.
func TestRestoreRefusesAForeignSchema(t *testing.T) {
	live, backupFile := adminAndBackup(t)
	known := db.KnownSchemaVersion()
	files := t.TempDir()
	for _, tt := range []struct {
		name    string
		older   bool // the backup is at version known-1, made by migrations
		tamper  []string
		want    []string
		refused bool
	}{
		{"a trigger that promotes on login and a view", false, []string{
			`CREATE TRIGGER promote AFTER INSERT ON sessions BEGIN UPDATE users SET role = 'admin' WHERE id = NEW.user_id; END`,
			`CREATE VIEW admins AS SELECT email FROM users WHERE role = 'admin'`,
		}, []string{"trigger promote (on sessions) that this dashboard does not create", "UPDATE users SET role = 'admin'", "view admins"}, true},
		{"a changed index", false, []string{
			`DROP INDEX sessions_user`, `CREATE INDEX sessions_user ON sessions (user_id, created_at)`,
		}, []string{"index sessions_user (on sessions) is defined as `CREATE INDEX sessions_user ON sessions (user_id, created_at)` instead of `CREATE INDEX sessions_user ON sessions (user_id)`"}, true},
		{"a dropped index", false, []string{`DROP INDEX audit_log_actor`},
			[]string{"it lacks index audit_log_actor (on audit_log), which this dashboard creates"}, true},
		{"the append-only trigger dropped", false, []string{`DROP TRIGGER audit_log_no_delete`},
			[]string{"it lacks trigger audit_log_no_delete"}, true},
		{"an older backup with a trigger", true, []string{
			`CREATE TRIGGER promote AFTER INSERT ON sessions BEGIN UPDATE users SET role = 'admin' WHERE id = NEW.user_id; END`,
		}, []string{fmt.Sprintf("creates at version %d", known-1), "trigger promote"}, true},
		{"an older backup as it was made", true, nil, []string{fmt.Sprintf("schema version %d (migrated to %d)", known-1, known)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from := filepath.Join(files, strings.ReplaceAll(tt.name, " ", "-")+".db")
			if tt.older {
				olderBackup(t, from, known-1)
			} else if err := copyFile(backupFile, from); err != nil {
				t.Fatal(err)
			}
			execOn(t, from, tt.tamper...)
			dir := copyDir(t, live)
			before := dirState(t, dir)
			out, _, err := cli(t, nil, "", "restore", "--data", dir, "--from", from)
			if !tt.refused {
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				for _, w := range tt.want {
					if !strings.Contains(out, w) {
						t.Errorf("restore said %q, not %q", out, w)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("restored:\n%s", out)
			}
			for _, w := range append(tt.want, "was not restored (nothing was changed)") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := dirState(t, dir); !maps.Equal(before, after) {
				t.Errorf("the data directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}
