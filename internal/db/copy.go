package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// CopyProgress is how far a copy has come in one table: Done of its Total rows.
type CopyProgress struct {
	Table       string
	Done, Total int64
}

// copyBatch is how many rows pass between two progress reports.
const copyBatch = 1000

// copyTable is one table to copy: its columns as PostgreSQL has them, in order.
type copyTable struct {
	name     string
	cols     []string
	types    []string // PostgreSQL's data_type of each column
	identity []string // columns whose values an identity sequence assigns
}

// CopyToPostgres copies every table of the SQLite database src into the PostgreSQL database dst,
// which must hold no rows at all (ErrTargetNotEmpty otherwise, and nothing is written). Rows are
// copied verbatim (ids, sealed secrets and audit hashes unchanged), streamed table by table
// through COPY, so memory stays bounded whatever the size; parents are copied before the tables
// that refer to them. Afterwards every identity sequence continues after the largest id ever
// assigned (SQLite's AUTOINCREMENT counter included, so an event id is never reused). It all
// happens in one transaction under the writer lock: on any error dst is left as it was.
// progress, when not nil, is called as each table starts, every 1,000 rows and as it ends.
//
// NB: src must not change during the copy; the caller makes sure no dashboard uses it.
func CopyToPostgres(ctx context.Context, src, dst *DB, progress func(CopyProgress)) ([]CopyProgress, error) {
	if src.Postgres() || !dst.Postgres() {
		return nil, errors.New("db: copy: the source must be SQLite and the target PostgreSQL")
	}
	srcVersion, _, err := src.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	dstVersion, err := pgSchemaVersion(ctx, dst.R.DB)
	if err != nil {
		return nil, err
	}
	if srcVersion != dstVersion {
		return nil, fmt.Errorf("db: copy: the SQLite database is at schema version %d but the PostgreSQL one at %d; open both with the same dashboard", srcVersion, dstVersion)
	}
	tables, err := copyPlan(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	if progress == nil {
		progress = func(CopyProgress) {}
	}

	// One connection of each: a read transaction on SQLite (one snapshot) and a write
	// transaction on PostgreSQL, through pgx itself for COPY.
	in, err := src.R.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: copy: %w", err)
	}
	defer in.Close()
	if _, err := in.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, fmt.Errorf("db: copy: %w", err)
	}
	defer in.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	out, err := dst.W.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: copy: %w", err)
	}
	defer out.Close()
	var done []CopyProgress
	err = out.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writerLockKey); err != nil {
			return err
		}
		// The migration seeds both environments; rows nobody has changed since are replaced by
		// the source's (and come back with the rollback if the copy fails).
		if _, err := tx.Exec(ctx, `DELETE FROM environments e WHERE e.updated_at = 0
			AND NOT EXISTS (SELECT 1 FROM env_keys k WHERE k.env = e.name)
			AND NOT EXISTS (SELECT 1 FROM webhook_secrets w WHERE w.env = e.name)`); err != nil {
			return err
		}
		// Checked under the lock, so a dashboard started on dst meanwhile cannot slip rows in.
		if err := dst.checkEmpty(ctx, tx, tables); err != nil {
			return err
		}
		for _, t := range tables {
			p, err := copyOne(ctx, in, tx, t, progress)
			if err != nil {
				return err
			}
			done = append(done, p)
			if err := resetIdentity(ctx, in, tx, t); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		if errors.Is(err, ErrTargetNotEmpty) {
			return nil, err
		}
		return nil, fmt.Errorf("db: copy to %s: %w (nothing was written)", dst.Where(), err)
	}
	return done, nil
}

// ErrTargetNotEmpty is returned by CopyToPostgres when the target database holds rows.
var ErrTargetNotEmpty = errors.New("db: the target database is not empty")

