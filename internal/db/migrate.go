package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("db: migration %q must start with a number and an underscore", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("db: migrations must be numbered 1..N without gaps; %s is number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// KnownSchemaVersion is the newest schema version this binary knows: the number of its
// migrations. A database at a higher version is refused.
func KnownSchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// SchemaVersion reports the schema version of the open database and the newest this binary knows.
func (d *DB) SchemaVersion(ctx context.Context) (current, known int, err error) {
	ms, err := loadMigrations()
	if err != nil {
		return 0, 0, err
	}
	if d.dia.postgres {
		current, err = pgSchemaVersion(ctx, d.R)
		return current, len(ms), err
	}
	if err := d.W.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return 0, 0, fmt.Errorf("db: read schema version: %w", err)
	}
	return current, len(ms), nil
}

// migrate applies every pending migration, each in its own transaction that also bumps
// PRAGMA user_version, so a crash leaves the schema at a whole version.
func (d *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	var current int
	if err := d.W.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("db: read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("db: database schema version %d is newer than this binary supports (%d); run a newer dashboard or restore a backup", current, len(ms))
	}
	for _, m := range ms[current:] {
		err := d.tx(ctx, func(tx txer) error {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return fmt.Errorf("db: apply migration %s: %w", m.name, err)
		}
	}
	return nil
}
