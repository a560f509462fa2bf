package db

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sign-in state that every instance must see (issue 19): the login lockout's counters, the
// second steps of logins in progress and shared token buckets. Sessions and the setup link have
// tables of their own (sessions.go, setup.go).

// LoginCounter is one counter of the login soft lockout (accounts/lockout.go has the rules).
// Zero times mean none.
type LoginCounter struct {
	Key           []byte
	Failures      int
	Inflight      int       // attempts admitted and not yet ended...
	InflightUntil time.Time // ...trusted until then
	LastFailure   time.Time
	Until         time.Time // no attempt before this
	Reported      bool      // the current lock was answered (and audited) once
	// ForgetAt is when the counter holds nothing worth keeping: a row is purged then, and a
	// counter that is already forgettable is deleted rather than stored.
	ForgetAt time.Time
}

func (c LoginCounter) same(o LoginCounter) bool {
	return c.Failures == o.Failures && c.Inflight == o.Inflight && c.InflightUntil.Equal(o.InflightUntil) &&
		c.LastFailure.Equal(o.LastFailure) && c.Until.Equal(o.Until) && c.Reported == o.Reported && c.ForgetAt.Equal(o.ForgetAt)
}

// msOrZero stores a zero time as 0.
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

func fromMSOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMS(v)
}

// sweepLimit bounds the forgettable rows one write deletes on the side, so no sign-in pays for a
// large purge.
const sweepLimit = 256

// UpdateLoginCounters loads the counters named by keys (a zero counter for a key not stored),
// lets change alter them, and stores what changed, in one write transaction, so instances
// counting the same account at once never lose a count. A counter whose ForgetAt is not after
// now is deleted instead of stored. When a counter is new, up to sweepLimit forgettable rows are
// deleted on the side, and while the table holds more than maxRows, rows other than keys are
// evicted, the least worth keeping first: fewest failures, oldest failure, none in flight.
func (d *DB) UpdateLoginCounters(ctx context.Context, keys [][]byte, now time.Time, maxRows int, change func([]LoginCounter)) error {
	err := d.tx(ctx, func(tx txer) error {
		loaded, found, err := loginCounters(ctx, tx, keys)
		if err != nil {
			return err
		}
		counters := make([]LoginCounter, len(loaded))
		copy(counters, loaded)
		change(counters)
		added := false
		for i, c := range counters {
			stored := found[i]
			switch {
			case stored && c.same(loaded[i]):
			case !c.ForgetAt.After(now):
				if stored {
					if _, err := tx.ExecContext(ctx, "DELETE FROM login_counters WHERE key = ?", keys[i]); err != nil {
						return err
					}
				}
			default:
				added = added || !stored
				if _, err := tx.ExecContext(ctx, `INSERT INTO login_counters (key, failures, inflight, inflight_until, last_failure, locked_until, reported, forget_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, inflight = excluded.inflight,
					inflight_until = excluded.inflight_until, last_failure = excluded.last_failure, locked_until = excluded.locked_until,
					reported = excluded.reported, forget_at = excluded.forget_at`,
					keys[i], c.Failures, c.Inflight, msOrZero(c.InflightUntil), msOrZero(c.LastFailure), msOrZero(c.Until), boolInt(c.Reported), msOrZero(c.ForgetAt)); err != nil {
					return err
				}
			}
		}
		if !added {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM login_counters WHERE key IN (SELECT key FROM login_counters WHERE forget_at <= ? LIMIT ?)", ms(now), sweepLimit); err != nil {
			return err
		}
		return evictLoginCounters(ctx, tx, keys, now, maxRows)
	})
	if err != nil {
		return fmt.Errorf("db: update login counters: %w", err)
	}
	return nil
}

