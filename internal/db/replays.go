package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ReplayAttempt is one forwarding of a stored webhook to the integrator's backend.
type ReplayAttempt struct {
	ID         int64
	EventID    int64
	At         time.Time
	Target     string
	Status     int // 0 when no answer came
	DurationMS int64
	Error      string
	Actor      string
	RequestID  string
}

// InsertReplayAttempt records one attempt.
func (d *DB) InsertReplayAttempt(ctx context.Context, a ReplayAttempt) error {
	var status sql.NullInt64
	if a.Status > 0 {
		status = sql.NullInt64{Int64: int64(a.Status), Valid: true}
	}
	_, err := d.W.ExecContext(ctx, `INSERT INTO replay_attempts (event_id, at, target, status, duration_ms, error, actor, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.EventID, ms(d.Now()), a.Target, status, a.DurationMS, a.Error, a.Actor, a.RequestID)
	if err != nil {
		return fmt.Errorf("db: insert replay attempt: %w", err)
	}
	return nil
}

// ListReplayAttempts returns the attempts of one event, newest first.
func (d *DB) ListReplayAttempts(ctx context.Context, eventID int64) ([]ReplayAttempt, error) {
	rows, err := d.R.QueryContext(ctx, `SELECT id, event_id, at, target, status, duration_ms, error, actor, request_id
		FROM replay_attempts WHERE event_id = ? ORDER BY id DESC LIMIT 100`, eventID)
	if err != nil {
		return nil, fmt.Errorf("db: list replay attempts: %w", err)
	}
	defer rows.Close()
	var out []ReplayAttempt
	for rows.Next() {
		var a ReplayAttempt
		var at int64
		var status sql.NullInt64
		if err := rows.Scan(&a.ID, &a.EventID, &at, &a.Target, &status, &a.DurationMS, &a.Error, &a.Actor, &a.RequestID); err != nil {
			return nil, fmt.Errorf("db: list replay attempts: %w", err)
		}
		a.At, a.Status = fromMS(at), int(status.Int64)
		out = append(out, a)
	}
	return out, rows.Err()
}
