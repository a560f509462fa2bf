// Package db is the only place that speaks SQL. It opens the SQLite file with one writer
// connection and a pool of readers, applies the embedded migrations, and offers one file of store
// methods per table.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned by store methods when the row asked for does not exist.
var ErrNotFound = errors.New("db: not found")

// ErrConflict is returned when a write would break a uniqueness rule (for example an email that
// is already taken).
var ErrConflict = errors.New("db: conflict")

// DB holds the writer and the reader pools of one SQLite database file.
//
// NB: every write goes through W, which has exactly one connection, so SQLite never sees two
// writers and "database is locked" cannot happen between our own connections.
//
// On PostgreSQL (OpenPostgres) W and R are the same pool, Path is empty and URL names the
// database without its password.
type DB struct {
	W    *Pool
	R    *Pool
	Path string
	URL  string
	dia  *dialect
	now  func() time.Time
}

// FileName is the name of the SQLite file inside the data directory.
const FileName = "dashboard.db"

// Open opens (creating if needed) the database in dir and applies pending migrations. It refuses a
// database whose schema is newer than this binary knows.
func Open(ctx context.Context, dir string) (*DB, error) {
	return OpenFile(ctx, filepath.Join(dir, FileName))
}

// OpenFile is Open for a database file at any path (restore prepares one beside the live file).
func OpenFile(ctx context.Context, path string) (*DB, error) {
	existing := false
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		existing = true
	}
	// Create the file owner-only before SQLite does (it would use 0644); the WAL and shm files
	// inherit the main file's mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("db: create %s: %w", path, err)
	} else {
		f.Close()
	}
	w, err := openPool(path, 1)
	if err != nil {
		return nil, err
	}
	readers := max(4, runtime.NumCPU()*2)
	r, err := openPool(path, readers)
	if err != nil {
		w.Close()
		return nil, err
	}
	d := &DB{W: &Pool{w, sqliteDialect}, R: &Pool{r, sqliteDialect}, Path: path, dia: sqliteDialect, now: time.Now}
	if existing {
		if err := d.quickCheck(ctx); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := d.migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// quickCheck refuses a damaged database at start, before it can answer ready and then fail
// requests: SQLite's quick_check reads every page and checks its structure.
func (d *DB) quickCheck(ctx context.Context) error {
	rows, err := d.W.QueryContext(ctx, "PRAGMA quick_check(5)")
	if err != nil {
		return fmt.Errorf("db: %s cannot be read (%v); %s", d.Path, err, d.restoreAdvice())
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("db: check %s: %w", d.Path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("db: %s cannot be read (%v); %s", d.Path, err, d.restoreAdvice())
	}
	if len(problems) > 0 {
		return fmt.Errorf("db: %s is damaged (%s); %s", d.Path, strings.Join(problems, "; "), d.restoreAdvice())
	}
	return nil
}

// restoreAdvice says how to replace a database that cannot be used. NB: copying a backup over the
// file by hand is not enough: a write-ahead log left beside it would be replayed into the copy.
func (d *DB) restoreAdvice() string {
	return fmt.Sprintf("restore it from a backup: with the dashboard stopped, run dashboard restore --data %s --from BACKUP_FILE (it keeps this file aside)", filepath.Dir(d.Path))
}

func openPool(path string, conns int) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"busy_timeout(10000)",
		"synchronous(FULL)",
		"foreign_keys(ON)",
		"cache_size(-32000)", // 32 MiB page cache per connection
		"temp_store(MEMORY)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(conns)
	sqldb.SetMaxIdleConns(conns)
	sqldb.SetConnMaxIdleTime(0)
	sqldb.SetConnMaxLifetime(0)
	if err := sqldb.Ping(); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	return sqldb, nil
}

// Close closes both pools.
func (d *DB) Close() error {
	if d.R.DB == d.W.DB {
		return d.W.Close()
	}
	return errors.Join(d.R.Close(), d.W.Close())
}

// Postgres reports whether the database is PostgreSQL rather than a SQLite file.
func (d *DB) Postgres() bool { return d.dia.postgres }

// Where names the database for messages: the SQLite file's path, or the PostgreSQL URL without
// its password.
func (d *DB) Where() string {
	if d.dia.postgres {
		return d.URL
	}
	return d.Path
}

// SetClock replaces the clock used for timestamps (tests only).
func (d *DB) SetClock(now func() time.Time) { d.now = now }

// Now is the database's clock, truncated to milliseconds as stored.
func (d *DB) Now() time.Time { return d.now().UTC().Truncate(time.Millisecond) }

// Ping checks that both pools answer a trivial query.
func (d *DB) Ping(ctx context.Context) error {
	var one int
	if err := d.R.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("db: ping reader: %w", err)
	}
	if err := d.W.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("db: ping writer: %w", err)
	}
	return nil
}

// tx runs fn inside one write transaction on the writer connection.
type txer = *Tx

// NB: when ctx ends, database/sql rolls the transaction back by itself, and a statement or Commit
// that comes after reports sql.ErrTxDone; tx then says that ctx ended, which is what happened,
// so callers (a stop during start-up) recognise a cancellation.
func (d *DB) tx(ctx context.Context, fn func(txer) error) error {
	err := d.tryTx(ctx, fn)
	if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

func (d *DB) tryTx(ctx context.Context, fn func(txer) error) error {
	txCtx := ctx
	if d.dia.postgres {
		// NB: the transaction itself outlives ctx, so that a client going away while COMMIT is on
		// the wire cannot leave a change committed on the server and reported as failed here. A
		// cancelled ctx still stops fn's statements, and is checked once more before COMMIT.
		txCtx = context.WithoutCancel(ctx)
	}
	t, err := d.W.BeginTx(txCtx, nil)
	if err != nil {
		return err
	}
	if d.dia.postgres {
		// Every write transaction of every instance takes one lock first, so writes are
		// serialised as SQLite's single writer serialises them: a read-then-write inside fn sees
		// no concurrent change, and event ids are committed in the order they are assigned.
		if _, err := t.Tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", writerLockKey); err != nil {
			t.Rollback()
			return err
		}
	}
	if err := fn(t); err != nil {
		t.Rollback()
		return err
	}
	if err := ctx.Err(); err != nil && d.dia.postgres {
		t.Rollback()
		return err
	}
	return t.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(t), Valid: true}
}

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "PRIMARY KEY constraint failed")
}

// isUniqueViolationOf reports whether err is a uniqueness violation of table.column (a UNIQUE
// column constraint, named table_column_key on PostgreSQL).
func isUniqueViolationOf(err error, table, column string) bool {
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
		return pe.Code == "23505" && pe.ConstraintName == table+"_"+column+"_key"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: "+table+"."+column)
}