// loginCounters reads the counters of keys, in their order; found says which are stored.
func loginCounters(ctx context.Context, tx txer, keys [][]byte) (out []LoginCounter, found []bool, err error) {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := tx.QueryContext(ctx, `SELECT key, failures, inflight, inflight_until, last_failure, locked_until, reported, forget_at
		FROM login_counters WHERE key IN (?`+strings.Repeat(", ?", len(keys)-1)+`)`, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out, found = make([]LoginCounter, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		out[i].Key = k
	}
	for rows.Next() {
		var c LoginCounter
		var inflightUntil, last, until, forget int64
		var reported int
		if err := rows.Scan(&c.Key, &c.Failures, &c.Inflight, &inflightUntil, &last, &until, &reported, &forget); err != nil {
			return nil, nil, err
		}
		c.InflightUntil, c.LastFailure, c.Until, c.ForgetAt = fromMSOrZero(inflightUntil), fromMSOrZero(last), fromMSOrZero(until), fromMSOrZero(forget)
		c.Reported = reported != 0
		for i, k := range keys {
			if bytes.Equal(k, c.Key) {
				c.Key = k
				out[i], found[i] = c, true
			}
		}
	}
	return out, found, rows.Err()
}

// evictLoginCounters deletes rows other than keep while the table holds more than maxRows.
func evictLoginCounters(ctx context.Context, tx txer, keep [][]byte, now time.Time, maxRows int) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM login_counters").Scan(&n); err != nil {
		return err
	}
	if n <= maxRows {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT key FROM login_counters ORDER BY CASE WHEN inflight > 0 AND inflight_until > ? THEN 1 ELSE 0 END,
		failures, last_failure LIMIT ?`, ms(now), n-maxRows+len(keep))
	if err != nil {
		return err
	}
	var victims [][]byte
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		if !containsKey(keep, k) && len(victims) < n-maxRows {
			victims = append(victims, k)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, k := range victims {
		if _, err := tx.ExecContext(ctx, "DELETE FROM login_counters WHERE key = ?", k); err != nil {
			return err
		}
	}
	return nil
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// CountLoginCounters is how many lockout counters are stored.
func (d *DB) CountLoginCounters(ctx context.Context) (int, error) {
	var n int
	if err := d.R.QueryRowContext(ctx, "SELECT COUNT(*) FROM login_counters").Scan(&n); err != nil {
		return 0, fmt.Errorf("db: count login counters: %w", err)
	}
	return n, nil
}

// InsertPendingLogin stores the second step of a login for userID under the hash of its token.
func (d *DB) InsertPendingLogin(ctx context.Context, tokenHash []byte, userID int64, expires time.Time, codes int) error {
	if _, err := d.W.ExecContext(ctx, "INSERT INTO pending_logins (token_hash, user_id, expires_at, codes_left) VALUES (?, ?, ?, ?)",
		tokenHash, userID, ms(expires), codes); err != nil {
		return fmt.Errorf("db: insert pending login: %w", err)
	}
	return nil
}

// PendingLoginLive reports whether the second step stored under tokenHash can still be finished
// at now: not expired, and codes left.
func (d *DB) PendingLoginLive(ctx context.Context, tokenHash []byte, now time.Time) (bool, error) {
	var one int
	err := d.R.QueryRowContext(ctx, "SELECT 1 FROM pending_logins WHERE token_hash = ? AND expires_at > ? AND codes_left > 0", tokenHash, ms(now)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("db: pending login: %w", err)
	}
	return true, nil
}

// TakePendingLoginCode takes one code from the second step stored under tokenHash, before the
// code is checked, so parallel guesses on any instance cannot pass its budget. It answers the
// user and the codes left after this one; ErrNotFound (and the step is deleted) when the step is
// unknown, expired or out of codes.
func (d *DB) TakePendingLoginCode(ctx context.Context, tokenHash []byte, now time.Time) (userID int64, left int, err error) {
	err = d.W.QueryRowContext(ctx, "UPDATE pending_logins SET codes_left = codes_left - 1 WHERE token_hash = ? AND expires_at > ? AND codes_left > 0 RETURNING user_id, codes_left",
		tokenHash, ms(now)).Scan(&userID, &left)
	if errors.Is(err, sql.ErrNoRows) {
		if err := d.DeletePendingLogin(ctx, tokenHash); err != nil {
			return 0, 0, err
		}
		return 0, 0, ErrNotFound
	}
	if err != nil {
		return 0, 0, fmt.Errorf("db: take pending login code: %w", err)
	}
	return userID, left, nil
}

// DeletePendingLogin ends the second step stored under tokenHash.
func (d *DB) DeletePendingLogin(ctx context.Context, tokenHash []byte) error {
	if _, err := d.W.ExecContext(ctx, "DELETE FROM pending_logins WHERE token_hash = ?", tokenHash); err != nil {
		return fmt.Errorf("db: delete pending login: %w", err)
	}
	return nil
}

// TakeRateToken takes one token at now from the shared bucket key, which holds burst tokens and
// gets one back every every. When none is left it takes nothing and says how long until one is.
// The bucket is kept as the time it is full again (GCRA), which is the same token bucket as
// ratelimit.Limiter's.
func (d *DB) TakeRateToken(ctx context.Context, key string, burst int, every time.Duration, now time.Time) (ok bool, retryAfter time.Duration, err error) {
	err = d.tx(ctx, func(tx txer) error {
		var fullAt int64
		err := tx.QueryRowContext(ctx, "SELECT full_at FROM rate_buckets WHERE key = ?", key).Scan(&fullAt)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		full := now
		if stored := fromMS(fullAt); stored.After(now) {
			full = stored
		}
		if over := full.Sub(now) - time.Duration(burst-1)*every; over > 0 {
			retryAfter = over
			return nil
		}
		ok = true
		_, err = tx.ExecContext(ctx, "INSERT INTO rate_buckets (key, full_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET full_at = excluded.full_at",
			key, ms(full.Add(every)))
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("db: take rate token: %w", err)
	}
	return ok, retryAfter, nil
}

// PurgeSignInState deletes, at most limit rows of each, the sign-in state that has ended by now:
// forgettable lockout counters, expired second steps and full token buckets.
func (d *DB) PurgeSignInState(ctx context.Context, now time.Time, limit int) (int64, error) {
	var total int64
	for _, q := range []string{
		"DELETE FROM login_counters WHERE key IN (SELECT key FROM login_counters WHERE forget_at <= ? LIMIT ?)",
		"DELETE FROM pending_logins WHERE token_hash IN (SELECT token_hash FROM pending_logins WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM rate_buckets WHERE key IN (SELECT key FROM rate_buckets WHERE full_at <= ? LIMIT ?)",
	} {
		res, err := d.W.ExecContext(ctx, q, ms(now), limit)
		if err != nil {
			return total, fmt.Errorf("db: purge sign-in state: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
