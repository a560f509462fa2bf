package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// BeaconKey is one environment's key for beacon tokens, sealed. The current key has no RetiredAt;
// a rotated one still verifies tokens until ValidUntil.
type BeaconKey struct {
	ID         string
	Env        string
	Sealed     string
	CreatedAt  time.Time
	CreatedBy  string
	RetiredAt  time.Time
	ValidUntil time.Time
}

// Verifies reports whether tokens made with the key verify at now.
func (k BeaconKey) Verifies(now time.Time) bool {
	return k.RetiredAt.IsZero() || now.Before(k.ValidUntil)
}

const beaconKeyCols = "id, env, sealed, created_at, created_by, retired_at, valid_until"

func scanBeaconKey(row interface{ Scan(...any) error }) (BeaconKey, error) {
	var k BeaconKey
	var created int64
	var retired, until sql.NullInt64
	if err := row.Scan(&k.ID, &k.Env, &k.Sealed, &created, &k.CreatedBy, &retired, &until); err != nil {
		return BeaconKey{}, err
	}
	k.CreatedAt, k.RetiredAt, k.ValidUntil = fromMS(created), fromNullMS(retired), fromNullMS(until)
	return k, nil
}

// BeaconKeys returns env's current beacon key and the rotated ones still valid at now, the
// current one first.
func (d *DB) BeaconKeys(ctx context.Context, env string, now time.Time) ([]BeaconKey, error) {
	return queryAll(ctx, d.R, "beacon keys", scanBeaconKey, "SELECT "+beaconKeyCols+` FROM beacon_keys
		WHERE env = ? AND (retired_at IS NULL OR valid_until > ?) ORDER BY retired_at IS NOT NULL, created_at DESC`, env, ms(now))
}

// InsertBeaconKey makes k the current beacon key of its environment and audits it (the key id
// only). With overlap zero it is the first key: when the environment has a current key already,
// nothing changes and the answer is ErrConflict (two first starts racing agree on one key).
// Otherwise the current key is retired and keeps verifying for overlap.
func (d *DB) InsertBeaconKey(ctx context.Context, k BeaconKey, overlap time.Duration, a Audit) (BeaconKey, error) {
	now := d.Now()
	k.CreatedAt, k.CreatedBy = now, a.Actor
	err := d.tx(ctx, func(tx txer) error {
		var current sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT id FROM beacon_keys WHERE env = ? AND retired_at IS NULL", k.Env).Scan(&current)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if current.Valid {
			if overlap <= 0 {
				return ErrConflict
			}
			if _, err := tx.ExecContext(ctx, "UPDATE beacon_keys SET retired_at = ?, valid_until = ? WHERE id = ?", ms(now), ms(now.Add(overlap)), current.String); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO beacon_keys (id, env, sealed, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
			k.ID, k.Env, k.Sealed, ms(now), k.CreatedBy); err != nil {
			return err
		}
		a.Target = "environment:" + k.Env
		a.After = map[string]any{"beacon_key": k.ID}
		if current.Valid {
			a.Before = map[string]any{"beacon_key": current.String, "valid_until": now.Add(overlap).UTC().Format(time.RFC3339)}
		}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrConflict) {
		return BeaconKey{}, err
	}
	if err != nil {
		return BeaconKey{}, fmt.Errorf("db: insert beacon key: %w", err)
	}
	return k, nil
}
