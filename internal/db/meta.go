package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Meta returns the value of an instance metadata key.
func (d *DB) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := d.R.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("db: meta %s: %w", key, err)
	}
	return v, nil
}

// SetMeta sets an instance metadata key.
func (d *DB) SetMeta(ctx context.Context, key, value string) error {
	_, err := d.W.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)
	if err != nil {
		return fmt.Errorf("db: set meta %s: %w", key, err)
	}
	return nil
}
