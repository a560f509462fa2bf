package db

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// ErrSetupUsed is returned when a setup link was already used, expired, or never existed.
var ErrSetupUsed = errors.New("db: this setup link is no longer valid")

func setupKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ReplaceSetupToken stores a new one-time setup token valid for ttl and drops every unused older
// one, so only the link printed last works.
func (d *DB) ReplaceSetupToken(ctx context.Context, secret string, ttl time.Duration) error {
	now := d.Now()
	err := d.tx(ctx, func(tx txer) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM setup_tokens WHERE used_at IS NULL"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO setup_tokens (hash, created_at, expires_at) VALUES (?, ?, ?)",
			setupKey(secret), ms(now), ms(now.Add(ttl)))
		return err
	})
	if err != nil {
		return fmt.Errorf("db: replace setup token: %w", err)
	}
	return nil
}

// SetupTokenValid reports whether secret is an unused, unexpired setup token and no user exists.
func (d *DB) SetupTokenValid(ctx context.Context, secret string) (bool, error) {
	var n int
	err := d.R.QueryRowContext(ctx, `SELECT count(*) FROM setup_tokens WHERE hash = ? AND used_at IS NULL AND expires_at > ?
		AND NOT EXISTS (SELECT 1 FROM users)`, setupKey(secret), ms(d.Now())).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("db: check setup token: %w", err)
	}
	return n == 1, nil
}

// CompleteSetup uses the setup token and creates the first admin in one transaction, so the link
// works exactly once even when two browsers race.
func (d *DB) CompleteSetup(ctx context.Context, secret string, u User, a Audit) (User, error) {
	now := d.Now()
	u.Role = RoleAdmin
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = now, now, now
	err := d.tx(ctx, func(tx txer) error {
		var users int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&users); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE setup_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?",
			ms(now), setupKey(secret), ms(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 || users > 0 {
			return ErrSetupUsed
		}
		u.ID, err = tx.insertID(ctx, `INSERT INTO users (email, name, role, password_hash, created_at, updated_at, password_changed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, u.Email, u.Name, u.Role, u.PasswordHash, ms(now), ms(now), ms(now))
		if err != nil {
			return err
		}
		a.Target = fmt.Sprintf("user:%d", u.ID)
		a.After = map[string]any{"email": u.Email, "name": u.Name, "role": u.Role}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrSetupUsed) {
		return User{}, err
	}
	if err != nil {
		return User{}, fmt.Errorf("db: complete setup: %w", err)
	}
	return u, nil
}
