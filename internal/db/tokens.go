package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Token is an API bearer token. Only its SHA-256 is stored; Prefix (the first characters) lets a
// person tell tokens apart.
type Token struct {
	ID         int64
	Name       string
	Prefix     string
	Scopes     []string
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
	ExpiresAt  time.Time // zero: never
}

// Revoked reports whether the token was revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Expired reports whether the token's expiry has passed at now.
func (t Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

func tokenKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

const tokenCols = "id, name, prefix, scopes, created_by, created_at, last_used_at, revoked_at, expires_at"

func scanToken(row interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var scopes string
	var created int64
	var used, revoked, expires sql.NullInt64
	if err := row.Scan(&t.ID, &t.Name, &t.Prefix, &scopes, &t.CreatedBy, &created, &used, &revoked, &expires); err != nil {
		return Token{}, err
	}
	if scopes != "" {
		t.Scopes = strings.Split(scopes, ",")
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt, t.ExpiresAt = fromMS(created), fromNullMS(used), fromNullMS(revoked), fromNullMS(expires)
	return t, nil
}

// InsertToken stores a new token (by hash) and audits its creation.
func (d *DB) InsertToken(ctx context.Context, secret string, t Token, a Audit) (Token, error) {
	now := d.Now()
	t.CreatedAt = now
	err := d.tx(ctx, func(tx txer) error {
		var err error
		t.ID, err = tx.insertID(ctx, `INSERT INTO api_tokens (name, prefix, hash, scopes, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.Name, t.Prefix, tokenKey(secret), strings.Join(t.Scopes, ","), t.CreatedBy, ms(now), nullMS(t.ExpiresAt))
		if err != nil {
			return err
		}
		a.Target = fmt.Sprintf("token:%d", t.ID)
		a.After = map[string]any{"name": t.Name, "prefix": t.Prefix, "scopes": t.Scopes}
		if !t.ExpiresAt.IsZero() {
			a.After.(map[string]any)["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil {
		return Token{}, fmt.Errorf("db: insert token: %w", err)
	}
	return t, nil
}

// TokenBySecret finds a live (not revoked, not expired) token by its secret value.
func (d *DB) TokenBySecret(ctx context.Context, secret string) (Token, error) {
	t, err := scanToken(d.R.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM api_tokens WHERE hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
		tokenKey(secret), ms(d.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("db: token by secret: %w", err)
	}
	return t, nil
}

// ListTokens returns every token, live ones first, newest first.
func (d *DB) ListTokens(ctx context.Context) ([]Token, error) {
	return queryAll(ctx, d.R, "list tokens", scanToken, "SELECT "+tokenCols+" FROM api_tokens ORDER BY revoked_at IS NOT NULL, id DESC")
}

// TouchToken records that the token was just used. Callers throttle it.
func (d *DB) TouchToken(ctx context.Context, id int64) error {
	if _, err := d.W.ExecContext(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", ms(d.Now()), id); err != nil {
		return fmt.Errorf("db: touch token: %w", err)
	}
	return nil
}

// RevokeToken revokes a token; revoking a revoked token is ErrNotFound.
func (d *DB) RevokeToken(ctx context.Context, id int64, a Audit) (Token, error) {
	now := d.Now()
	var t Token
	err := d.tx(ctx, func(tx txer) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM api_tokens WHERE id = ? AND revoked_at IS NULL", id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE api_tokens SET revoked_at = ? WHERE id = ?", ms(now), id); err != nil {
			return err
		}
		t.RevokedAt = now
		a.Target = fmt.Sprintf("token:%d", id)
		a.Before = map[string]any{"name": t.Name, "revoked": false}
		a.After = map[string]any{"name": t.Name, "revoked": true}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrNotFound) {
		return Token{}, err
	}
	if err != nil {
		return Token{}, fmt.Errorf("db: revoke token: %w", err)
	}
	return t, nil
}
