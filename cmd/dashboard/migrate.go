package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// migrateToPostgres copies the SQLite dashboard in --data into the empty PostgreSQL database at
// --database-url, for a move to several instances. The data directory's lock is held throughout,
// so no dashboard can write to the SQLite file meanwhile (a running one is named, to be stopped
// first). The source opens as a start would (its master key checked, its schema migrated to this
// binary's), the target is migrated to the same version, then every row is copied in one
// transaction (see db.CopyToPostgres): a target holding any row is refused, and a failed copy
// leaves it as it was. The SQLite file is left in place, untouched by the copy.
func migrateToPostgres(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	f := newFlags("migrate-to-postgres", stderr, getenv)
	st.bind(f)
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if st.url == "" {
		return usageError{"--database-url (or DASHBOARD_DATABASE_URL) is required: the empty PostgreSQL database to copy into, e.g. postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require"}
	}
	if !databasePresent(st.dir) {
		return usageError{fmt.Sprintf("%s holds no dashboard database (%s is missing or empty); give the data directory of the SQLite dashboard to copy with --data", st.dir, filepath.Join(st.dir, db.FileName))}
	}
	release, err := takeDataDir(st.dir, "copying its database to PostgreSQL (what it wrote meanwhile would be left behind)")
	if err != nil {
		return err
	}
	defer release()
	key, err := masterKeyFromEnv(getenv)
	if err != nil {
		return err
	}
	src, box, _, err := openData(ctx, st.dir, "", key, "")
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := db.OpenPostgres(ctx, st.url)
	if err != nil {
		return err
	}
	defer dst.Close()

	var last time.Time
	report := func(p db.CopyProgress) {
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(stdout, "copying %s: %d of %d rows\n", p.Table, p.Done, p.Total)
		}
	}
	tables, err := db.CopyToPostgres(ctx, src, dst, report)
	if errors.Is(err, db.ErrTargetNotEmpty) {
		return fmt.Errorf("%w; nothing was copied. Copy into a new, empty database (createdb), not one a dashboard has started on; to start over, drop that database and create it again", err)
	}
	if err != nil {
		return err
	}
	var rows int64
	for _, t := range tables {
		rows += t.Done
	}
	// The copy carries the master key's check value: the target opens with the source's key only.
	if err := secrets.CheckMasterKey(ctx, dst, box); err != nil {
		return fmt.Errorf("copied, but %w", err)
	}
	if err := dst.InsertAudit(ctx, db.Audit{Actor: "cli", Action: "database.migrate", Target: "database:" + dst.Where(),
		After: map[string]any{"from": absPath(src.Path), "tables": len(tables), "rows": rows}}); err != nil {
		return fmt.Errorf("copied, but could not audit the copy: %w", err)
	}
	fmt.Fprintf(stdout, "copied %d rows in %d tables from %s to %s\n", rows, len(tables), src.Path, dst.Where())
	fmt.Fprintf(stdout, "secrets stay sealed under master key %s: start every instance with --database-url and that key (%s, or DASHBOARD_MASTER_KEY_FILE); %s is left as it was\n",
		box.KeyID(), filepath.Join(st.dir, secrets.KeyFileName), src.Path)
	return nil
}
