package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
	// The single writer makes "the last row" stable inside this transaction, so the new row's id
	// and its place in the chain are known before it is written.
	prevID, prev, err := chainHead(ctx, tx)
	if err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	row := auditRow{ID: prevID + 1, At: ms(at), Actor: a.Actor, Action: a.Action, Target: a.Target, IP: a.IP, RequestID: a.RequestID}
	if before != nil {
		v := before.(string)
		row.Before = &v
	}
	if after != nil {
		v := after.(string)
		row.After = &v
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor, action, target, before, after, ip, request_id, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, row.ID, row.At, row.Actor, row.Action, row.Target, before, after, row.IP, row.RequestID, auditHash(prev, row))
	return err
}

// auditRow is an audit row as the chain hashes it.
type auditRow struct {
	ID                    int64
	At                    int64
	Actor, Action, Target string
	Before, After         *string
	IP, RequestID         string
}

// auditHash is the row's link in the chain: SHA-256 over the previous link and the row's fields
// as a JSON array (so no two different rows share a form), hex-encoded.
func auditHash(prev string, r auditRow) string {
	canon, _ := json.Marshal([]any{prev, r.ID, r.At, r.Actor, r.Action, r.Target, r.Before, r.After, r.IP, r.RequestID})
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// chainHead returns the last row's id and link. A last row written before the chain began has no
// stored link: it is recomputed over every row.
func chainHead(ctx context.Context, tx interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int64, string, error) {
	var id int64
	var hash sql.NullString
	err := tx.QueryRowContext(ctx, "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	if hash.Valid {
		return id, hash.String, nil
	}
	res, err := walkChain(ctx, tx)
	return id, res.Head, err
}

// ChainReport is the outcome of walking the audit chain.
type ChainReport struct {
	Rows     int64  // rows walked
	Unlinked int64  // rows from before the chain began, covered by the first stored link
	Head     string // the last link: record it elsewhere to detect a rewrite of the whole tail
	BadID    int64  // the first row whose stored link does not match, 0 when all match
	LastID   int64  // the last row's id, 0 for an empty log
	// Heads are the published heads checked on the way, in the order given, each with what is
	// wrong with it ("" when the chain still holds it).
	Heads []HeadCheck
}

// HeadCheck is one published head and what the chain says of it.
type HeadCheck struct {
	AuditHead
	Problem string // "" when the row is there, stores this hash, and its content hashes to it
}

// AuditHead is the audit chain's head at one moment: the last row's id and its link. The
// dashboard publishes it (log, /metrics, alert channels) so that a copy lives outside the
// database; a chain that still holds every published head was not cut or rewritten before it.
type AuditHead struct {
	Seq  int64
	Hash string
}

// String is the head as it is published and given back: SEQ:HASH.
func (h AuditHead) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// ParseAuditHead reads a head written as SEQ:HASH (a row id and a 64-digit hex link).
func ParseAuditHead(s string) (AuditHead, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n <= 0 {
		return AuditHead{}, fmt.Errorf("head %q must be SEQ:HASH, a row number and a hash, as published (e.g. 42:3fa9...)", s)
	}
	if _, err := hex.DecodeString(hash); err != nil || len(hash) != sha256.Size*2 {
		return AuditHead{}, fmt.Errorf("head %q: the hash must be 64 hex digits", s)
	}
	return AuditHead{Seq: n, Hash: strings.ToLower(hash)}, nil
}

// AuditHead is the chain's head now: the last row and its link ({0, ""} for an empty log).
func (d *DB) AuditHead(ctx context.Context) (AuditHead, error) {
	id, hash, err := chainHead(ctx, d.R)
	if err != nil {
		return AuditHead{}, fmt.Errorf("db: audit head: %w", err)
	}
	return AuditHead{Seq: id, Hash: hash}, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowScanner is what a scan function reads from: a *sql.Row or *sql.Rows.
type rowScanner = interface{ Scan(...any) error }

// queryAll runs query on the readers and scans every row with scan; what names the list in
// errors ("list tokens").
func queryAll[T any](ctx context.Context, q querier, what string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := eachRow(ctx, q, what, func(r rowScanner) error {
		v, err := scan(r)
		out = append(out, v)
		return err
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachRow runs query and hands every row to each, for answers that are not a list (a map, sums);
// what names the query in errors.
func eachRow(ctx context.Context, q querier, what string, each func(rowScanner) error, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return fmt.Errorf("db: %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	return nil
}

// walkChain walks every row, checking each stored link, and each of heads at its row.
func walkChain(ctx context.Context, q querier, heads ...AuditHead) (ChainReport, error) {
	rep := ChainReport{Heads: make([]HeadCheck, len(heads))}
	at := map[int64][]int{} // row id -> indexes into heads
	for i, h := range heads {
		rep.Heads[i].AuditHead = h
		rep.Heads[i].Problem = "missing"
		at[h.Seq] = append(at[h.Seq], i)
	}
	rows, err := q.QueryContext(ctx, "SELECT id, at, actor, action, target, before, after, ip, request_id, hash FROM audit_log ORDER BY id")
	if err != nil {
		return rep, err
	}
	defer rows.Close()
	prev, linked := "", false
	for rows.Next() {
		var r auditRow
		var stored sql.NullString
		if err := rows.Scan(&r.ID, &r.At, &r.Actor, &r.Action, &r.Target, &r.Before, &r.After, &r.IP, &r.RequestID, &stored); err != nil {
			return rep, err
		}
		rep.Rows++
		link := auditHash(prev, r)
		switch {
		case !stored.Valid && linked && rep.BadID == 0:
			rep.BadID = r.ID // a link removed after the chain began
		case !stored.Valid:
			rep.Unlinked++
		case stored.String != link && rep.BadID == 0:
			rep.BadID = r.ID
		}
		for _, i := range at[r.ID] {
			rep.Heads[i].Problem = headProblem(rep.Heads[i].AuditHead, stored, link)
		}
		linked = linked || stored.Valid
		prev = link
		rep.LastID = r.ID
	}
	rep.Head = prev
	if err := rows.Err(); err != nil {
		return rep, err
	}
	for i, h := range rep.Heads {
		if h.Problem == "missing" {
			rep.Heads[i].Problem = fmt.Sprintf("row %d is gone (the log ends at row %d): rows were deleted", h.Seq, rep.LastID)
		}
	}
	return rep, nil
}

// headProblem says what is wrong with a published head, given its row's stored link and the link
// its content makes with the rows before it; "" when both are the published hash.
func headProblem(h AuditHead, stored sql.NullString, link string) string {
	switch {
	case !stored.Valid:
		return fmt.Sprintf("row %d stores no hash, but %s was published for it: its hash was removed", h.Seq, h.Hash)
	case stored.String != h.Hash:
		return fmt.Sprintf("row %d stores hash %s, not the published %s: the log was rewritten up to there, or cut and written again", h.Seq, stored.String, h.Hash)
	case link != h.Hash:
		return fmt.Sprintf("row %d or a row before it was changed: its content no longer hashes to the published %s", h.Seq, h.Hash)
	}
	return ""
}

// VerifyAudit walks the whole audit chain and reports the first row that was changed, or a row
// before it removed; 0 rows bad means every stored link matches.
// Each of heads (published earlier) is checked too: its row must still be there, store that hash,
// and hash to it; ChainReport.Heads says what is wrong with each.
func (d *DB) VerifyAudit(ctx context.Context, heads ...AuditHead) (ChainReport, error) {
	rep, err := walkChain(ctx, d.R, heads...)
	if err != nil {
		return rep, fmt.Errorf("db: verify audit: %w", err)
	}
	return rep, nil
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
