// Package dbtest gives tests a database on the store under test. A package's suite runs once on
// SQLite and, through Main, once more on PostgreSQL (a throwaway cluster from pgtest): the test
// binary runs itself again with DASHBOARD_TEST_STORE=postgres. Tests take their databases from
// New or Open and so run unchanged on both.
package dbtest

import (
	"context"
	"fmt"
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

// Tables lists the database's tables by name, on either store.
func Tables(t testing.TB, d *db.DB) []string {
	t.Helper()
	list := "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
	if d.Postgres() {
		list = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
	}
	rows, err := d.R.Query(list)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	return tables
}

// EachRow hands every row of table to each, with the column names (vals is reused between rows).
func EachRow(t testing.TB, d *db.DB, table string, each func(cols []string, vals []any)) {
	t.Helper()
	rows, err := d.R.Query(`SELECT * FROM "` + table + `"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		each(cols, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// StoredRows is every row of every table of the database, one string each ("table NAME" then
// column=value lines; blobs as their bytes), for tests that check what is stored at rest on
// PostgreSQL, whose files are not the test's to read.
func StoredRows(t testing.TB, d *db.DB) []string {
	t.Helper()
	var out []string
	for _, table := range Tables(t, d) {
		EachRow(t, d, table, func(cols []string, vals []any) {
			line := "table " + table + "\n"
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				line += fmt.Sprintf("%s=%v\n", cols[i], v)
			}
			out = append(out, line)
		})
	}
	return out
}
