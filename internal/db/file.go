package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// FileCheck is what CheckFile learns about a database file.
type FileCheck struct {
	Schema int // the file's schema version (PRAGMA user_version)
	Known  int // the newest schema version this binary knows
}

// CheckFile checks a database file that nothing else has open, such as a backup about to be
// restored, without migrating or otherwise changing it: it must be a SQLite database that passes
// the full PRAGMA integrity_check and holds exactly the schema this binary creates at the file's
// version (every table, index, trigger and view, by name and definition; a *SchemaError names
// what differs), so that nothing a backup brings runs once it is restored. A write-ahead log
// beside the file (path + "-wal") is read as part of it. Whether its schema is too new is the caller's
// decision: the versions are in the result.
func CheckFile(ctx context.Context, path string) (FileCheck, error) {
	var fc FileCheck
	ms, err := loadMigrations()
	if err != nil {
		return fc, err
	}
	fc.Known = len(ms)
	if _, err := os.Stat(path); err != nil {
		return fc, fmt.Errorf("db: check: %w", err)
	}
	conn, err := openPlain(path)
	if err != nil {
		return fc, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "PRAGMA integrity_check(10)")
	if err != nil {
		return fc, fmt.Errorf("db: not a readable SQLite database (%v)", err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return fc, fmt.Errorf("db: check: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fc, fmt.Errorf("db: damaged (%v)", err)
	}
	if len(problems) > 0 {
		return fc, fmt.Errorf("db: damaged (integrity_check: %s)", strings.Join(problems, "; "))
	}
	var tables int
	err = conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('meta', 'audit_log', 'users')").Scan(&tables)
	if err != nil {
		return fc, fmt.Errorf("db: check: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&fc.Schema); err != nil {
		return fc, fmt.Errorf("db: read schema version: %w", err)
	}
	if tables != 3 || fc.Schema == 0 {
		return fc, errors.New("db: a SQLite database, but not the dashboard's (no users, meta and audit_log tables)")
	}
	if fc.Schema > fc.Known {
		return fc, nil // the caller refuses it as newer; this binary cannot say what that schema is
	}
	return fc, schemaDiff(ctx, conn, fc.Schema)
}

// CheckpointFile moves everything in the write-ahead log of the database at path into the file
// itself and empties the log, so the file alone holds the whole database. Nothing else may have
// the database open.
func CheckpointFile(ctx context.Context, path string) error {
	conn, err := openPlain(path)
	if err != nil {
		return err
	}
	return errors.Join(checkpoint(ctx, conn), conn.Close())
}

// Checkpoint is CheckpointFile for an open database; call it just before Close.
func (d *DB) Checkpoint(ctx context.Context) error {
	if d.dia.postgres {
		return nil // no write-ahead log file of ours to fold in
	}
	return checkpoint(ctx, d.W.DB)
}

func checkpoint(ctx context.Context, conn *sql.DB) error {
	var busy, logPages, moved int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &moved); err != nil {
		return fmt.Errorf("db: checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("db: checkpoint: another connection holds the database")
	}
	return nil
}

// openPlain opens one connection to an existing file with no pragma that would change it.
func openPlain(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	conn, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	conn.SetMaxOpenConns(1)
	return conn, nil
}
