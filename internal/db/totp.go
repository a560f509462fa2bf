package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// TOTP is a user's second factor: the sealed seed, and whether enrolment was confirmed.
type TOTP struct {
	UserID    int64
	Sealed    string
	CreatedAt time.Time // when the seed was made
	EnabledAt time.Time // zero while enrolment is pending
	LastStep  int64     // the newest 30-second step whose code was accepted
}

// Enabled reports whether the user confirmed enrolment, so logins ask for a code.
func (t TOTP) Enabled() bool { return !t.EnabledAt.IsZero() }

// metaRequireTwoFactor is the meta key of the admins' "everyone uses two-factor" setting.
const metaRequireTwoFactor = "require_two_factor"

// recoveryKey is what a recovery code is stored as: SHA-256 of the user id and the code, so the
// same code of two users never has the same hash.
func recoveryKey(userID int64, code string) []byte {
	h := sha256.New()
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(userID))
	h.Write(id[:])
	h.Write([]byte(code))
	return h.Sum(nil)
}

// TOTPByUser returns a user's second factor, pending or enabled; ErrNotFound when there is none.
func (d *DB) TOTPByUser(ctx context.Context, userID int64) (TOTP, error) {
	t := TOTP{UserID: userID}
	var created int64
	var enabled sql.NullInt64
	err := d.R.QueryRowContext(ctx, "SELECT sealed, created_at, enabled_at, last_step FROM user_totp WHERE user_id = ?", userID).
		Scan(&t.Sealed, &created, &enabled, &t.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return TOTP{}, ErrNotFound
	}
	if err != nil {
		return TOTP{}, fmt.Errorf("db: totp by user: %w", err)
	}
	t.CreatedAt, t.EnabledAt = fromMS(created), fromNullMS(enabled)
	return t, nil
}

// PutPendingTOTP stores a new, unconfirmed seed for the user, made at, replacing an earlier
// unconfirmed one. A user whose second factor is enabled keeps it: that is ErrConflict.
func (d *DB) PutPendingTOTP(ctx context.Context, userID int64, sealed string, at time.Time) error {
	res, err := d.W.ExecContext(ctx, `INSERT INTO user_totp (user_id, sealed, created_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at, last_step = 0
		WHERE user_totp.enabled_at IS NULL`, userID, sealed, ms(at))
	if err != nil {
		return fmt.Errorf("db: put pending totp: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("db: put pending totp: %w", ErrConflict)
	}
	return nil
}

// EnableTOTP confirms the user's pending seed, with step as the step of the code that confirmed
// it (so that code cannot be used again), stores the recovery codes (hashed) and ends every
// session of the user, in one transaction with the audit row. No pending seed is ErrNotFound.
func (d *DB) EnableTOTP(ctx context.Context, userID, step int64, recoveryCodes []string, a Audit) error {
	now := d.Now()
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, "UPDATE user_totp SET enabled_at = ?, last_step = ? WHERE user_id = ? AND enabled_at IS NULL", ms(now), step, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if err := replaceRecoveryCodes(ctx, tx, userID, recoveryCodes); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID); err != nil {
			return err
		}
		a.Target = fmt.Sprintf("user:%d", userID)
		a.After = map[string]any{"recovery_codes": len(recoveryCodes)}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: enable totp: %w", err)
	}
	return nil
}

func replaceRecoveryCodes(ctx context.Context, tx txer, userID int64, codes []string) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM recovery_codes WHERE user_id = ?", userID); err != nil {
		return err
	}
	for _, c := range codes {
		if _, err := tx.ExecContext(ctx, "INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)", userID, recoveryKey(userID, c)); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceRecoveryCodes swaps every recovery code of a user with two-factor on for new ones
// (hashed), with the audit row. A user without two-factor on is ErrNotFound.
func (d *DB) ReplaceRecoveryCodes(ctx context.Context, userID int64, codes []string, a Audit) error {
	err := d.tx(ctx, func(tx txer) error {
		var on bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = ? AND enabled_at IS NOT NULL)", userID).Scan(&on); err != nil {
			return err
		}
		if !on {
			return ErrNotFound
		}
		if err := replaceRecoveryCodes(ctx, tx, userID, codes); err != nil {
			return err
		}
		a.Target = fmt.Sprintf("user:%d", userID)
		a.After = map[string]any{"recovery_codes": len(codes)}
		return insertAudit(ctx, tx, d.Now(), a)
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: replace recovery codes: %w", err)
	}
	return nil
}

