package db

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Event sources as stored in events.source.
const (
	SourceWebhook  = "webhook"
	SourceCallback = "callback"
	SourceAPI      = "api"
)

// eventEnvs are the environments an event can belong to (the CHECK of events.env), in display
// order.
var eventEnvs = [...]string{"sandbox", "production"}

func eventEnvOK(env string) bool { return env == eventEnvs[0] || env == eventEnvs[1] }

func eventSourceOK(s string) bool {
	return s == SourceWebhook || s == SourceCallback || s == SourceAPI
}

// EventInput is one event to store through the Ingester: a verified webhook, a callback or an API
// call reported by the integrator. The API-call fields (Method to ErrorMessage) are stored only
// when Source is SourceAPI.
//
// NB: the Ingester keeps Payload and Headers by reference (the OnCommit callback and the live feed
// see the same slices); do not modify them after Submit.
type EventInput struct {
	Source     string // SourceWebhook, SourceCallback or SourceAPI
	Env        string // sandbox or production
	Type       string // webhook type, callback event name, or "api.call"
	RequestID  string
	UserID     string // from the payload's data when present, for lookup by user
	ExternalID string // Tensfer event id (evt_..), callback event_id, or webhook-id
	// DedupeKey makes a redelivery store nothing new, e.g. "webhook:production:<webhook-id>" or
	// "callback:sandbox:<event_id>". Empty means never deduplicated.
	DedupeKey  string
	OccurredAt time.Time // when the sender says it happened; zero when unknown
	// IsError marks an error signal for the Overview and the rollout guardrail: an
	// initialization_error callback, or an API call answered 5xx or timed out. The caller decides.
	IsError bool

	Method       string
	Path         string
	Status       int // HTTP status; 0 when there was no response (e.g. a timeout)
	DurationMS   int64
	ErrorCode    string
	ErrorMessage string

	Payload      []byte            // the raw JSON exactly as received
	Headers      map[string]string // the request headers kept (never secrets)
	Verification json.RawMessage   // how the delivery was verified, e.g. {"secret_id":".."}
	Demo         bool              // produced by the built-in simulator
	// Client is a keyed fingerprint of who sent a public delivery (webhooks, callbacks), so that
	// guardrails count senders rather than requests. Not read back.
	Client string
}

// Event is one stored event. ID increases with every event stored and is never reused; it is the
// SSE event id and the keyset cursor. ReceivedAt is stamped when the event is written and never
// decreases as ID grows.
type Event struct {
	ID         int64
	ReceivedAt time.Time
	EventInput
	// PayloadSize is the size of the stored payload in bytes. It is more than len(Payload) when
	// only a preview of the payload was read (EventFilter.PreviewBytes, LookupEventPreviews).
	PayloadSize int
}

// Clipped reports whether Payload holds only the start of the stored payload.
func (e Event) Clipped() bool { return e.PayloadSize > len(e.Payload) }

const (
	maxEventTypeLen  = 255
	maxEventIDLen    = 1024 // request_id, user_id, external_id, dedupe_key
	maxEventFieldLen = 8192 // method, path, error code and message
)

func (in *EventInput) validate() error {
	switch {
	case !eventSourceOK(in.Source):
		return fmt.Errorf("source must be webhook, callback or api (got %q)", in.Source)
	case !eventEnvOK(in.Env):
		return fmt.Errorf("env must be sandbox or production (got %q)", in.Env)
	case in.Type == "" || len(in.Type) > maxEventTypeLen:
		return fmt.Errorf("type must be 1 to %d bytes", maxEventTypeLen)
	case len(in.Payload) == 0:
		return errors.New("payload is empty")
	case len(in.Verification) > 0 && !json.Valid(in.Verification):
		return errors.New("verification is not valid JSON")
	case in.Status < 0 || in.Status > 999:
		return fmt.Errorf("status %d is not an HTTP status", in.Status)
	case in.DurationMS < 0:
		return errors.New("duration_ms is negative")
	}
	for name, v := range map[string]string{"request_id": in.RequestID, "user_id": in.UserID, "external_id": in.ExternalID, "dedupe_key": in.DedupeKey} {
		if len(v) > maxEventIDLen {
			return fmt.Errorf("%s is longer than %d bytes", name, maxEventIDLen)
		}
	}
	for name, v := range map[string]string{"method": in.Method, "path": in.Path, "error_code": in.ErrorCode, "error_message": in.ErrorMessage} {
		if len(v) > maxEventFieldLen {
			return fmt.Errorf("%s is longer than %d bytes", name, maxEventFieldLen)
		}
	}
	return nil
}

