package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Environment is the stored configuration of sandbox or production.
type Environment struct {
	Name            string
	BaseURL         string
	CallbackURL     string
	AppURL          string
	AllowedOrigins  []string
	ReplayURL       string
	Version         int64
	UpdatedAt       time.Time
	UpdatedBy       string
	VerifiedAt      time.Time
	VerifyOutcome   string
	VerifyDetail    string
	VerifyRequestID string
	VerifyBasis     string
}

// Key kinds stored per environment.
const (
	KeyClientToken = "client_token"
	KeyPublic      = "public_key"
	KeySecret      = "secret_key"
)

// KeyKinds lists the key kinds in display order.
var KeyKinds = []string{KeyClientToken, KeyPublic, KeySecret}

// EnvKey is one key value ever set for an environment. Only its sealed form, last four characters
// and fingerprint are stored.
type EnvKey struct {
	ID          int64
	Env         string
	Kind        string
	Sealed      string
	Last4       string
	Fingerprint string
	CreatedAt   time.Time
	CreatedBy   string
	RetiredAt   time.Time
	ExpiresAt   time.Time
}

// Active reports whether the key is the current one of its kind.
func (k EnvKey) Active() bool { return k.RetiredAt.IsZero() }

// Served reports whether the key is still handed to apps at now: the active key, or a rolled key
// within its overlap window.
func (k EnvKey) Served(now time.Time) bool {
	return k.Active() || !k.ExpiresAt.IsZero() && now.Before(k.ExpiresAt)
}

const envCols = `name, base_url, callback_url, app_url, allowed_origins, version, updated_at, updated_by,
	verified_at, verify_outcome, verify_detail, verify_request_id, verify_basis, replay_url`

func scanEnv(row interface{ Scan(...any) error }) (Environment, error) {
	var e Environment
	var origins string
	var updated int64
	var verified sql.NullInt64
	err := row.Scan(&e.Name, &e.BaseURL, &e.CallbackURL, &e.AppURL, &origins, &e.Version, &updated, &e.UpdatedBy,
		&verified, &e.VerifyOutcome, &e.VerifyDetail, &e.VerifyRequestID, &e.VerifyBasis, &e.ReplayURL)
	if err != nil {
		return Environment{}, err
	}
	if err := json.Unmarshal([]byte(origins), &e.AllowedOrigins); err != nil {
		return Environment{}, fmt.Errorf("allowed_origins: %w", err)
	}
	if updated > 0 {
		e.UpdatedAt = fromMS(updated)
	}
	e.VerifiedAt = fromNullMS(verified)
	return e, nil
}