// UseTOTPStep records that the code of step was accepted for the user. It reports false when a
// code of that step or a later one was accepted already (a replay), or two-factor is not on.
func (d *DB) UseTOTPStep(ctx context.Context, userID, step int64) (bool, error) {
	res, err := d.W.ExecContext(ctx, "UPDATE user_totp SET last_step = ? WHERE user_id = ? AND enabled_at IS NOT NULL AND last_step < ?", step, userID, step)
	if err != nil {
		return false, fmt.Errorf("db: use totp step: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UseRecoveryCode marks one unused recovery code of the user as used and writes the audit row
// (its After gains "remaining"). It reports false, and writes nothing, when the code is not one
// of the user's unused codes.
func (d *DB) UseRecoveryCode(ctx context.Context, userID int64, code string, a Audit) (bool, error) {
	now := d.Now()
	used := false
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL", ms(now), userID, recoveryKey(userID, code))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		used = true
		left, err := recoveryCodesLeft(ctx, tx, userID)
		if err != nil {
			return err
		}
		after, _ := a.After.(map[string]any)
		if after == nil {
			after = map[string]any{}
		}
		after["remaining"] = left
		a.Target, a.After = fmt.Sprintf("user:%d", userID), after
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil {
		return false, fmt.Errorf("db: use recovery code: %w", err)
	}
	return used, nil
}

func recoveryCodesLeft(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, userID int64) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", userID).Scan(&n)
	return n, err
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (d *DB) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	n, err := recoveryCodesLeft(ctx, d.R, userID)
	if err != nil {
		return 0, fmt.Errorf("db: recovery codes left: %w", err)
	}
	return n, nil
}

// DeleteTOTP removes a user's enabled second factor and recovery codes, with the audit row; with
// endSessions it also ends every session of the user (an admin's reset after a lost phone). A
// user without two-factor on is ErrNotFound and nothing changes.
func (d *DB) DeleteTOTP(ctx context.Context, userID int64, endSessions bool, a Audit) error {
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM user_totp WHERE user_id = ? AND enabled_at IS NOT NULL", userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM recovery_codes WHERE user_id = ?", userID); err != nil {
			return err
		}
		after := map[string]any{"two_factor": false}
		if endSessions {
			res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			after["sessions_ended"] = n
		}
		a.Target = fmt.Sprintf("user:%d", userID)
		a.Before, a.After = map[string]any{"two_factor": true}, after
		return insertAudit(ctx, tx, d.Now(), a)
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: delete totp: %w", err)
	}
	return nil
}

// TwoFactorStatus reports, in one read, whether the user has two-factor on and whether the
// admins require it for everyone.
func (d *DB) TwoFactorStatus(ctx context.Context, userID int64) (enabled, required bool, err error) {
	err = d.R.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = ? AND enabled_at IS NOT NULL),
		COALESCE((SELECT value FROM meta WHERE key = ?), '') = '1'`, userID, metaRequireTwoFactor).Scan(&enabled, &required)
	if err != nil {
		return false, false, fmt.Errorf("db: two-factor status: %w", err)
	}
	return enabled, required, nil
}

// TwoFactorUsers returns the ids of the users who have two-factor on.
func (d *DB) TwoFactorUsers(ctx context.Context) (map[int64]bool, error) {
	out := map[int64]bool{}
	err := eachRow(ctx, d.R, "two-factor users", func(r rowScanner) error {
		var id int64
		err := r.Scan(&id)
		out[id] = true
		return err
	}, "SELECT user_id FROM user_totp WHERE enabled_at IS NOT NULL")
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetTwoFactorRequired turns the admins' requirement on or off, with the audit row. It reports
// false, and writes nothing, when the setting already was so.
func (d *DB) SetTwoFactorRequired(ctx context.Context, on bool, a Audit) (bool, error) {
	changed := false
	err := d.tx(ctx, func(tx txer) error {
		var was bool
		err := tx.QueryRowContext(ctx, "SELECT COALESCE((SELECT value FROM meta WHERE key = ?), '') = '1'", metaRequireTwoFactor).Scan(&was)
		if err != nil || was == on {
			return err
		}
		v := "0"
		if on {
			v = "1"
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", metaRequireTwoFactor, v); err != nil {
			return err
		}
		changed = true
		a.Target = "setting:" + metaRequireTwoFactor
		a.Before, a.After = map[string]any{"required": was}, map[string]any{"required": on}
		return insertAudit(ctx, tx, d.Now(), a)
	})
	if err != nil {
		return false, fmt.Errorf("db: set two-factor requirement: %w", err)
	}
	return changed, nil
}
