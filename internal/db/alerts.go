package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Alert channel kinds.
const (
	AlertKindSlack   = "slack"   // a Slack-compatible incoming webhook: {"text": ...}
	AlertKindWebhook = "webhook" // a JSON webhook signed with Standard Webhooks
)

// Alert delivery states.
const (
	AlertPending   = "pending"
	AlertDelivered = "delivered"
	AlertFailed    = "failed"
)

// AlertChannel is a place alerts are sent to. URLSealed and SecretSealed are sealed with the
// master key; URLHost and URLFingerprint are what people see.
type AlertChannel struct {
	ID             string
	Name           string
	Kind           string
	URLSealed      string
	URLHost        string
	URLFingerprint string
	SecretSealed   string // webhook channels only
	Events         []string
	Envs           []string
	Enabled        bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Version        int64
}

const alertChannelCols = "id, name, kind, url_sealed, url_host, url_fingerprint, secret_sealed, events, envs, enabled, created_at, updated_at, version"

func scanAlertChannel(row interface{ Scan(...any) error }) (AlertChannel, error) {
	var c AlertChannel
	var events, envs string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.Kind, &c.URLSealed, &c.URLHost, &c.URLFingerprint, &c.SecretSealed, &events, &envs, &c.Enabled, &created, &updated, &c.Version); err != nil {
		return AlertChannel{}, err
	}
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	if err := errors.Join(json.Unmarshal([]byte(events), &c.Events), json.Unmarshal([]byte(envs), &c.Envs)); err != nil {
		return AlertChannel{}, fmt.Errorf("alert channel %s: %w", c.ID, err)
	}
	return c, nil
}

// ListAlertChannels returns every channel by name.
func (d *DB) ListAlertChannels(ctx context.Context) ([]AlertChannel, error) {
	return queryAll(ctx, d.R, "list alert channels", scanAlertChannel, "SELECT "+alertChannelCols+" FROM alert_channels ORDER BY name")
}

// AlertChannelByID reads one channel; a missing one is ErrNotFound.
func (d *DB) AlertChannelByID(ctx context.Context, id string) (AlertChannel, error) {
	c, err := scanAlertChannel(d.R.QueryRowContext(ctx, "SELECT "+alertChannelCols+" FROM alert_channels WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return AlertChannel{}, ErrNotFound
	}
	if err != nil {
		return AlertChannel{}, fmt.Errorf("db: alert channel: %w", err)
	}
	return c, nil
}

// InsertAlertChannel stores a new channel and its audit row. A name in use is ErrConflict.
func (d *DB) InsertAlertChannel(ctx context.Context, c AlertChannel, a Audit) (AlertChannel, error) {
	now := d.Now()
	c.CreatedAt, c.UpdatedAt, c.Version = now, now, 1
	events, envs, err := alertLists(c)
	if err != nil {
		return AlertChannel{}, fmt.Errorf("db: insert alert channel: %w", err)
	}
	err = d.tx(ctx, func(tx txer) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO alert_channels ("+alertChannelCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			c.ID, c.Name, c.Kind, c.URLSealed, c.URLHost, c.URLFingerprint, c.SecretSealed, events, envs, c.Enabled, ms(now), ms(now), c.Version)
		if isUniqueViolation(err) {
			return ErrConflict
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrConflict) {
		return AlertChannel{}, ErrConflict
	}
	if err != nil {
		return AlertChannel{}, fmt.Errorf("db: insert alert channel: %w", err)
	}
	return c, nil
}

// UpdateAlertChannel stores c over the channel with its id if the stored version is still
// c.Version, and writes the audit row; the stored channel (with its new version) is returned. A
// missing channel is ErrNotFound; a name in use, or a version that is no longer current, is
// ErrConflict (ErrStaleAlertChannel for the version).
func (d *DB) UpdateAlertChannel(ctx context.Context, c AlertChannel, a Audit) (AlertChannel, error) {
	now := d.Now()
	events, envs, err := alertLists(c)
	if err != nil {
		return AlertChannel{}, fmt.Errorf("db: update alert channel: %w", err)
	}
	err = d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, `UPDATE alert_channels SET name = ?, url_sealed = ?, url_host = ?, url_fingerprint = ?, secret_sealed = ?,
			events = ?, envs = ?, enabled = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`,
			c.Name, c.URLSealed, c.URLHost, c.URLFingerprint, c.SecretSealed, events, envs, c.Enabled, ms(now), c.ID, c.Version)
		if isUniqueViolation(err) {
			return ErrConflict
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			var v int64
			if err := tx.QueryRowContext(ctx, "SELECT version FROM alert_channels WHERE id = ?", c.ID).Scan(&v); errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return ErrStaleAlertChannel
		}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return AlertChannel{}, err
	}
	if err != nil {
		return AlertChannel{}, fmt.Errorf("db: update alert channel: %w", err)
	}
	return d.AlertChannelByID(ctx, c.ID)
}

// ErrStaleAlertChannel is an update made against a version of a channel that is no longer
// current. It is an ErrConflict.
var ErrStaleAlertChannel = fmt.Errorf("%w: the alert channel changed since it was read", ErrConflict)

// DeleteAlertChannel removes a channel with its deliveries, and writes the audit row. A missing
// channel is ErrNotFound.
func (d *DB) DeleteAlertChannel(ctx context.Context, id string, a Audit) error {
	now := d.Now()
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM alert_channels WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		return insertAudit(ctx, tx, now, a)
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: delete alert channel: %w", err)
	}
	return nil
}

