package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is one logged-in browser. The id itself only lives in the cookie; the table keeps its
// SHA-256.
type Session struct {
	UserID     int64
	CreatedAt  time.Time
	LastSeenAt time.Time
	IP         string
	UserAgent  string
}

func sessionKey(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// InsertSession stores a new session under the opaque id.
func (d *DB) InsertSession(ctx context.Context, id string, s Session) error {
	now := d.Now()
	_, err := d.W.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?)`,
		sessionKey(id), s.UserID, ms(now), ms(now), s.IP, s.UserAgent)
	if err != nil {
		return fmt.Errorf("db: insert session: %w", err)
	}
	return nil
}

// SessionByID returns the session stored under id.
func (d *DB) SessionByID(ctx context.Context, id string) (Session, error) {
	var s Session
	var created, seen int64
	err := d.R.QueryRowContext(ctx, `SELECT user_id, created_at, last_seen_at, ip, user_agent FROM sessions WHERE id_hash = ?`, sessionKey(id)).
		Scan(&s.UserID, &created, &seen, &s.IP, &s.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("db: session by id: %w", err)
	}
	s.CreatedAt, s.LastSeenAt = fromMS(created), fromMS(seen)
	return s, nil
}

// TouchSession moves the session's last-seen time to now.
func (d *DB) TouchSession(ctx context.Context, id string) error {
	if _, err := d.W.ExecContext(ctx, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", ms(d.Now()), sessionKey(id)); err != nil {
		return fmt.Errorf("db: touch session: %w", err)
	}
	return nil
}

// DeleteSession ends one session (logout).
func (d *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := d.W.ExecContext(ctx, "DELETE FROM sessions WHERE id_hash = ?", sessionKey(id)); err != nil {
		return fmt.Errorf("db: delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user ("sign out everywhere") and audits it.
func (d *DB) DeleteUserSessions(ctx context.Context, userID int64, a Audit) (int64, error) {
	var n int64
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		a.Target = fmt.Sprintf("user:%d", userID)
		a.After = map[string]any{"sessions_ended": n}
		return insertAudit(ctx, tx, d.Now(), a)
	})
	if err != nil {
		return 0, fmt.Errorf("db: delete user sessions: %w", err)
	}
	return n, nil
}

// CountUserSessions counts the live session rows of a user.
func (d *DB) CountUserSessions(ctx context.Context, userID int64) (int, error) {
	var n int
	if err := d.R.QueryRowContext(ctx, "SELECT count(*) FROM sessions WHERE user_id = ?", userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("db: count sessions: %w", err)
	}
	return n, nil
}

// PurgeSessions deletes sessions idle since before idleCutoff or created before absCutoff.
func (d *DB) PurgeSessions(ctx context.Context, idleCutoff, absCutoff time.Time) (int64, error) {
	res, err := d.W.ExecContext(ctx, "DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?", ms(idleCutoff), ms(absCutoff))
	if err != nil {
		return 0, fmt.Errorf("db: purge sessions: %w", err)
	}
	return res.RowsAffected()
}