// EnvironmentByName returns one environment (sandbox or production).
func (d *DB) EnvironmentByName(ctx context.Context, name string) (Environment, error) {
	e, err := scanEnv(d.R.QueryRowContext(ctx, "SELECT "+envCols+" FROM environments WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return Environment{}, ErrNotFound
	}
	if err != nil {
		return Environment{}, fmt.Errorf("db: environment %s: %w", name, err)
	}
	return e, nil
}

// ListEnvironments returns sandbox then production.
func (d *DB) ListEnvironments(ctx context.Context) ([]Environment, error) {
	return queryAll(ctx, d.R, "list environments", scanEnv, "SELECT "+envCols+" FROM environments ORDER BY name = 'production', name")
}

const keyCols = "id, env, kind, sealed, last4, fingerprint, created_at, created_by, retired_at, expires_at"

func scanKey(row interface{ Scan(...any) error }) (EnvKey, error) {
	var k EnvKey
	var created int64
	var retired, expires sql.NullInt64
	if err := row.Scan(&k.ID, &k.Env, &k.Kind, &k.Sealed, &k.Last4, &k.Fingerprint, &created, &k.CreatedBy, &retired, &expires); err != nil {
		return EnvKey{}, err
	}
	k.CreatedAt, k.RetiredAt, k.ExpiresAt = fromMS(created), fromNullMS(retired), fromNullMS(expires)
	return k, nil
}

// ListEnvKeys returns the keys of env (every environment when env is ""), active ones first, then
// history newest first.
func (d *DB) ListEnvKeys(ctx context.Context, env string) ([]EnvKey, error) {
	return queryAll(ctx, d.R, "list keys", scanKey, "SELECT "+keyCols+" FROM env_keys WHERE ? = '' OR env = ? ORDER BY retired_at IS NOT NULL, id DESC", env, env)
}

// EnvKeyByID returns one key row.
func (d *DB) EnvKeyByID(ctx context.Context, id int64) (EnvKey, error) {
	k, err := scanKey(d.R.QueryRowContext(ctx, "SELECT "+keyCols+" FROM env_keys WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return EnvKey{}, ErrNotFound
	}
	if err != nil {
		return EnvKey{}, fmt.Errorf("db: key by id: %w", err)
	}
	return k, nil
}

// NewEnvKey is a key value to set, already sealed by the caller.
type NewEnvKey struct {
	Kind        string
	Sealed      string
	Last4       string
	Fingerprint string
	// KeepPreviousUntil, if set, keeps serving the key being replaced until then (rotation
	// overlap); otherwise it stops being served at once.
	KeepPreviousUntil time.Time
}

// EnvChange is a change to one environment; nil fields are left alone.
type EnvChange struct {
	BaseURL        *string
	CallbackURL    *string
	AppURL         *string
	ReplayURL      *string
	AllowedOrigins *[]string
	Keys           []NewEnvKey
}

// Empty reports whether the change changes nothing.
func (c EnvChange) Empty() bool {
	return c.BaseURL == nil && c.CallbackURL == nil && c.AppURL == nil && c.ReplayURL == nil && c.AllowedOrigins == nil && len(c.Keys) == 0
}

// ErrUnchanged is UpdateEnvironment's answer to a change whose every value is the one already
// stored: nothing is written and nothing audited.
var ErrUnchanged = errors.New("db: every value is the one already stored")

// UpdateEnvironment applies c in one transaction: URL fields are replaced, each new key retires
// the active key of its kind (kept in history, served until KeepPreviousUntil if set), the version
// is bumped, and the audit row records before and after with keys as fingerprints.
func (d *DB) UpdateEnvironment(ctx context.Context, name string, c EnvChange, a Audit) (Environment, error) {
	now := d.Now()
	var out Environment
	err := d.tx(ctx, func(tx txer) error {
		before, err := scanEnv(tx.QueryRowContext(ctx, "SELECT "+envCols+" FROM environments WHERE name = ?", name))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		after := before
		bm, am := map[string]any{}, map[string]any{}
		set := func(field string, dst *string, v *string) {
			if v != nil && *v != *dst {
				bm[field], am[field] = *dst, *v
				*dst = *v
			}
		}
		set("base_url", &after.BaseURL, c.BaseURL)
		set("callback_url", &after.CallbackURL, c.CallbackURL)
		set("app_url", &after.AppURL, c.AppURL)
		set("replay_url", &after.ReplayURL, c.ReplayURL)
		if c.AllowedOrigins != nil && !slices.Equal(before.AllowedOrigins, *c.AllowedOrigins) {
			bm["allowed_origins"], am["allowed_origins"] = before.AllowedOrigins, *c.AllowedOrigins
			after.AllowedOrigins = *c.AllowedOrigins
		}
		if len(bm) == 0 && len(am) == 0 && len(c.Keys) == 0 {
			out = before
			return ErrUnchanged // no write, no new version, no audit row
		}
		for _, k := range c.Keys {
			old, err := scanKey(tx.QueryRowContext(ctx, "SELECT "+keyCols+" FROM env_keys WHERE env = ? AND kind = ? AND retired_at IS NULL", name, k.Kind))
			switch {
			case errors.Is(err, sql.ErrNoRows):
				bm[k.Kind] = nil
			case err != nil:
				return err
			default:
				bm[k.Kind] = map[string]string{"last4": old.Last4, "fingerprint": old.Fingerprint}
				if _, err := tx.ExecContext(ctx, "UPDATE env_keys SET retired_at = ?, expires_at = ? WHERE id = ?", ms(now), nullMS(k.KeepPreviousUntil), old.ID); err != nil {
					return err
				}
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO env_keys (env, kind, sealed, last4, fingerprint, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				name, k.Kind, k.Sealed, k.Last4, k.Fingerprint, ms(now), a.Actor)
			if err != nil {
				return err
			}
			kv := map[string]string{"last4": k.Last4, "fingerprint": k.Fingerprint}
			if !k.KeepPreviousUntil.IsZero() {
				am[k.Kind+"_previous_served_until"] = k.KeepPreviousUntil.UTC().Format(time.RFC3339)
			}
			am[k.Kind] = kv
		}
		origins, err := json.Marshal(after.AllowedOrigins)
		if err != nil {
			return err
		}
		if after.AllowedOrigins == nil {
			origins = []byte("[]")
		}
		after.Version = before.Version + 1
		after.UpdatedAt, after.UpdatedBy = now, a.Actor
		_, err = tx.ExecContext(ctx, `UPDATE environments SET base_url = ?, callback_url = ?, app_url = ?, replay_url = ?, allowed_origins = ?,
			version = ?, updated_at = ?, updated_by = ? WHERE name = ?`,
			after.BaseURL, after.CallbackURL, after.AppURL, after.ReplayURL, string(origins), after.Version, ms(now), a.Actor, name)
		if err != nil {
			return err
		}
		a.Target = "environment:" + name
		a.Before, a.After = bm, am
		out = after
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrNotFound) {
		return Environment{}, err
	}
	if errors.Is(err, ErrUnchanged) {
		return out, err
	}
	if err != nil {
		return Environment{}, fmt.Errorf("db: update environment: %w", err)
	}
	return out, nil
}

// Verification is the outcome of calling Tensfer with an environment's configuration.
type Verification struct {
	Outcome   string
	Detail    string
	RequestID string
	Basis     string // what was verified (base URL and key fingerprints), to tell when it goes stale
}

// RecordVerification stores the last verification of env and audits it.
func (d *DB) RecordVerification(ctx context.Context, env string, v Verification, a Audit) error {
	now := d.Now()
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, `UPDATE environments SET verified_at = ?, verify_outcome = ?, verify_detail = ?, verify_request_id = ?, verify_basis = ?
			WHERE name = ?`, ms(now), v.Outcome, v.Detail, v.RequestID, v.Basis, env)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		a.Target = "environment:" + env
		a.After = map[string]any{"outcome": v.Outcome, "request_id": v.RequestID, "detail": v.Detail}
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil {
		return fmt.Errorf("db: record verification: %w", err)
	}
	return nil
}