const eventCols = `id, source, env, type, request_id, user_id, external_id, dedupe_key, received_at, occurred_at,
	is_error, method, path, status, duration_ms, error_code, error_message, payload, headers, verification, demo, length(payload)`

// eventColsPreview is eventCols with at most n bytes of each payload: what a list of summaries
// needs, so that a page of events carrying large payloads does not hold them all in memory.
func eventColsPreview(n int) string {
	if n <= 0 {
		return eventCols
	}
	return strings.Replace(eventCols, " payload,", fmt.Sprintf(" substr(payload, 1, %d),", n), 1)
}

func scanEvent(row interface{ Scan(...any) error }) (Event, error) {
	var e Event
	var dedupe, method, path, errCode, errMsg, headers, verification sql.NullString
	var received int64
	var occurred, status, duration sql.NullInt64
	err := row.Scan(&e.ID, &e.Source, &e.Env, &e.Type, &e.RequestID, &e.UserID, &e.ExternalID, &dedupe, &received, &occurred,
		&e.IsError, &method, &path, &status, &duration, &errCode, &errMsg, &e.Payload, &headers, &verification, &e.Demo, &e.PayloadSize)
	if err != nil {
		return Event{}, err
	}
	e.DedupeKey = dedupe.String
	e.ReceivedAt, e.OccurredAt = fromMS(received), fromNullMS(occurred)
	e.Method, e.Path, e.ErrorCode, e.ErrorMessage = method.String, path.String, errCode.String, errMsg.String
	e.Status, e.DurationMS = int(status.Int64), duration.Int64
	if headers.Valid {
		if err := json.Unmarshal([]byte(headers.String), &e.Headers); err != nil {
			return Event{}, fmt.Errorf("event %d headers: %w", e.ID, err)
		}
	}
	if verification.Valid {
		e.Verification = json.RawMessage(verification.String)
	}
	return e, nil
}

// EventByID returns one event.
func (d *DB) EventByID(ctx context.Context, id int64) (Event, error) {
	e, err := scanEvent(d.R.QueryRowContext(ctx, "SELECT "+eventCols+" FROM events WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, ErrNotFound
	}
	if err != nil {
		return Event{}, fmt.Errorf("db: event by id: %w", err)
	}
	return e, nil
}

// EventFilter narrows ListEvents. Empty fields match everything.
type EventFilter struct {
	Env       string
	Source    string
	Type      string
	RequestID string
	UserID    string
	Since     time.Time // received at or after
	Until     time.Time // received before
	IsError   *bool
	Signed    bool  // only events whose sender proved itself: signed webhooks, beacons whose token verified
	BeforeID  int64 // keyset cursor, newest first: only events with id < BeforeID (0: unset)
	AfterID   int64 // keyset cursor, oldest first: only events with id > AfterID (0: unset)
	Ascending bool  // oldest first even when AfterID is 0 (a stream replaying from the start)
	Limit     int   // default 50, at most 500
	// PreviewBytes > 0 reads at most that many bytes of each payload (a list of summaries);
	// Event.PayloadSize keeps the stored size.
	PreviewBytes int
	// MaxBytes > 0 ends a page early, with a cursor, once its payloads add up to that many bytes
	// (always at least one event), so a page of large payloads stays small in memory.
	MaxBytes int
}

// ListEvents returns the events that match f and the cursor for the next page (0 when there is
// none). Pages are newest first and the cursor goes in BeforeID; when AfterID is set the page is
// oldest first (so a live stream can replay what it missed in order) and the cursor goes in
// AfterID; Ascending asks for oldest first from the very first event. Both cursors may be set to
// read a closed id range.
//
// Every filter combination is answered by walking one index in id order (see listEventsQuery),
// and a Since/Until window becomes an id range, because received_at grows with id.
func (d *DB) ListEvents(ctx context.Context, f EventFilter) ([]Event, int64, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	if f.Env != "" && !eventEnvOK(f.Env) || f.Source != "" && !eventSourceOK(f.Source) || f.AfterID == math.MaxInt64 {
		return nil, 0, nil // nothing can match
	}
	lo, hi := f.AfterID+1, f.BeforeID // id >= lo; id < hi when hi > 0
	if !f.Since.IsZero() {
		id, ok, err := d.firstEventAtOrAfter(ctx, f.Since)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list events: %w", err)
		}
		if !ok {
			return nil, 0, nil
		}
		lo = max(lo, id)
	}
	if !f.Until.IsZero() {
		id, ok, err := d.firstEventAtOrAfter(ctx, f.Until)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list events: %w", err)
		}
		if ok && (hi == 0 || id < hi) {
			hi = id
		}
	}
	if hi > 0 && lo >= hi {
		return nil, 0, nil
	}
	q, args := listEventsQuery(f, lo, hi, limit+1)
	rows, err := d.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list events: %w", err)
	}
	out, full, err := scanEvents(rows, f.MaxBytes)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list events: %w", err)
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	} else if full {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// scanEvents reads every row, or stops once the payloads read add up to maxBytes (> 0) and
// reports that it stopped (full).
func scanEvents(rows *sql.Rows, maxBytes int) (out []Event, full bool, err error) {
	defer rows.Close()
	size := 0
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, e)
		if size += len(e.Payload); maxBytes > 0 && size >= maxBytes {
			return out, true, rows.Close()
		}
	}
	return out, false, rows.Err()
}

