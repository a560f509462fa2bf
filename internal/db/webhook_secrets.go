package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebhookSecret is one signing secret (whsec_...) of an environment, sealed.
type WebhookSecret struct {
	ID            string
	Env           string
	Sealed        string
	Fingerprint   string
	CreatedAt     time.Time
	CreatedBy     string
	ExpiresAt     time.Time
	RetiredAt     time.Time
	LastMatchedAt time.Time
}

// Active reports whether the secret verifies deliveries at now.
func (s WebhookSecret) Active(now time.Time) bool {
	return s.RetiredAt.IsZero() && (s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt))
}

const whsCols = "id, env, sealed, fingerprint, created_at, created_by, expires_at, retired_at, last_matched_at"

func scanWHS(row interface{ Scan(...any) error }) (WebhookSecret, error) {
	var s WebhookSecret
	var created int64
	var expires, retired, matched sql.NullInt64
	if err := row.Scan(&s.ID, &s.Env, &s.Sealed, &s.Fingerprint, &created, &s.CreatedBy, &expires, &retired, &matched); err != nil {
		return WebhookSecret{}, err
	}
	s.CreatedAt, s.ExpiresAt, s.RetiredAt, s.LastMatchedAt = fromMS(created), fromNullMS(expires), fromNullMS(retired), fromNullMS(matched)
	return s, nil
}

// ListWebhookSecrets returns env's secrets (every environment when env is ""), live ones first,
// newest first.
func (d *DB) ListWebhookSecrets(ctx context.Context, env string) ([]WebhookSecret, error) {
	return queryAll(ctx, d.R, "list webhook secrets", scanWHS, "SELECT "+whsCols+" FROM webhook_secrets WHERE ? = '' OR env = ? ORDER BY retired_at IS NOT NULL, created_at DESC", env, env)
}

// InsertWebhookSecret stores a new signing secret and audits it (fingerprint only).
func (d *DB) InsertWebhookSecret(ctx context.Context, s WebhookSecret, a Audit) (WebhookSecret, error) {
	now := d.Now()
	s.CreatedAt, s.CreatedBy = now, a.Actor
	err := d.tx(ctx, func(tx txer) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM webhook_secrets WHERE env = ? AND fingerprint = ? AND retired_at IS NULL", s.Env, s.Fingerprint).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrConflict
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_secrets (id, env, sealed, fingerprint, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.Env, s.Sealed, s.Fingerprint, ms(now), a.Actor, nullMS(s.ExpiresAt))
		if err != nil {
			return err
		}
		a.Target = "environment:" + s.Env
		a.After = map[string]any{"webhook_secret": s.ID, "fingerprint": s.Fingerprint}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrConflict) {
		return WebhookSecret{}, err
	}
	if err != nil {
		return WebhookSecret{}, fmt.Errorf("db: insert webhook secret: %w", err)
	}
	return s, nil
}

// RetireWebhookSecret stops a secret from verifying deliveries. A retired or unknown id is
// ErrNotFound.
func (d *DB) RetireWebhookSecret(ctx context.Context, env, id string, a Audit) error {
	now := d.Now()
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, "UPDATE webhook_secrets SET retired_at = ? WHERE id = ? AND env = ? AND retired_at IS NULL", ms(now), id, env)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		a.Target = "environment:" + env
		a.Before = map[string]any{"webhook_secret": id, "active": true}
		a.After = map[string]any{"webhook_secret": id, "active": false}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: retire webhook secret: %w", err)
	}
	return nil
}

// TouchWebhookSecret records that the secret just verified a delivery.
func (d *DB) TouchWebhookSecret(ctx context.Context, id string, at time.Time) error {
	if _, err := d.W.ExecContext(ctx, "UPDATE webhook_secrets SET last_matched_at = ? WHERE id = ?", ms(at), id); err != nil {
		return fmt.Errorf("db: touch webhook secret: %w", err)
	}
	return nil
}
