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
	if _, err := os.Stat(abs); err == nil {
		return fmt.Errorf("db: backup: %s already exists; choose a new file name", abs)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("db: backup: %w", err)
	}
	if _, err := d.R.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	if err := os.Chmod(abs, 0o600); err != nil {
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