// firstEventAtOrAfter returns the smallest id received at or after t. Because received_at never
// decreases as id grows, the events received in [since, until) are exactly the ids in
// [first(since), first(until)).
func (d *DB) firstEventAtOrAfter(ctx context.Context, t time.Time) (int64, bool, error) {
	var id int64
	err := d.R.QueryRowContext(ctx, "SELECT id FROM events WHERE received_at >= ? ORDER BY received_at, id LIMIT 1", ms(t)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// listEventsQuery builds the page query for f over ids in [lo, hi) (hi 0: no upper bound).
//
// The most selective filter present picks the index that drives the walk, in this order:
// request_id, user_id, is_error=1, type, env and source, env, else the primary key; the other
// filters are checked on the rows it yields. The choice is pinned with INDEXED BY: without
// ANALYZE statistics SQLite cannot tell a request_id from an env apart, and it was seen to walk
// (env, id) for an env+source page, reading every production event to find the webhooks. An
// env-led index without an env filter is read once per environment and the two are merged in id
// order by the compound SELECT (MERGE (UNION ALL)), never sorted.
func listEventsQuery(f EventFilter, lo, hi int64, n int) (string, []any) {
	index := "NOT INDEXED" // the primary key
	byEnv := false         // the index starts with env
	switch {
	case f.RequestID != "":
		index = "INDEXED BY events_request_id"
	case f.UserID != "":
		index = "INDEXED BY events_user_id"
	case f.IsError != nil && *f.IsError:
		index, byEnv = "INDEXED BY events_errors", true
	case f.Type != "":
		index = "INDEXED BY events_type"
	case f.Source != "":
		index, byEnv = "INDEXED BY events_env_source", true
	case f.Env != "":
		index, byEnv = "INDEXED BY events_env", true
	}
	arm := func(env string) (string, []any) {
		var where []string
		var args []any
		add := func(term string, a ...any) { where = append(where, term); args = append(args, a...) }
		if env != "" {
			add("env = ?", env)
		}
		if f.Source != "" {
			add("source = ?", f.Source)
		}
		if f.Type != "" {
			add("type = ?", f.Type)
		}
		if f.RequestID != "" {
			add("request_id = ? AND request_id <> ''", f.RequestID) // <> '': the partial index's condition
		}
		if f.UserID != "" {
			add("user_id = ? AND user_id <> ''", f.UserID)
		}
		if f.IsError != nil {
			if *f.IsError {
				add("is_error = 1")
			} else {
				add("is_error = 0")
			}
		}
		if f.Signed {
			add("verification IS NOT NULL")
		}
		if !f.Since.IsZero() {
			add("received_at >= ?", ms(f.Since))
		}
		if !f.Until.IsZero() {
			add("received_at < ?", ms(f.Until))
		}
		if lo > 1 {
			add("id >= ?", lo)
		}
		if hi > 0 {
			add("id < ?", hi)
		}
		q := "SELECT " + eventColsPreview(f.PreviewBytes) + " FROM events " + index
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		return q, args
	}
	order := " ORDER BY id DESC LIMIT ?"
	if f.AfterID > 0 || f.Ascending {
		order = " ORDER BY id LIMIT ?"
	}
	if byEnv && f.Env == "" {
		q1, a1 := arm(eventEnvs[0])
		q2, a2 := arm(eventEnvs[1])
		return q1 + " UNION ALL " + q2 + order, append(append(a1, a2...), n)
	}
	q, args := arm(f.Env)
	return q + order, append(args, n)
}

// LookupEvents returns every event whose request_id, external_id or user_id equals q, oldest
// first, at most limit (default 200, at most 10,000): everything about one request, one delivery
// or one user in one place. An empty q finds nothing.
func (d *DB) LookupEvents(ctx context.Context, q string, limit int) ([]Event, error) {
	return d.LookupEventPreviews(ctx, q, limit, 0)
}

// LookupEventPreviews is LookupEvents reading at most previewBytes of each payload (all of it
// when previewBytes is 0): a timeline of summaries costs limit × previewBytes at most, however
// large the payloads planted under one id.
func (d *DB) LookupEventPreviews(ctx context.Context, q string, limit, previewBytes int) ([]Event, error) {
	if q == "" {
		return nil, nil
	}
	out, _, err := d.lookupPage(ctx, q, 0, lookupLimit(limit), previewBytes, 0)
	if err != nil {
		return nil, fmt.Errorf("db: lookup events: %w", err)
	}
	return out, nil
}

// eachPageBytes bounds the payload bytes that EachLookupEvent holds at once.
const eachPageBytes = 1 << 20

// EachLookupEvent calls fn with each event LookupEvents(q, limit) would return, oldest first,
// with its whole payload. It reads them in short queries of about a megabyte of payloads each and
// calls fn between them, so a caller writing a large answer to a slow client holds neither the
// answer in memory nor a read transaction open. An error from fn stops the walk and is returned
// as is.
func (d *DB) EachLookupEvent(ctx context.Context, q string, limit int, fn func(Event) error) error {
	if q == "" {
		return nil
	}
	limit = lookupLimit(limit)
	var after int64
	for limit > 0 {
		page, full, err := d.lookupPage(ctx, q, after, limit, 0, eachPageBytes)
		if err != nil {
			return fmt.Errorf("db: lookup events: %w", err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if !full {
			return nil
		}
		limit -= len(page)
		after = page[len(page)-1].ID
	}
	return nil
}

func lookupLimit(limit int) int {
	if limit <= 0 {
		return 200
	}
	return min(limit, 10_000)
}

// lookupPage reads the lookup's events with id > after, at most limit, stopping early once the
// payloads read add up to maxBytes (> 0), which it reports (full).
func (d *DB) lookupPage(ctx context.Context, q string, after int64, limit, previewBytes, maxBytes int) ([]Event, bool, error) {
	rows, err := d.R.QueryContext(ctx, "SELECT "+eventColsPreview(previewBytes)+lookupEventsFrom, q, limit, after)
	if err != nil {
		return nil, false, err
	}
	return scanEvents(rows, maxBytes)
}

// lookupEventsFrom reads at most limit ids above after from each lookup index in id order; the
// set of those ids (IN drops an id found twice) is then read back in id order, so a user with a
// long history costs limit rows, not the history.
const lookupEventsFrom = ` FROM events WHERE id IN (
	SELECT id FROM (SELECT id FROM events WHERE request_id = ?1 AND request_id <> '' AND id > ?3 ORDER BY id LIMIT ?2) AS r
	UNION ALL SELECT id FROM (SELECT id FROM events WHERE external_id = ?1 AND external_id <> '' AND id > ?3 ORDER BY id LIMIT ?2) AS r
	UNION ALL SELECT id FROM (SELECT id FROM events WHERE user_id = ?1 AND user_id <> '' AND id > ?3 ORDER BY id LIMIT ?2) AS r
) ORDER BY id LIMIT ?2`

// purgeBatch is the default number of rows one purge transaction deletes.
const purgeBatch = 500

// PurgeEvents deletes the events received before the cutoff, oldest first, batch rows (default
// 500) per short write transaction so that ingest waits at most one batch. It stops early, with
// what was deleted so far, when ctx is done.
func (d *DB) PurgeEvents(ctx context.Context, before time.Time, batch int) (int64, error) {
	n, err := d.purge(ctx, "events", before, batch)
	if err != nil {
		return n, fmt.Errorf("db: purge events: %w", err)
	}
	return n, nil
}

// purge deletes rows of table (events or rejected_deliveries, both indexed on received_at) in
// batches.
func (d *DB) purge(ctx context.Context, table string, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = purgeBatch
	}
	q := "DELETE FROM " + table + " WHERE id IN (SELECT id FROM " + table + " WHERE received_at < ? ORDER BY received_at LIMIT ?)"
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		res, err := d.W.ExecContext(ctx, q, ms(before), batch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// EnvStats are the Overview's figures for one environment over a time window.
type EnvStats struct {
	Events           int64 // events stored
	RejectedWebhooks int64 // deliveries refused (bad signature, skew, malformed, ...)
	InitErrors       int64 // initialization_error callbacks
	APIErrors        int64 // API calls reported with IsError (5xx or timeout)
}

// The EventStats queries: each counts one window of one index (events from the first id received
// in the window; rejected deliveries by received_at).
const (
	statsEventsSQL     = "SELECT env, count(*) FROM events WHERE env IN ('sandbox', 'production') AND id >= ? GROUP BY env"
	statsInitErrorsSQL = "SELECT env, count(*) FROM events WHERE type = 'initialization_error' AND +source = 'callback' AND id >= ? GROUP BY env"
	statsAPIErrorsSQL  = "SELECT env, count(*) FROM events WHERE is_error = 1 AND env IN ('sandbox', 'production') AND +source = 'api' AND id >= ? GROUP BY env"
	statsRejectedSQL   = "SELECT env, count(*) FROM rejected_deliveries INDEXED BY rejected_deliveries_received_at WHERE received_at >= ? GROUP BY env"
)

// EventStats counts, per environment, what was received since the given time. Sandbox and
// production are always present; a rejected delivery to an unknown environment is counted under
// the name it was sent to. The window should be bounded (an hour, a day): the counts walk the
// window's rows in an index.
func (d *DB) EventStats(ctx context.Context, since time.Time) (map[string]EnvStats, error) {
	out := map[string]EnvStats{eventEnvs[0]: {}, eventEnvs[1]: {}}
	count := func(q string, args []any, set func(s *EnvStats, n int64)) error {
		rows, err := d.R.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var env string
			var n int64
			if err := rows.Scan(&env, &n); err != nil {
				return err
			}
			s := out[env]
			set(&s, n)
			out[env] = s
		}
		return rows.Err()
	}
	lo, ok, err := d.firstEventAtOrAfter(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("db: event stats: %w", err)
	}
	if ok {
		err = errors.Join(
			count(statsEventsSQL, []any{lo}, func(s *EnvStats, n int64) { s.Events = n }),
			count(statsInitErrorsSQL, []any{lo}, func(s *EnvStats, n int64) { s.InitErrors = n }),
			count(statsAPIErrorsSQL, []any{lo}, func(s *EnvStats, n int64) { s.APIErrors = n }),
		)
	}
	err = errors.Join(err, count(statsRejectedSQL, []any{ms(since)}, func(s *EnvStats, n int64) { s.RejectedWebhooks = n }))
	if err != nil {
		return nil, fmt.Errorf("db: event stats: %w", err)
	}
	return out, nil
}

// HourCount is what arrived for one environment in one hour of a window: events, the error
// events among them (is_error: initialization errors, API 5xx and timeouts) and refused
// deliveries.
type HourCount struct {
	Env      string
	Hour     int // 0 is [since, since+1h)
	Events   int64
	Errors   int64
	Rejected int64
}

// The CountByHour queries. Events: ids grow with received_at, so each hour of the window is an id
// range; its bounds are found by one seek each in the received_at index (the last one open, so
// that what was stamped at or after the window's end counts in its last hour), and each hour is
// counted per environment in the covering (env, id) indexes, never reading a row: a plain GROUP
// BY over the rows read the window's table pages and took 7 times as long as a bare count(*)
// (BenchmarkCountByHour). ?1 is since in ms, ?2 the number of hours. Rejected deliveries are
// fewer and have no env index, so they are grouped by hour over their received_at index.
const (
	hourlyEventsSQL = `WITH RECURSIVE hours(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hours WHERE h < ?2),
		bounds(h, id) AS (SELECT h, CASE WHEN h = ?2 THEN 9223372036854775807 ELSE coalesce((SELECT id FROM events INDEXED BY events_received_at
			WHERE received_at >= CAST(?1 AS BIGINT) + h * 3600000 ORDER BY received_at LIMIT 1), 9223372036854775807) END FROM hours),
		ranges(h, lo, hi) AS (SELECT a.h, a.id, b.id FROM bounds a JOIN bounds b ON b.h = a.h + 1 WHERE a.id < b.id),
		envs(env) AS (VALUES ('sandbox'), ('production'))
		SELECT envs.env, r.h,
			(SELECT count(*) FROM events INDEXED BY events_env WHERE env = envs.env AND id >= r.lo AND id < r.hi),
			(SELECT count(*) FROM events INDEXED BY events_errors WHERE env = envs.env AND is_error = 1 AND id >= r.lo AND id < r.hi)
		FROM ranges r, envs`
	hourlyRejectedSQL = `SELECT env, (received_at - ?1) / 3600000 AS h, count(*)
		FROM rejected_deliveries INDEXED BY rejected_deliveries_received_at WHERE received_at >= ?1 GROUP BY env, h`
)

// CountByHour counts, per environment and hour of the window [since, since+hours), events, error
// events and refused deliveries (to sandbox or production) in two queries, whatever the number
// of hours. Hours with nothing are absent. Events received at or after the window's end count in
// its last hour; refused deliveries are in the hours past it, which the caller drops or clamps.
// The window should be bounded (a day): the counts walk its entries in the indexes.
func (d *DB) CountByHour(ctx context.Context, since time.Time, hours int) ([]HourCount, error) {
	type key struct {
		env  string
		hour int
	}
	byKey := map[key]*HourCount{}
	get := func(env string, hour int) *HourCount {
		k := key{env, hour}
		if byKey[k] == nil {
			byKey[k] = &HourCount{Env: env, Hour: hour}
		}
		return byKey[k]
	}
	err := eachRow(ctx, d.R, "count by hour", func(rows rowScanner) error {
		var c HourCount
		if err := rows.Scan(&c.Env, &c.Hour, &c.Events, &c.Errors); err != nil {
			return err
		}
		if c.Events > 0 {
			h := get(c.Env, c.Hour)
			h.Events, h.Errors = c.Events, c.Errors
		}
		return nil
	}, hourlyEventsSQL, ms(since), hours)
	if err == nil {
		err = eachRow(ctx, d.R, "count by hour", func(rows rowScanner) error {
			var c HourCount
			if err := rows.Scan(&c.Env, &c.Hour, &c.Rejected); err != nil {
				return err
			}
			if slices.Contains(eventEnvs[:], c.Env) {
				get(c.Env, c.Hour).Rejected = c.Rejected
			}
			return nil
		}, hourlyRejectedSQL, ms(since))
	}
	if err != nil {
		return nil, err
	}
	out := make([]HourCount, 0, len(byKey))
	for _, c := range byKey {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b HourCount) int { return cmp.Or(cmp.Compare(a.Env, b.Env), cmp.Compare(a.Hour, b.Hour)) })
	return out, nil
}

// CountProductionAPICalls returns how many production API calls have ever been reported (demo
// ones excluded), for the "free production API calls" counter. It reads a running total kept by
// the Ingester, so retention does not lower it and no page view counts rows.
func (d *DB) CountProductionAPICalls(ctx context.Context) (int64, error) {
	var n int64
	err := d.R.QueryRowContext(ctx, "SELECT n FROM event_counts WHERE env = 'production' AND source = 'api'").Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("db: count production api calls: %w", err)
	}
	return n, nil
}

// LatestEventID returns the id of the newest stored event (0 when there is none). Read it before
// starting the Ingester to tell the live feed from which id on it sees every event.
func (d *DB) LatestEventID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := d.R.QueryRowContext(ctx, "SELECT max(id) FROM events").Scan(&id); err != nil {
		return 0, fmt.Errorf("db: latest event id: %w", err)
	}
	return id.Int64, nil
}

// RecentUserIDs lists distinct user ids of the newest events (at most limit of them, looking at
// the newest 10 × limit events): the users "seen recently" that a rollout preview is run on.
func (d *DB) RecentUserIDs(ctx context.Context, limit int) ([]string, error) {
	rows, err := d.R.QueryContext(ctx, "SELECT user_id FROM (SELECT user_id FROM events ORDER BY id DESC LIMIT ?) AS r WHERE user_id != ''", 10*limit)
	if err != nil {
		return nil, fmt.Errorf("db: recent user ids: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var out []string
	for rows.Next() && len(out) < limit {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out, rows.Err()
}
