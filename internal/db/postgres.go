package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Advisory lock keys, one number space per database. They are arbitrary constants that nothing
// else in a dashboard's database uses.
const (
	writerLockKey  int64 = 0x7465_6e73_0001 // every write transaction (transaction level)
	migrateLockKey int64 = 0x7465_6e73_0002 // applying migrations (session level)
	// LeaderLockKey is held, at session level, by the one instance that runs the schedulers.
	LeaderLockKey int64 = 0x7465_6e73_0003
)

//go:embed migrations/postgres/*.sql
var pgMigrationFS embed.FS

// IsPostgresURL reports whether s names a PostgreSQL database (postgres:// or postgresql://).
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// RedactURL is a PostgreSQL URL fit for a log line or a message: the password is replaced by
// xxxxx. A string that does not parse is replaced as a whole.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	return u.Redacted()
}

// PostgresPoolSize is the most connections one instance opens to PostgreSQL.
const PostgresPoolSize = 16

// OpenPostgres connects to the PostgreSQL database at rawURL (postgres://user:pass@host:port/db)
// and applies pending migrations under an advisory lock, so that several instances started at
// once migrate exactly once. It refuses a database whose schema is newer than this binary knows.
func OpenPostgres(ctx context.Context, rawURL string) (*DB, error) {
	where := RedactURL(rawURL)
	// NB: pgx's own errors show the URL with its password as xxxxx, so they may be quoted.
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("db: %s is not a PostgreSQL URL this dashboard can use (%v); the form is postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require", where, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "tensfer-dashboard"
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(PostgresPoolSize)
	pool.SetMaxIdleConns(PostgresPoolSize)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	dia := &dialect{postgres: true}
	p := &Pool{pool, dia}
	d := &DB{W: p, R: p, URL: where, dia: dia, now: time.Now}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var version string
	if err := pool.QueryRowContext(pctx, "SHOW server_version_num").Scan(&version); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: cannot reach PostgreSQL at %s: %s", where, err)
	}
	if n, _ := strconv.Atoi(version); n > 0 && n < 130000 {
		pool.Close()
		return nil, fmt.Errorf("db: PostgreSQL at %s is version %d.%d; this dashboard needs 13 or later", where, n/10000, n%10000)
	}
	if err := d.migratePostgres(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

type pgMigration struct {
	version int
	name    string
	sql     string
}

// loadPostgresMigrations reads the PostgreSQL migrations. They start at the schema version the
// PostgreSQL store was introduced at (one baseline file that creates that version's schema) and
// go on one per version, numbered as the SQLite ones are, so a version means the same schema on
// both.
func loadPostgresMigrations() ([]pgMigration, error) {
	entries, err := fs.ReadDir(pgMigrationFS, "migrations/postgres")
	if err != nil {
		return nil, err
	}
	var ms []pgMigration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("db: migration %q must start with a number and an underscore", e.Name())
		}
		b, err := pgMigrationFS.ReadFile("migrations/postgres/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, pgMigration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if i > 0 && m.version != ms[i-1].version+1 {
			return nil, fmt.Errorf("db: PostgreSQL migrations must be numbered without gaps; %s follows %s", m.name, ms[i-1].name)
		}
	}
	if len(ms) == 0 || ms[len(ms)-1].version != KnownSchemaVersion() {
		return nil, errors.New("db: the PostgreSQL migrations do not reach the schema version of the SQLite ones")
	}
	return ms, nil
}

// migratePostgres applies the pending PostgreSQL migrations while holding a session-level
// advisory lock on one connection, so that of several instances starting at once one migrates
// and the others wait, then find the schema current.
func (d *DB) migratePostgres(ctx context.Context) error {
	ms, err := loadPostgresMigrations()
	if err != nil {
		return err
	}
	conn, err := d.W.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("db: migrate: wait for the migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey)
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS dashboard_schema (version INTEGER NOT NULL)"); err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	current, err := pgSchemaVersion(ctx, conn)
	if err != nil {
		return err
	}
	known := ms[len(ms)-1].version
	if current > known {
		return fmt.Errorf("db: database schema version %d is newer than this binary supports (%d); run a newer dashboard", current, known)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if current == 0 && m.version != ms[0].version {
			return fmt.Errorf("db: migrate: an empty database starts at %s", ms[0].name)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("db: apply migration %s: %w", m.name, err)
		}
		_, err = tx.ExecContext(ctx, m.sql)
		if err == nil {
			_, err = tx.ExecContext(ctx, "DELETE FROM dashboard_schema")
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, "INSERT INTO dashboard_schema (version) VALUES ($1)", m.version)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		if err != nil {
			return fmt.Errorf("db: apply migration %s: %w", m.name, err)
		}
		current = m.version
	}
	return nil
}

func pgSchemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(version) FROM dashboard_schema").Scan(&v); err != nil {
		return 0, fmt.Errorf("db: read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// OpenAt opens the dashboard's database: PostgreSQL when databaseURL is set, else the SQLite file
// in dir.
func OpenAt(ctx context.Context, dir, databaseURL string) (*DB, error) {
	if databaseURL != "" {
		return OpenPostgres(ctx, databaseURL)
	}
	return Open(ctx, dir)
}

// IsUnavailable reports whether err says the database could not be reached or went away (a
// refused or broken connection, a server shutting down or starting up, a connect timeout), as
// opposed to a statement that failed. The change was not made: callers answer "try again later"
// (503 with Retry-After) so that a sender delivers again. Only PostgreSQL, a server, can be
// unavailable; a SQLite file cannot.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: admin or crash shutdown, cannot connect
		// now; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	if ce := (*pgconn.ConnectError)(nil); errors.As(err, &ce) {
		return true
	}
	if errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "conn closed") || strings.Contains(s, "unexpected EOF") || strings.Contains(s, "connection reset")
}