func alertLists(c AlertChannel) (string, string, error) {
	events, err := json.Marshal(nonNil(c.Events))
	if err != nil {
		return "", "", err
	}
	envs, err := json.Marshal(nonNil(c.Envs))
	return string(events), string(envs), err
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// AlertDelivery is one alert to one channel, with its state.
type AlertDelivery struct {
	ID          int64
	ChannelID   string
	MsgID       string // the webhook-id, the same on every attempt
	Type        string
	Env         string
	Status      string // firing | resolved
	Title       string
	Payload     []byte // the JSON a webhook channel receives
	State       string // AlertPending, AlertDelivered, AlertFailed
	Attempts    int
	MaxAttempts int
	NextAt      time.Time
	CreatedAt   time.Time
	DoneAt      time.Time
}

// AlertAttempt is one try at delivering an alert.
type AlertAttempt struct {
	At         time.Time
	Status     int // 0 when no answer came
	Answer     string
	DurationMS int64
	Error      string
}

// AlertDeliveryRow is a delivery as the page lists it: with its channel's name and its last
// attempt.
type AlertDeliveryRow struct {
	AlertDelivery
	ChannelName string
	Last        AlertAttempt // zero when it was never tried
}

const alertDeliveryCols = "d.id, d.channel_id, d.msg_id, d.type, d.env, d.status, d.title, d.payload, d.state, d.attempts, d.max_attempts, d.next_at, d.created_at, d.done_at"

func scanAlertDelivery(row interface{ Scan(...any) error }, extra ...any) (AlertDelivery, error) {
	var d AlertDelivery
	var next, created int64
	var done sql.NullInt64
	dest := append([]any{&d.ID, &d.ChannelID, &d.MsgID, &d.Type, &d.Env, &d.Status, &d.Title, &d.Payload, &d.State, &d.Attempts, &d.MaxAttempts, &next, &created, &done}, extra...)
	if err := row.Scan(dest...); err != nil {
		return AlertDelivery{}, err
	}
	d.NextAt, d.CreatedAt, d.DoneAt = fromMS(next), fromMS(created), fromNullMS(done)
	return d, nil
}

// EnqueueAlerts stores new pending deliveries and the detector's state in one transaction, so an
// alert is recorded exactly when the detector moves past what caused it. state maps alert_state
// keys to values; an empty value deletes the key. It returns the new deliveries' ids in order.
func (d *DB) EnqueueAlerts(ctx context.Context, ds []AlertDelivery, state map[string]string) ([]int64, error) {
	now := d.Now()
	ids := make([]int64, 0, len(ds))
	err := d.tx(ctx, func(tx txer) error {
		for _, x := range ds {
			next := x.NextAt
			if next.IsZero() {
				next = now
			}
			id, err := tx.insertID(ctx, `INSERT INTO alert_deliveries (channel_id, msg_id, type, env, status, title, payload, state, max_attempts, next_at, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
				x.ChannelID, x.MsgID, x.Type, x.Env, x.Status, x.Title, x.Payload, x.MaxAttempts, ms(next), ms(now))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		for k, v := range state {
			var err error
			if v == "" {
				_, err = tx.ExecContext(ctx, "DELETE FROM alert_state WHERE key = ?", k)
			} else {
				_, err = tx.ExecContext(ctx, "INSERT INTO alert_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", k, v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("db: enqueue alerts: %w", err)
	}
	return ids, nil
}

// AlertState returns the detector's state, every key whose name starts with prefix.
func (d *DB) AlertState(ctx context.Context, prefix string) (map[string]string, error) {
	out := map[string]string{}
	err := eachRow(ctx, d.R, "alert state", func(r rowScanner) error {
		var k, v string
		err := r.Scan(&k, &v)
		out[k] = v
		return err
	}, "SELECT key, value FROM alert_state WHERE key >= ? AND key < ?", prefix, prefix+"\U0010FFFF")
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AlertDeliveryByID reads one delivery; a missing one is ErrNotFound.
func (d *DB) AlertDeliveryByID(ctx context.Context, id int64) (AlertDelivery, error) {
	x, err := scanAlertDelivery(d.R.QueryRowContext(ctx, "SELECT "+alertDeliveryCols+" FROM alert_deliveries d WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return AlertDelivery{}, ErrNotFound
	}
	if err != nil {
		return AlertDelivery{}, fmt.Errorf("db: alert delivery: %w", err)
	}
	return x, nil
}

// DueAlertDeliveries lists the ids of pending deliveries due at now, oldest first, at most limit.
func (d *DB) DueAlertDeliveries(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	return queryAll(ctx, d.R, "due alert deliveries", func(r rowScanner) (id int64, err error) { err = r.Scan(&id); return id, err },
		"SELECT id FROM alert_deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?", ms(now), limit)
}

// ClaimAlertDelivery takes a pending delivery due at now for one attempt, by moving its next try
// to until: of several instances (or a leader and one that still thinks it leads) only one gets
// it, and the others find it not due. It reports whether this caller got it. An instance that
// dies after its claim leaves the delivery to be tried again at until.
func (d *DB) ClaimAlertDelivery(ctx context.Context, id int64, now, until time.Time) (bool, error) {
	var claimed bool
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, "UPDATE alert_deliveries SET next_at = ? WHERE id = ? AND state = 'pending' AND next_at <= ?", ms(until), id, ms(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("db: claim alert delivery: %w", err)
	}
	return claimed, nil
}

// RecordAlertAttempt stores an attempt at a pending delivery and moves the delivery on in the same
// transaction: to state (pending with next try at next, delivered or failed). A delivery that is
// no longer pending (or gone with its channel) is ErrNotFound, and nothing is stored.
func (d *DB) RecordAlertAttempt(ctx context.Context, id int64, at AlertAttempt, state string, next time.Time) error {
	err := d.tx(ctx, func(tx txer) error {
		var done any
		if state != AlertPending {
			done = ms(at.At)
		}
		res, err := tx.ExecContext(ctx, "UPDATE alert_deliveries SET state = ?, attempts = attempts + 1, next_at = ?, done_at = ? WHERE id = ? AND state = 'pending'",
			state, ms(next), done, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		var status any
		if at.Status != 0 {
			status = at.Status
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO alert_attempts (delivery_id, at, status, answer, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)",
			id, ms(at.At), status, at.Answer, at.DurationMS, at.Error)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: record alert attempt: %w", err)
	}
	return nil
}

// ListAlertDeliveries returns the newest deliveries, of one channel unless channelID is "", with
// their last attempt, at most limit (default 50, at most 500).
func (d *DB) ListAlertDeliveries(ctx context.Context, channelID string, limit int) ([]AlertDeliveryRow, error) {
	if limit <= 0 {
		limit = 50
	}
	where, args := "", []any{}
	if channelID != "" {
		where, args = "WHERE d.channel_id = ?", append(args, channelID)
	}
	out, err := d.alertDeliveryRows(ctx, where+" ORDER BY d.id DESC LIMIT ?", append(args, min(limit, 500))...)
	if err != nil {
		return nil, fmt.Errorf("db: list alert deliveries: %w", err)
	}
	return out, nil
}

// LastAlertDeliveries returns each channel's newest delivery with its last attempt, by channel id.
func (d *DB) LastAlertDeliveries(ctx context.Context) (map[string]AlertDeliveryRow, error) {
	rows, err := d.alertDeliveryRows(ctx, "WHERE d.id IN (SELECT max(id) FROM alert_deliveries GROUP BY channel_id)")
	if err != nil {
		return nil, fmt.Errorf("db: last alert deliveries: %w", err)
	}
	out := make(map[string]AlertDeliveryRow, len(rows))
	for _, r := range rows {
		out[r.ChannelID] = r
	}
	return out, nil
}

// alertDeliveryRows reads deliveries with their channel's name and last attempt; tail is the
// query's WHERE, ORDER and LIMIT.
func (d *DB) alertDeliveryRows(ctx context.Context, tail string, args ...any) ([]AlertDeliveryRow, error) {
	q := "SELECT " + alertDeliveryCols + `, c.name, coalesce(a.at, 0), coalesce(a.status, 0), coalesce(a.answer, ''), coalesce(a.duration_ms, 0), coalesce(a.error, '')
		FROM alert_deliveries d JOIN alert_channels c ON c.id = d.channel_id
		LEFT JOIN alert_attempts a ON a.id = (SELECT max(id) FROM alert_attempts WHERE delivery_id = d.id) ` + tail
	rows, err := d.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertDeliveryRow
	for rows.Next() {
		var r AlertDeliveryRow
		var at int64
		x, err := scanAlertDelivery(rows, &r.ChannelName, &at, &r.Last.Status, &r.Last.Answer, &r.Last.DurationMS, &r.Last.Error)
		if err != nil {
			return nil, err
		}
		r.AlertDelivery = x
		if at > 0 {
			r.Last.At = fromMS(at)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AlertAttempts lists the attempts at one delivery, oldest first.
func (d *DB) AlertAttempts(ctx context.Context, deliveryID int64) ([]AlertAttempt, error) {
	return queryAll(ctx, d.R, "alert attempts", func(r rowScanner) (AlertAttempt, error) {
		var a AlertAttempt
		var at int64
		err := r.Scan(&at, &a.Status, &a.Answer, &a.DurationMS, &a.Error)
		a.At = fromMS(at)
		return a, err
	}, "SELECT at, coalesce(status, 0), answer, duration_ms, error FROM alert_attempts WHERE delivery_id = ? ORDER BY id", deliveryID)
}

// PurgeAlertDeliveries deletes finished deliveries (with their attempts) created before before,
// in batches of batch rows, each its own short transaction; pending ones are kept whatever
// their age. It returns how many were deleted.
func (d *DB) PurgeAlertDeliveries(ctx context.Context, before time.Time, batch int) (int64, error) {
	var total int64
	for {
		res, err := d.W.ExecContext(ctx, `DELETE FROM alert_deliveries WHERE id IN (
			SELECT id FROM alert_deliveries WHERE created_at < ? AND state != 'pending' LIMIT ?)`, ms(before), batch)
		if err != nil {
			return total, fmt.Errorf("db: purge alert deliveries: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < int64(batch) || ctx.Err() != nil {
			return total, nil
		}
	}
}

// AuditAfter returns the audit rows after id, oldest first, at most limit: what the alert
// detector has not looked at yet.
func (d *DB) AuditAfter(ctx context.Context, id int64, limit int) ([]AuditEntry, error) {
	return queryAll(ctx, d.R, "audit after", func(r rowScanner) (AuditEntry, error) {
		var e AuditEntry
		var at int64
		var after string
		err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &after)
		e.At = fromMS(at)
		if after != "" {
			e.After = json.RawMessage(after)
		}
		return e, err
	}, "SELECT id, at, actor, action, target, coalesce(after, '') FROM audit_log WHERE id > ? ORDER BY id LIMIT ?", id, limit)
}

// LatestAuditID is the id of the newest audit row, 0 when there is none.
func (d *DB) LatestAuditID(ctx context.Context) (int64, error) {
	var id int64
	if err := d.R.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM audit_log").Scan(&id); err != nil {
		return 0, fmt.Errorf("db: latest audit id: %w", err)
	}
	return id, nil
}

// BurstFigures are what the alert detector counts per environment over its window: refused
// webhook deliveries by reason, and initialization_error callbacks.
type BurstFigures struct {
	Refused    map[string]int64 // reason -> count
	InitErrors int64
}

// AlertBurstFigures counts, per environment named in the request (sandbox and production always
// present), the refused deliveries kept since since by reason, and initialization_error callbacks.
func (d *DB) AlertBurstFigures(ctx context.Context, since time.Time) (map[string]BurstFigures, error) {
	out := map[string]BurstFigures{}
	for _, env := range eventEnvs {
		out[env] = BurstFigures{Refused: map[string]int64{}}
	}
	err := eachRow(ctx, d.R, "alert burst figures", func(r rowScanner) error {
		var env, reason string
		var n int64
		if err := r.Scan(&env, &reason, &n); err != nil {
			return err
		}
		if f, ok := out[env]; ok { // else an environment that does not exist: nobody's channel names it
			f.Refused[reason] = n
		}
		return nil
	}, "SELECT env, reason, count(*) FROM rejected_deliveries INDEXED BY rejected_deliveries_received_at WHERE received_at >= ? GROUP BY env, reason", ms(since))
	if err != nil {
		return nil, err
	}
	lo, ok, err := d.firstEventAtOrAfter(ctx, since)
	if err != nil || !ok {
		return out, err
	}
	err = eachRow(ctx, d.R, "alert burst figures", func(r rowScanner) error {
		var env string
		var n int64
		if err := r.Scan(&env, &n); err != nil {
			return err
		}
		if f, ok := out[env]; ok {
			f.InitErrors = n
			out[env] = f
		}
		return nil
	}, statsInitErrorsSQL, lo)
	if err != nil {
		return nil, err
	}
	return out, nil
}
