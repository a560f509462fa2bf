package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the live database to out (which must not exist yet) with
// VACUUM INTO, which reads one snapshot while writers go on, then fsyncs the file and its
// directory so the copy survives a crash right after the command returns.
func (d *DB) Backup(ctx context.Context, out string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	// Create the file owner-only first (VACUUM INTO accepts an empty file), so the copy, which
	// holds sealed secrets and event payloads, is never readable by others, even for a moment.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("db: backup: %s already exists; choose a new file name", abs)
	}
	if err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	f.Close()
	if _, err := d.R.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		os.Remove(abs)
		return fmt.Errorf("db: backup: %w", err)
	}
	if err := syncPath(abs); err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	if err := syncPath(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	return nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
