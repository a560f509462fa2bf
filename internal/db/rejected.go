package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reasons a delivery is rejected, as stored in rejected_deliveries.reason.
const (
	RejectMissingHeader       = "missing_header"
	RejectTimestampSkew       = "timestamp_skew"
	RejectNoMatchingSignature = "no_matching_signature"
	RejectUnknownEnvironment  = "unknown_environment"
	RejectMalformedJSON       = "malformed_json"
	RejectBodyTooLarge        = "body_too_large"
	// RejectRetiredSecret: the only secret the signature matches was retired (or expired) lately;
	// the sender still signs with it.
	RejectRetiredSecret = "retired_secret"
)

// Bounds on what a rejected delivery keeps: whoever sends it is not trusted. The body's first
// MaxRejectedBody bytes are enough to see what was sent; BodySize says how much there was.
const (
	MaxRejectedBody   = 4 << 10
	maxRejectedEnv    = 64
	maxRejectedDetail = 2048
	maxRejectedField  = 1024 // reason, ip, request_id
)

// RejectedDelivery is a webhook delivery that was refused before it became an event, kept for
// admins to inspect.
type RejectedDelivery struct {
	ID         int64
	Env        string // the environment named in the URL, which may be unknown
	ReceivedAt time.Time
	Reason     string // one of the Reject* reasons
	Detail     string
	Headers    map[string]string
	Body       []byte // at most MaxRejectedBody bytes of the body
	BodySize   int64  // bytes received (more than len(Body) when truncated)
	IP         string
	RequestID  string
	Client     string // keyed fingerprint of the sender (see EventInput.Client); not read back
	// SignedBy is the id of the environment's webhook secret (active, or retired lately) whose
	// signature the delivery carried although it was refused for another reason; "" when no
	// signature verified. Only such refusals count toward the rejected-webhooks guardrail.
	SignedBy  string
	WebhookID string // the webhook-id header, cut to maxRejectedField; what the guardrail counts once
}

// Truncated reports whether Body holds only the start of what was received.
func (r RejectedDelivery) Truncated() bool { return r.BodySize > int64(len(r.Body)) }

func rejectedClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// InsertRejected stores a rejected delivery and returns its id. ReceivedAt is stamped here; the
// env, detail and body are cut to their bounds, and BodySize defaults to len(Body).
//
// NB: each call is its own write transaction; the caller rate-limits public ingest so that a
// flood of bad deliveries cannot crowd out the Ingester.
func (d *DB) InsertRejected(ctx context.Context, r RejectedDelivery) (int64, error) {
	if r.Reason == "" {
		return 0, errors.New("db: insert rejected delivery: reason is empty")
	}
	if r.BodySize < int64(len(r.Body)) {
		r.BodySize = int64(len(r.Body))
	}
	if len(r.Body) > MaxRejectedBody {
		r.Body = r.Body[:MaxRejectedBody]
	}
	if r.Body == nil {
		r.Body = []byte{}
	}
	var headers sql.NullString
	if r.Headers != nil {
		b, err := json.Marshal(r.Headers)
		if err != nil {
			return 0, fmt.Errorf("db: insert rejected delivery: %w", err)
		}
		headers = sql.NullString{String: string(b), Valid: true}
	}
	id, err := d.W.insertID(ctx, `INSERT INTO rejected_deliveries (env, received_at, reason, detail, headers, body, body_size, ip, request_id, client, signed_by, webhook_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rejectedClip(r.Env, maxRejectedEnv), ms(d.Now()), rejectedClip(r.Reason, maxRejectedField), rejectedClip(r.Detail, maxRejectedDetail),
		headers, r.Body, r.BodySize, rejectedClip(r.IP, maxRejectedField), rejectedClip(r.RequestID, maxRejectedField), nullString(r.Client),
		nullString(rejectedClip(r.SignedBy, maxRejectedField)), nullString(rejectedClip(r.WebhookID, maxRejectedField)))
	if err != nil {
		return 0, fmt.Errorf("db: insert rejected delivery: %w", err)
	}
	return id, nil
}

const rejectedCols = "id, env, received_at, reason, detail, headers, body, body_size, ip, request_id, coalesce(signed_by, ''), coalesce(webhook_id, '')"

func scanRejected(row interface{ Scan(...any) error }) (RejectedDelivery, error) {
	var r RejectedDelivery
	var received int64
	var headers sql.NullString
	if err := row.Scan(&r.ID, &r.Env, &received, &r.Reason, &r.Detail, &headers, &r.Body, &r.BodySize, &r.IP, &r.RequestID, &r.SignedBy, &r.WebhookID); err != nil {
		return RejectedDelivery{}, err
	}
	r.ReceivedAt = fromMS(received)
	if headers.Valid {
		if err := json.Unmarshal([]byte(headers.String), &r.Headers); err != nil {
			return RejectedDelivery{}, fmt.Errorf("rejected delivery %d headers: %w", r.ID, err)
		}
	}
	return r, nil
}

// ListRejected returns rejected deliveries newest first, of env only unless env is "", with id
// below beforeID when it is set, at most limit (default 50, at most 500), and the cursor for the
// next page (0 when there is none).
func (d *DB) ListRejected(ctx context.Context, env string, beforeID int64, limit int) ([]RejectedDelivery, int64, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	var where []string
	var args []any
	if env != "" {
		where = append(where, "env = ?")
		args = append(args, env)
	}
	if beforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, beforeID)
	}
	q := "SELECT " + rejectedCols + " FROM rejected_deliveries"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	rows, err := d.R.QueryContext(ctx, q, append(args, limit+1)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list rejected deliveries: %w", err)
	}
	defer rows.Close()
	var out []RejectedDelivery
	for rows.Next() {
		r, err := scanRejected(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list rejected deliveries: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("db: list rejected deliveries: %w", err)
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// RejectedByID returns one rejected delivery.
func (d *DB) RejectedByID(ctx context.Context, id int64) (RejectedDelivery, error) {
	r, err := scanRejected(d.R.QueryRowContext(ctx, "SELECT "+rejectedCols+" FROM rejected_deliveries WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return RejectedDelivery{}, ErrNotFound
	}
	if err != nil {
		return RejectedDelivery{}, fmt.Errorf("db: rejected delivery by id: %w", err)
	}
	return r, nil
}

// PurgeRejected deletes the rejected deliveries received before the cutoff, in batches like
// PurgeEvents.
func (d *DB) PurgeRejected(ctx context.Context, before time.Time, batch int) (int64, error) {
	n, err := d.purge(ctx, "rejected_deliveries", before, batch)
	if err != nil {
		return n, fmt.Errorf("db: purge rejected deliveries: %w", err)
	}
	return n, nil
}

// nullString is s, or NULL when s is empty.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
