package db

import (
	"context"
	"fmt"
	"time"
)

// CodeLimit is the per-account limit on second-factor codes: Attempts wrong codes in a row lock
// the factor for Lock, each further lock before a right code for twice the one before, at most
// MaxLock.
type CodeLimit struct {
	Attempts      int
	Lock, MaxLock time.Duration
}

// LockFor is how long the lock after n earlier ones lasts.
func (l CodeLimit) LockFor(n int) time.Duration {
	d := l.Lock
	for range n {
		if d >= l.MaxLock/2 {
			return l.MaxLock
		}
		d *= 2
	}
	return min(d, l.MaxLock)
}

// TakeCodeAttempt takes one attempt from the user's second-factor budget at now, before the code
// is checked. It answers the end of the lock, and takes nothing, while the factor is locked or
// when attempts still being checked have used the budget up (then the end is now plus l.Lock).
func (d *DB) TakeCodeAttempt(ctx context.Context, userID int64, l CodeLimit, now time.Time) (lockedUntil time.Time, err error) {
	err = d.tx(ctx, func(tx txer) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO second_factor_limits (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING", userID); err != nil {
			return err
		}
		var failures int
		var until int64
		if err := tx.QueryRowContext(ctx, "SELECT failures, locked_until FROM second_factor_limits WHERE user_id = ?", userID).Scan(&failures, &until); err != nil {
			return err
		}
		switch {
		case until > ms(now):
			lockedUntil = fromMS(until)
			return nil
		case failures >= l.Attempts:
			lockedUntil = now.Add(l.Lock)
			return nil
		}
		_, err := tx.ExecContext(ctx, "UPDATE second_factor_limits SET failures = failures + 1 WHERE user_id = ?", userID)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("db: take code attempt: %w", err)
	}
	return lockedUntil, nil
}

// CodeRefused records that the attempt TakeCodeAttempt took was a wrong code. When it was the
// last of the budget the factor is locked and a (its Action set here) is written, one row per
// lock; it answers the end of that lock, or zero when the factor is not locked.
func (d *DB) CodeRefused(ctx context.Context, userID int64, l CodeLimit, now time.Time, a Audit) (lockedUntil time.Time, err error) {
	err = d.tx(ctx, func(tx txer) error {
		var failures, lockouts int
		var until int64
		if err := tx.QueryRowContext(ctx, "SELECT failures, lockouts, locked_until FROM second_factor_limits WHERE user_id = ?", userID).Scan(&failures, &lockouts, &until); err != nil {
			return err
		}
		if until > ms(now) {
			lockedUntil = fromMS(until) // a parallel attempt locked it already
			return nil
		}
		if failures < l.Attempts {
			return nil
		}
		lock := l.LockFor(lockouts)
		lockedUntil = now.Add(lock)
		if _, err := tx.ExecContext(ctx, "UPDATE second_factor_limits SET failures = 0, lockouts = lockouts + 1, locked_until = ? WHERE user_id = ?",
			ms(lockedUntil), userID); err != nil {
			return err
		}
		a.Action, a.Target = "auth.second_factor_locked", fmt.Sprintf("user:%d", userID)
		a.After = map[string]any{"wrong_codes": failures, "lockout": lockouts + 1, "locked_for_s": int64(lock.Seconds()),
			"locked_until": lockedUntil.UTC().Format(time.RFC3339)}
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("db: code refused: %w", err)
	}
	return lockedUntil, nil
}

// CodeAccepted clears the user's second-factor budget after a right code: wrong codes and earlier
// locks are forgotten.
func (d *DB) CodeAccepted(ctx context.Context, userID int64) error {
	if _, err := d.W.ExecContext(ctx, "UPDATE second_factor_limits SET failures = 0, lockouts = 0 WHERE user_id = ?", userID); err != nil {
		return fmt.Errorf("db: code accepted: %w", err)
	}
	return nil
}
