package db

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// schemaObject is one row of sqlite_schema: a table, index, trigger or view, with the statement
// that made it (empty for the indexes SQLite makes itself for UNIQUE and PRIMARY KEY).
type schemaObject struct {
	Type, Name, Table, SQL string
}

func (o schemaObject) key() string { return o.Type + " " + o.Name }

// SchemaError says how a database's schema differs from the one this binary creates at the same
// version: objects it does not create (a trigger, a view, an index), objects it creates that are
// missing, and objects defined otherwise.
type SchemaError struct {
	Version     int      // the schema version compared at
	Differences []string // one sentence per object, sorted by kind and name
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("db: the schema is not the one this dashboard creates at version %d: %s", e.Version, strings.Join(e.Differences, "; "))
}

// readSchema is every object of the database behind q, by kind and name.
func readSchema(ctx context.Context, q querier) (map[string]schemaObject, error) {
	out := map[string]schemaObject{}
	err := eachRow(ctx, q, "read schema", func(r rowScanner) error {
		var o schemaObject
		if err := r.Scan(&o.Type, &o.Name, &o.Table, &o.SQL); err != nil {
			return err
		}
		out[o.key()] = o
		return nil
	}, "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema")
	return out, err
}

// expectedSchema is the schema a fresh database has after this binary's migrations 1 to version,
// built in memory.
func expectedSchema(ctx context.Context, version int) (map[string]schemaObject, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	if version < 0 || version > len(ms) {
		return nil, fmt.Errorf("db: no schema version %d (this dashboard knows 1 to %d)", version, len(ms))
	}
	mem, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		return nil, fmt.Errorf("db: reference schema: %w", err)
	}
	defer mem.Close()
	mem.SetMaxOpenConns(1) // every connection to :memory: is a database of its own
	for _, m := range ms[:version] {
		if _, err := mem.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("db: reference schema: migration %s: %w", m.name, err)
		}
	}
	return readSchema(ctx, mem)
}

// schemaDiff compares the schema of the database behind q with the one this binary creates at
// version, and returns a *SchemaError naming every difference, or nil when there is none. Every
// table, index, trigger and view counts, compared by name, table and defining statement: an added
// trigger runs on every write, an added view or a changed index changes what queries see.
func schemaDiff(ctx context.Context, q querier, version int) error {
	want, err := expectedSchema(ctx, version)
	if err != nil {
		return err
	}
	got, err := readSchema(ctx, q)
	if err != nil {
		return err
	}
	type diff struct {
		o    schemaObject
		text string
	}
	var diffs []diff
	for k, g := range got {
		if g.Type == "table" && strings.HasPrefix(g.Name, "sqlite_stat") {
			continue // ANALYZE's statistics (an operator may run it): data for the planner, never code
		}
		w, ok := want[k]
		switch {
		case !ok:
			diffs = append(diffs, diff{g, fmt.Sprintf("it has %s that this dashboard does not create: %s", describe(g), clipSQL(g.SQL))})
		case g != w:
			diffs = append(diffs, diff{g, fmt.Sprintf("%s is defined as %s instead of %s", describe(g), clipSQL(g.SQL), clipSQL(w.SQL))})
		}
	}
	for k, w := range want {
		if _, ok := got[k]; !ok {
			diffs = append(diffs, diff{w, fmt.Sprintf("it lacks %s, which this dashboard creates", describe(w))})
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.SortFunc(diffs, func(a, b diff) int {
		return cmp.Or(cmp.Compare(a.o.Type, b.o.Type), cmp.Compare(a.o.Name, b.o.Name))
	})
	e := &SchemaError{Version: version}
	for _, d := range diffs {
		e.Differences = append(e.Differences, d.text)
	}
	return e
}

// describe names a schema object for a message: "trigger promote (on sessions)".
func describe(o schemaObject) string {
	if o.Type == "table" || o.Table == o.Name || o.Table == "" {
		return fmt.Sprintf("%s %s", o.Type, o.Name)
	}
	return fmt.Sprintf("%s %s (on %s)", o.Type, o.Name, o.Table)
}

// clipSQL is a defining statement on one line, cut short for a message.
func clipSQL(s string) string {
	if s == "" {
		return "(made by SQLite itself)"
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return "`" + s + "`"
}

// CheckSchema compares the open database's schema with the one this binary creates at its
// version, as a start does before it serves: a database file swapped in behind the dashboard's
// back with a trigger or view of its own is refused. The error is a *SchemaError.
//
// On PostgreSQL it checks nothing: nobody swaps a PostgreSQL database in as a file, the
// dashboard's role owns its schema, and migrations run under a lock at every start.
func (d *DB) CheckSchema(ctx context.Context) error {
	if d.dia.postgres {
		return nil
	}
	current, _, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	return schemaDiff(ctx, d.R, current)
}
