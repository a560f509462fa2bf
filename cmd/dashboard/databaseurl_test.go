package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/pgtest"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// TestDatabaseURLRefusals: a --database-url that is not PostgreSQL's is refused by every command
// that opens the database, naming the setting as given and never its password, and backup and
// restore on PostgreSQL point to pg_dump and pg_restore. Nothing is created.
func TestDatabaseURLRefusals(t *testing.T) {
	const secret = "s3cr3t-pw"
	keyFile := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(keyFile, []byte("mysql://app:"+secret+"@db.example/dash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := "postgres://app:" + secret + "@127.0.0.1:1/dash"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"serve", nil, []string{"serve", "--database-url", "mysql://app:" + secret + "@db.example/dash"}, []string{`--database-url must be a PostgreSQL URL`, `not "mysql://"`}},
		{"serve from the environment", map[string]string{"DASHBOARD_DATABASE_URL": "sqlite:///var/lib/x.db"}, []string{"serve"}, []string{`DASHBOARD_DATABASE_URL must be`, `not "sqlite://"`}},
		{"a bare password", nil, []string{"user", "add", "--email", "a@example.com", "--role", "admin", "--database-url", secret}, []string{"--database-url must be", "it has no scheme"}},
		{"token create from a file", map[string]string{"DASHBOARD_DATABASE_URL_FILE": keyFile}, []string{"token", "create", "--name", "x", "--scopes", "admin"}, []string{`DASHBOARD_DATABASE_URL_FILE="` + keyFile + `" must be`}},
		{"audit verify", nil, []string{"audit", "verify", "--database-url", "mysql://app:" + secret + "@db.example/dash"}, []string{"--database-url must be"}},
		{"rotate-master-key", nil, []string{"rotate-master-key", "--database-url", "mysql://x"}, []string{"--database-url must be"}},
		{"reset-2fa", nil, []string{"user", "reset-2fa", "--email", "a@example.com", "--database-url", "mysql://x"}, []string{"--database-url must be"}},
		{"migrate-to-postgres", nil, []string{"migrate-to-postgres", "--database-url", "mysql://x"}, []string{"--database-url must be"}},
		{"migrate-to-postgres without a target", nil, []string{"migrate-to-postgres"}, []string{"--database-url (or DASHBOARD_DATABASE_URL) is required"}},
		{"backup on PostgreSQL", nil, []string{"backup", "--out", "b.db", "--database-url", pg}, []string{"pg_dump -Fc --no-owner", `docs/operations.md shows under "Backup and restore on PostgreSQL"`}},
		{"restore on PostgreSQL", map[string]string{"DASHBOARD_DATABASE_URL": pg}, []string{"restore", "--from", keyFile}, []string{"pg_restore --clean --if-exists --no-owner", "docs/operations.md"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append(tt.args, "--data", dir)
			_, _, err := cli(t, tt.env, "a long enough password\n", args...)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
			// serve reports every setting's problem at once, the others exit with status 2.
			if _, ok := err.(usageError); !ok && tt.args[0] != "serve" {
				t.Errorf("%T is not a usage error (exit status 2)", err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the refused command created %s", dir)
			}
		})
	}
}

// keyOnly is a new data directory holding only src's master key, as a second machine has.
func keyOnly(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := copyFile(filepath.Join(src, secrets.KeyFileName), filepath.Join(dir, secrets.KeyFileName)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMasterKeyCheckOnPostgres: every instance on one database needs its master key. One that
// comes with another key, given or generated, is refused naming both key ids, and a key generated
// for it is removed again; with the key copied it works, with the URL from a _FILE too.
func TestMasterKeyCheckOnPostgres(t *testing.T) {
	target := pgtest.URL(t)
	first := t.TempDir()
	if _, _, err := cli(t, nil, "a long enough password\n", "user", "add", "--data", first, "--database-url", target, "--email", "ana@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	k, _, err := secrets.LoadKey(first, "", "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	urlFile := filepath.Join(t.TempDir(), "database-url")
	if err := os.WriteFile(urlFile, []byte(target+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"serve, key generated", nil, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", target}},
		{"audit verify, key generated", map[string]string{"DASHBOARD_DATABASE_URL_FILE": urlFile}, []string{"audit", "verify"}},
		{"token create, another key given", map[string]string{"DASHBOARD_MASTER_KEY": other.Encode(), "DASHBOARD_DATABASE_URL": target}, []string{"token", "create", "--name", "x", "--scopes", "admin"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := cli(t, tt.env, "", append(tt.args, "--data", dir)...)
			if err == nil || !strings.Contains(err.Error(), "set up with master key "+k.ID) || !strings.Contains(err.Error(), "does not match") {
				t.Fatalf("an instance with another master key: %v, want a refusal naming %s", err, k.ID)
			}
			if strings.Contains(err.Error(), ":postgres@") {
				t.Errorf("the refusal shows the password: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, secrets.KeyFileName)); !os.IsNotExist(err) {
				t.Errorf("the refused instance kept a master key of its own: %v", err)
			}
		})
	}
	second := keyOnly(t, first)
	out, _, err := cli(t, map[string]string{"DASHBOARD_DATABASE_URL_FILE": urlFile}, "", "audit", "verify", "--data", second)
	if err != nil || !strings.Contains(out, "audit log intact: 1 rows") {
		t.Fatalf("audit verify with the shared key: %q %v", out, err)
	}
}

// TestPgDumpRestoreRoundTrip: the commands docs/operations.md gives for PostgreSQL backups
// (pg_dump -Fc --no-owner, then pg_restore --clean --if-exists --no-owner) bring a dashboard
// database back, into a new database and over the old one, with its audit chain intact.
func TestPgDumpRestoreRoundTrip(t *testing.T) {
	bin := pgtest.Require(t).Bin
	live, fresh := pgtest.URL(t), pgtest.URL(t)
	dir := t.TempDir()
	if _, _, err := cli(t, nil, "a long enough password\n", "user", "add", "--data", dir, "--database-url", live, "--email", "ana@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, nil, "", "token", "create", "--data", dir, "--database-url", live, "--name", "deploy", "--scopes", "admin"); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), "dashboard.dump")
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	run("pg_dump", "-Fc", "--no-owner", "-d", live, "-f", dump)
	// A change after the dump, which restoring it over the live database undoes.
	if _, _, err := cli(t, nil, "another long password\n", "user", "add", "--data", dir, "--database-url", live, "--email", "late@example.com", "--role", "viewer"); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{fresh, live} {
		run("pg_restore", "--clean", "--if-exists", "--no-owner", "-d", target, dump)
		out, _, err := cli(t, nil, "", "audit", "verify", "--data", dir, "--database-url", target)
		if err != nil || !strings.Contains(out, "audit log intact: 2 rows") {
			t.Errorf("audit verify after pg_restore: %q %v", out, err)
		}
	}
}
