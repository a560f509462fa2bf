package db

import (
	"context"
	"errors"
	"fmt"
)

// SQLite's primary result codes for a write that storage refused (the low byte of an extended
// code): the disk, or the database's page limit, is full; the disk failed to read or write.
const (
	sqliteIOErr = 10 // SQLITE_IOERR
	sqliteFull  = 13 // SQLITE_FULL
)

// IsStorageFailure reports whether err is a write that failed for want of storage (disk full,
// the database's size limit reached, an I/O error), as opposed to bad input or a cancelled
// request. Callers answer such a failure with "try again later" and report it in readiness.
func IsStorageFailure(err error) bool {
	var se interface{ Code() int }
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqliteFull, sqliteIOErr:
		return true
	}
	return false
}

// LimitPages caps the database file at its current size plus extra pages (PRAGMA max_page_count
// on the writer connection), so that a test can make real writes fail with SQLITE_FULL without
// filling a disk. Pass a negative extra to lift the cap. Tests only.
func (d *DB) LimitPages(ctx context.Context, extra int64) error {
	var n int64
	if err := d.W.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
		return fmt.Errorf("db: page count: %w", err)
	}
	limit := n + extra
	if extra < 0 {
		limit = 0xfffffffe // SQLite's largest
	}
	if _, err := d.W.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", limit)); err != nil {
		return fmt.Errorf("db: limit pages: %w", err)
	}
	return nil
}
