package db

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Audit describes who made a change and from where. Store methods that mutate take one and write
// the audit row in the same transaction as the change, so a change is never unaudited.
// Before and After must already have secrets redacted (fingerprints only).
type Audit struct {
	Actor     string // "user:3 (ana@example.com)", "token:7 (deploy-bot)", "cli", "system"
	Action    string // "user.create", "token.revoke", ...
	Target    string
	Before    any
	After     any
	IP        string
	RequestID string
}

// AuditEntry is one stored audit row.
type AuditEntry struct {
	ID        int64
	At        time.Time
	Actor     string
	Action    string
	Target    string
	Before    json.RawMessage
	After     json.RawMessage
	IP        string
	RequestID string
}

func marshalOrNull(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func insertAudit(ctx context.Context, tx txer, at time.Time, a Audit) error {
	if a.Actor == "" || a.Action == "" {
		return fmt.Errorf("audit row needs an actor and an action")
	}
	before, err := marshalOrNull(a.Before)
	if err != nil {
		return fmt.Errorf("audit before: %w", err)
	}
	after, err := marshalOrNull(a.After)
	if err != nil {
		return fmt.Errorf("audit after: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, action, target, before, after, ip, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ms(at), a.Actor, a.Action, a.Target, before, after, a.IP, a.RequestID)
	return err
}

// InsertAudit writes a stand-alone audit row, for actions that change nothing else in the
// database (a login, a backup, a reveal).
func (d *DB) InsertAudit(ctx context.Context, a Audit) error {
	err := d.tx(ctx, func(tx txer) error { return insertAudit(ctx, tx, d.Now(), a) })
	if err != nil {
		return fmt.Errorf("db: insert audit: %w", err)
	}
	return nil
}

// AuditFilter narrows ListAudit. Empty fields match everything; Action and Target match a prefix
// ("user." finds every user action).
type AuditFilter struct {
	Actor    string
	Action   string
	Target   string
	BeforeID int64 // keyset cursor: only rows with id < BeforeID
	Limit    int
}

// ListAudit returns audit rows newest first, at most Limit (default 50, max 500), and the cursor
// for the next page (0 when there is none).
func (d *DB) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, int64, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	var where []string
	var args []any
	if f.Actor != "" {
		where = append(where, "instr(lower(actor), lower(?)) > 0")
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		where = append(where, "action >= ? AND action < ?")
		args = append(args, f.Action, f.Action+"\U0010FFFF")
	}
	if f.Target != "" {
		where = append(where, "target >= ? AND target < ?")
		args = append(args, f.Target, f.Target+"\U0010FFFF")
	}
	if f.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, f.BeforeID)
	}
	q := "SELECT id, at, actor, action, target, before, after, ip, request_id FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := d.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		var before, after *string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &before, &after, &e.IP, &e.RequestID); err != nil {
			return nil, 0, fmt.Errorf("db: list audit: %w", err)
		}
		e.At = fromMS(at)
		if before != nil {
			e.Before = json.RawMessage(*before)
		}
		if after != nil {
			e.After = json.RawMessage(*after)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("db: list audit: %w", err)
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}
