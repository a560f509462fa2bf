package db

import (
	"context"
	"os"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

// The package's tests run on SQLite, then again on PostgreSQL.
func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore makes an empty store on the store under test and returns a function that opens it
// (again, for tests that reopen), and the test's directory.
func newStore(t testing.TB) (open func(context.Context) (*DB, error), dir string) {
	t.Helper()
	dir = t.TempDir()
	url := ""
	if pgtest.Second() {
		url = pgtest.URL(t)
	}
	return func(ctx context.Context) (*DB, error) { return OpenAt(ctx, dir, url) }, dir
}

// sqliteOnly skips a test about the SQLite file itself on the PostgreSQL run.
func sqliteOnly(t testing.TB, why string) {
	t.Helper()
	if pgtest.Second() {
		t.Skipf("SQLite only: %s", why)
	}
}

// TestPostgreSQLIsThereUnderCI: the PostgreSQL tests skip where no server is installed (and
// some run only in the PostgreSQL pass); under CI they must all run, so a missing server fails
// here, and pgtest.Main fails the second pass, rather than CI passing by skipping them.
func TestPostgreSQLIsThereUnderCI(t *testing.T) {
	if os.Getenv("CI") == "" {
		t.Skip("not under CI: the PostgreSQL tests may skip here")
	}
	if err := pgtest.Available(); err != nil {
		t.Fatalf("PostgreSQL is needed under CI: %v", err)
	}
	pgtest.Require(t)
}
