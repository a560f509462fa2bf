package db

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestToPostgres: each rewrite rule of the dialect layer, and what it must leave alone.
func TestToPostgres(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"SELECT ?2, ?1, ?2", "SELECT $2, $1, $2"},
		{"SELECT '?' , \"a?\" FROM t WHERE x = ?", "SELECT '?' , \"a?\" FROM t WHERE x = $1"},
		{"SELECT 'it''s ?' WHERE x = ?", "SELECT 'it''s ?' WHERE x = $1"},
		{"INSERT OR IGNORE INTO m (a) VALUES (?)", "INSERT INTO m (a) VALUES ($1) ON CONFLICT DO NOTHING"},
		{"INSERT OR IGNORE INTO m (a) VALUES (?) RETURNING id", "INSERT INTO m (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id"},
		{"SELECT id FROM events INDEXED BY events_env WHERE env = ?", "SELECT id FROM events WHERE env = $1"},
		{"SELECT id FROM events NOT INDEXED WHERE id > ?", "SELECT id FROM events WHERE id > $1"},
		{"SELECT 1 WHERE type = 'x' AND +source = 'api'", "SELECT 1 WHERE type = 'x' AND source = 'api'"},
		{"SELECT id + 1 FROM t", "SELECT id + 1 FROM t"},
		{"SELECT json_extract(after, '$.outcome') FROM audit_log", "SELECT (after::jsonb ->> 'outcome') FROM audit_log"},
		{"WHERE instr(lower(actor), lower(?)) > 0", "WHERE strpos(lower(actor), lower($1)) > 0"},
	} {
		if got := toPostgres(tc.in); got != tc.want {
			t.Errorf("toPostgres(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestPostgresArgs: text PostgreSQL cannot hold is kept with U+FFFD in place of what it cannot
// hold, never refused; booleans become 0 and 1; everything else passes as given.
func TestPostgresArgs(t *testing.T) {
	dl := &dialect{postgres: true}
	in := []any{"fine", "a\x00b", "bad \xff utf-8", true, false, int64(7), []byte{0, 0xff}}
	got := dl.args(in)
	want := []any{"fine", "a\uFFFDb", "bad \uFFFD utf-8", int64(1), int64(0), int64(7), []byte{0, 0xff}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("args %q, want %q", got, want)
	}
	if in[1] != "a\x00b" {
		t.Fatal("the caller's arguments were changed in place")
	}
	clean := []any{"a", int64(1)}
	if out := dl.args(clean); &out[0] != &clean[0] {
		t.Error("arguments that need nothing were copied")
	}
	if out := sqliteDialect.args(in); &out[0] != &in[0] {
		t.Error("SQLite's arguments were touched")
	}
}

// TestIsUnavailable: a database that cannot be reached is told from a statement that failed.
func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("syntax error"), false},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{fmt.Errorf("db: ingest: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{ErrNotFound, false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