// copyPlan lists the tables to copy, parents before children, and checks that both databases
// have the same tables and columns.
func copyPlan(ctx context.Context, src, dst *DB) ([]copyTable, error) {
	pgTables, err := stringsOf(ctx, dst.R.DB, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname <> 'dashboard_schema' ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	liteTables, err := stringsOf(ctx, src.R.DB, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(pgTables, liteTables) {
		return nil, fmt.Errorf("db: copy: the databases' tables differ (SQLite: %s; PostgreSQL: %s)", strings.Join(liteTables, ", "), strings.Join(pgTables, ", "))
	}
	byName := map[string]*copyTable{}
	for _, name := range pgTables {
		t := &copyTable{name: name}
		rows, err := dst.R.DB.QueryContext(ctx, `SELECT column_name, data_type, is_identity FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, name)
		if err != nil {
			return nil, fmt.Errorf("db: copy: columns of %s: %w", name, err)
		}
		for rows.Next() {
			var col, typ, ident string
			if err := rows.Scan(&col, &typ, &ident); err != nil {
				rows.Close()
				return nil, fmt.Errorf("db: copy: columns of %s: %w", name, err)
			}
			t.cols, t.types = append(t.cols, col), append(t.types, typ)
			if ident == "YES" {
				t.identity = append(t.identity, col)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("db: copy: columns of %s: %w", name, err)
		}
		liteCols, err := stringsOf(ctx, src.R.DB, "SELECT name FROM pragma_table_info(?) ORDER BY name", name)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(liteCols, slices.Sorted(slices.Values(t.cols))) {
			return nil, fmt.Errorf("db: copy: the columns of %s differ (SQLite: %s; PostgreSQL: %s)", name, strings.Join(liteCols, ", "), strings.Join(t.cols, ", "))
		}
		byName[name] = t
	}
	// Parents first: a table is copied once every table its foreign keys point at is.
	parents := map[string][]string{}
	rows, err := dst.R.DB.QueryContext(ctx, `SELECT cl.relname, pa.relname FROM pg_constraint c
		JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pa ON pa.oid = c.confrelid
		WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`)
	if err != nil {
		return nil, fmt.Errorf("db: copy: foreign keys: %w", err)
	}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, fmt.Errorf("db: copy: foreign keys: %w", err)
		}
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("db: copy: foreign keys: %w", err)
	}
	var plan []copyTable
	placed := map[string]bool{}
	for len(plan) < len(pgTables) {
		progressed := false
		for _, name := range pgTables {
			if placed[name] || slices.ContainsFunc(parents[name], func(p string) bool { return !placed[p] }) {
				continue
			}
			plan, placed[name], progressed = append(plan, *byName[name]), true, true
		}
		if !progressed {
			return nil, errors.New("db: copy: the foreign keys between tables form a cycle")
		}
	}
	return plan, nil
}

// checkEmpty returns ErrTargetNotEmpty, naming the tables that hold rows, unless every table of
// the plan is empty.
func (d *DB) checkEmpty(ctx context.Context, tx pgx.Tx, tables []copyTable) error {
	var full []string
	for _, t := range tables {
		var has bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{t.name}.Sanitize()+")").Scan(&has); err != nil {
			return fmt.Errorf("db: copy: look into %s: %w", t.name, err)
		}
		if has {
			full = append(full, t.name)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("%w: %s already holds rows in %s", ErrTargetNotEmpty, d.Where(), strings.Join(full, ", "))
	}
	return nil
}

// copyOne streams one table from SQLite into PostgreSQL with COPY.
func copyOne(ctx context.Context, in *sql.Conn, tx pgx.Tx, t copyTable, progress func(CopyProgress)) (CopyProgress, error) {
	p := CopyProgress{Table: t.name}
	quoted := make([]string, len(t.cols))
	for i, c := range t.cols {
		quoted[i] = `"` + c + `"`
	}
	if err := in.QueryRowContext(ctx, `SELECT count(*) FROM "`+t.name+`"`).Scan(&p.Total); err != nil {
		return p, fmt.Errorf("count %s: %w", t.name, err)
	}
	progress(p)
	rows, err := in.QueryContext(ctx, "SELECT "+strings.Join(quoted, ", ")+` FROM "`+t.name+`"`)
	if err != nil {
		return p, fmt.Errorf("read %s: %w", t.name, err)
	}
	defer rows.Close()
	src := &rowSource{rows: rows, t: t, p: &p, progress: progress, vals: make([]any, len(t.cols)), ptrs: make([]any, len(t.cols))}
	for i := range src.vals {
		src.ptrs[i] = &src.vals[i]
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, src)
	if err != nil {
		return p, fmt.Errorf("copy %s: %w", t.name, err)
	}
	if n != p.Done {
		return p, fmt.Errorf("copy %s: PostgreSQL took %d rows of %d", t.name, n, p.Done)
	}
	progress(p)
	return p, nil
}

// resetIdentity makes each identity sequence of t continue after the largest id SQLite ever
// assigned: the largest copied, or SQLite's AUTOINCREMENT counter when retention removed the
// newest rows.
func resetIdentity(ctx context.Context, in *sql.Conn, tx pgx.Tx, t copyTable) error {
	for _, col := range t.identity {
		var top int64
		if err := tx.QueryRow(ctx, "SELECT coalesce(max("+pgx.Identifier{col}.Sanitize()+"), 0) FROM "+pgx.Identifier{t.name}.Sanitize()).Scan(&top); err != nil {
			return fmt.Errorf("largest %s.%s: %w", t.name, col, err)
		}
		var seq sql.NullInt64
		// NB: sqlite_sequence exists once any AUTOINCREMENT table does; without one, no counter.
		if err := in.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = ?", t.name).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) && !strings.Contains(err.Error(), "no such table") {
			return fmt.Errorf("counter of %s: %w", t.name, err)
		}
		top = max(top, seq.Int64)
		if top == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence($1, $2), $3)", t.name, col, top); err != nil {
			return fmt.Errorf("continue the ids of %s after %d: %w", t.name, top, err)
		}
	}
	return nil
}

// rowSource feeds COPY from SQLite rows, converting each value to what its PostgreSQL column
// takes, one row in memory at a time.
type rowSource struct {
	rows     *sql.Rows
	t        copyTable
	p        *CopyProgress
	progress func(CopyProgress)
	vals     []any
	ptrs     []any
	err      error
}

func (s *rowSource) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	if s.err = s.rows.Scan(s.ptrs...); s.err != nil {
		return false
	}
	for i, v := range s.vals {
		if s.vals[i], s.err = pgValue(v, s.t.types[i]); s.err != nil {
			s.err = fmt.Errorf("row %d, column %s: %w", s.p.Done+1, s.t.cols[i], s.err)
			return false
		}
	}
	if s.p.Done++; s.p.Done%copyBatch == 0 {
		s.progress(*s.p)
	}
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }

func (s *rowSource) Err() error { return errors.Join(s.err, s.rows.Err()) }

// pgValue is a value read from SQLite, whose columns take any type, as PostgreSQL's column type
// typ takes it.
func pgValue(v any, typ string) (any, error) {
	switch typ {
	case "bytea":
		if s, ok := v.(string); ok {
			return []byte(s), nil
		}
	case "text":
		if b, ok := v.([]byte); ok {
			return string(b), nil
		}
	case "bigint", "integer", "smallint":
		switch n := v.(type) {
		case float64:
			if n != math.Trunc(n) || math.IsInf(n, 0) {
				return nil, fmt.Errorf("%v is not a whole number", n)
			}
			return int64(n), nil
		case bool:
			if n {
				return int64(1), nil
			}
			return int64(0), nil
		case string, []byte:
			return nil, fmt.Errorf("text %q where PostgreSQL takes a number", clip(fmt.Sprint(n)))
		}
	}
	return v, nil
}

// clip shortens s for a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// stringsOf runs a query of one text column and returns its values.
func stringsOf(ctx context.Context, q *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("db: copy: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("db: copy: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: copy: %w", err)
	}
	return out, nil
}
