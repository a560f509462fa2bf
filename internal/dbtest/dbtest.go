// Package dbtest gives tests a database on the store under test. A package's suite runs once on
// SQLite and, through Main, once more on PostgreSQL (a throwaway cluster from pgtest): the test
// binary runs itself again with DASHBOARD_TEST_STORE=postgres. Tests take their databases from
// New or Open and so run unchanged on both.
package dbtest

import (
	"context"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

// Postgres reports whether this test binary runs on PostgreSQL.
func Postgres() bool { return pgtest.Second() }

// Store is an empty database for one test: a directory for SQLite, a URL for PostgreSQL (in
// which case Dir is still a fresh directory, for the master key and other files).
type Store struct {
	Dir string
	URL string
}

// New makes an empty store for t on the store under test.
func New(t testing.TB) Store {
	t.Helper()
	s := Store{Dir: t.TempDir()}
	if Postgres() {
		tmpl := pgtest.Template(t, "dashboard_template", func(url string) error {
			d, err := db.OpenPostgres(context.Background(), url)
			if err != nil {
				return err
			}
			return d.Close()
		})
		s.URL = pgtest.URLFrom(t, tmpl)
	}
	return s
}

// Open opens (and migrates) the store.
func (s Store) Open(ctx context.Context) (*db.DB, error) {
	return db.OpenAt(ctx, s.Dir, s.URL)
}

// Open opens a fresh database for t, closed when t ends.
func Open(t testing.TB) *db.DB {
	t.Helper()
	d, err := New(t).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// SQLiteOnly skips a test that is about the SQLite file itself (its pragmas, its pages, its
// write-ahead log) when the suite runs on PostgreSQL.
func SQLiteOnly(t testing.TB, why string) {
	t.Helper()
	if Postgres() {
		t.Skipf("SQLite only: %s", why)
	}
}

// Main runs the package's tests on SQLite, then on PostgreSQL (see pgtest.Main). Use it from
// TestMain: func TestMain(m *testing.M) { dbtest.Main(m) }.
func Main(m *testing.M) { pgtest.Main(m) }
