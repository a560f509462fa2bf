package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/pgtest"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// signInStatus posts the sign-in form and returns the answer's status: 303 when it signed in.
func signInStatus(t *testing.T, base, email, password string) int {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestMigrateToPostgres(t *testing.T) {
	target := pgtest.URL(t)
	src := t.TempDir()
	addAdmin(t, src)
	token := cliToken(t, src)
	s := startServing(t, src)
	base := "http://" + s.addr
	want := seedThroughAPI(t, base, token)
	apiCall(t, http.MethodPost, base+"/api/v1/rollout/cohorts", token, `{"name":"beta testers","environment":"production","user_ids":["u1","u2"]}`, http.StatusCreated)
	if _, _, err := cli(t, nil, "", "user", "reset-2fa", "--data", src, "--email", "ana@example.com"); err == nil {
		t.Fatal("user reset-2fa ran beside the server")
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	out, _, err := cli(t, nil, "", "migrate-to-postgres", "--data", src, "--database-url", target)
	if err != nil {
		t.Fatalf("migrate-to-postgres: %v\n%s", err, out)
	}
	if !strings.Contains(out, "copying ") || !strings.Contains(out, "copied ") || strings.Contains(out, ":postgres@") {
		t.Errorf("migrate-to-postgres said (a progress line, a summary, never the password):\n%s", out)
	}
	if out, _, err := cli(t, nil, "", "audit", "verify", "--data", src, "--database-url", target); err != nil || !strings.Contains(out, "audit log intact") {
		t.Errorf("audit verify on the target: %q %v", out, err)
	}

	// A second machine holding only the master key serves the copy: the token, the password,
	// the secrets, the events and the cohort all work there, and new rows get new ids.
	dir := keyOnly(t, src)
	s2 := startServing(t, dir, "--database-url", target)
	base = "http://" + s2.addr
	if body := apiCall(t, http.MethodGet, base+"/api/v1/rollout/cohorts", token, "", http.StatusOK); !strings.Contains(string(body), "beta testers") {
		t.Errorf("cohorts on the target: %s", body)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s2.stderr)
		}
	})
	// NB: the events list, not /lookup, whose query PostgreSQL does not run yet.
	if body := apiCall(t, http.MethodGet, base+"/api/v1/events?request_id="+want.requestID, token, "", http.StatusOK); strings.Count(string(body), `"source"`) != 2 {
		t.Errorf("events of %s on the target: %s", want.requestID, body)
	}
	if got := signInStatus(t, base, "ana@example.com", "a long enough password"); got != http.StatusSeeOther {
		t.Errorf("sign in on the target: status %d, want 303", got)
	}
	if got := signInStatus(t, base, "ana@example.com", "not the password"); got == http.StatusSeeOther {
		t.Error("sign in with a wrong password on the target succeeded")
	}
	if err := s2.stop(t); err != nil {
		t.Fatal(err)
	}
	if out, _, err := cli(t, nil, "another long password\n", "user", "add", "--data", dir, "--database-url", target, "--email", "new@example.com", "--role", "viewer"); err != nil {
		t.Errorf("user add on the target: %q %v", out, err)
	}
	ctx := context.Background()
	d, box, _, err := openData(ctx, dir, target, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	keys, _ := d.ListEnvKeys(ctx, "production")
	opened := false
	for _, k := range keys {
		if plain, err := box.Open(k.Sealed, secrets.EnvKeyContext("production", k.Kind)); err == nil && string(plain) == want.secretKey {
			opened = true
		}
	}
	if !opened {
		t.Errorf("the production secret key does not open on the target (%d keys)", len(keys))
	}
	// Identity sequences continue after the copied ids: a new user is user 2 (ana is user 1), and
	// the next event id comes after the last one copied.
	if u, err := d.UserByEmail(ctx, "new@example.com"); err != nil || u.ID != 2 {
		t.Errorf("user added after the copy: id %d, %v", u.ID, err)
	}
	var lastEvent, nextEvent int64
	if err := d.R.QueryRowContext(ctx, "SELECT max(id), pg_sequence_last_value(pg_get_serial_sequence('events', 'id')) FROM events").Scan(&lastEvent, &nextEvent); err != nil || lastEvent < 2 || nextEvent < lastEvent {
		t.Errorf("events: largest id %d, sequence at %d (%v)", lastEvent, nextEvent, err)
	}
	rows, _, _ := d.ListAudit(ctx, db.AuditFilter{Limit: 1})
	if len(rows) != 1 || rows[0].Action != "user.create" {
		t.Errorf("newest audit row on the target: %+v", rows)
	}
}

func TestMigrateToPostgresRefusesANonEmptyTarget(t *testing.T) {
	target := pgtest.URL(t)
	// A dashboard already set up on the target: one admin.
	other := t.TempDir()
	if _, _, err := cli(t, nil, "a long enough password\n", "user", "add", "--data", other, "--database-url", target, "--email", "first@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	addAdmin(t, src)
	before := pgRowCounts(t, target)
	_, _, err := cli(t, nil, "", "migrate-to-postgres", "--data", src, "--database-url", target)
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "users") || !strings.Contains(err.Error(), "nothing was copied") {
		t.Fatalf("migrate-to-postgres into a used database: %v", err)
	}
	if strings.Contains(err.Error(), ":postgres@") {
		t.Errorf("the refusal shows the password: %v", err)
	}
	if after := pgRowCounts(t, target); after != before {
		t.Errorf("the refused copy changed the target: %s, then %s", before, after)
	}
}

// pgRowCounts describes how many rows each of a few tables of the database at u holds.
func pgRowCounts(t *testing.T, u string) string {
	t.Helper()
	d, err := db.OpenPostgres(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var b strings.Builder
	for _, table := range []string{"users", "audit_log", "meta", "events", "api_tokens"} {
		var n int
		if err := d.R.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%d ", table, n)
	}
	return b.String()
}
