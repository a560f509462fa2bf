package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// RolloutRow is the stored rollout. Stages and Guardrails are JSON the rollout package encodes;
// the database only keeps them.
type RolloutRow struct {
	Key            string
	Salt           string
	State          string
	Stage          int
	Stages         json.RawMessage
	StageStartedAt time.Time
	AutoAdvance    bool
	Guardrails     json.RawMessage
	OnBreach       string
	Held           string
	Version        int64
	UpdatedAt      time.Time
	UpdatedBy      string
}

const rolloutCols = `key, salt, state, stage, stages, stage_started_at, auto_advance, guardrails, on_breach, held, version, updated_at, updated_by`

func scanRollout(row interface{ Scan(...any) error }) (RolloutRow, error) {
	var r RolloutRow
	var stages, guardrails string
	var started sql.NullInt64
	var updated int64
	var auto int64
	err := row.Scan(&r.Key, &r.Salt, &r.State, &r.Stage, &stages, &started, &auto, &guardrails, &r.OnBreach, &r.Held, &r.Version, &updated, &r.UpdatedBy)
	r.Stages, r.Guardrails = json.RawMessage(stages), json.RawMessage(guardrails)
	r.StageStartedAt, r.UpdatedAt, r.AutoAdvance = fromNullMS(started), fromMS(updated), auto == 1
	return r, err
}

// Rollout reads the rollout with key; a missing one is ErrNotFound.
func (d *DB) Rollout(ctx context.Context, key string) (RolloutRow, error) {
	r, err := scanRollout(d.R.QueryRowContext(ctx, "SELECT "+rolloutCols+" FROM rollout WHERE key = ?", key))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("db: rollout: %w", err)
	}
	return r, nil
}

// CreateRollout stores r unless a rollout with its key exists, and returns the stored one (so two
// starts racing agree on one salt).
func (d *DB) CreateRollout(ctx context.Context, r RolloutRow) (RolloutRow, error) {
	_, err := d.W.ExecContext(ctx, `INSERT INTO rollout (`+rolloutCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO NOTHING`, r.Key, r.Salt, r.State, r.Stage, string(r.Stages), nullMS(r.StageStartedAt), boolInt(r.AutoAdvance),
		string(r.Guardrails), r.OnBreach, r.Held, r.Version, ms(d.Now()), r.UpdatedBy)
	if err != nil {
		return RolloutRow{}, fmt.Errorf("db: create rollout: %w", err)
	}
	return d.Rollout(ctx, r.Key)
}

// UpdateRollout stores r if the stored version is still expect (else ErrConflict: someone changed
// the rollout since it was read), bumps the version, and writes the audit row in the same
// transaction. The salt is never changed.
func (d *DB) UpdateRollout(ctx context.Context, r RolloutRow, expect int64, a Audit) (RolloutRow, error) {
	now := d.Now()
	var out RolloutRow
	err := d.tx(ctx, func(tx txer) error {
		res, err := tx.ExecContext(ctx, `UPDATE rollout SET state = ?, stage = ?, stages = ?, stage_started_at = ?, auto_advance = ?,
			guardrails = ?, on_breach = ?, held = ?, version = version + 1, updated_at = ?, updated_by = ? WHERE key = ? AND version = ?`,
			r.State, r.Stage, string(r.Stages), nullMS(r.StageStartedAt), boolInt(r.AutoAdvance), string(r.Guardrails), r.OnBreach, r.Held,
			ms(now), a.Actor, r.Key, expect)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrConflict
		}
		if out, err = scanRollout(tx.QueryRowContext(ctx, "SELECT "+rolloutCols+" FROM rollout WHERE key = ?", r.Key)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil && !errors.Is(err, ErrConflict) {
		err = fmt.Errorf("db: update rollout: %w", err)
	}
	return out, err
}

// bumpRollout bumps the rollout's version inside tx, checking expect when it is not 0, for a
// change to a cohort (the version covers the rollout and its cohorts).
func bumpRollout(ctx context.Context, tx txer, key string, expect int64, now time.Time, actor string) (int64, error) {
	q := "UPDATE rollout SET version = version + 1, updated_at = ?, updated_by = ? WHERE key = ?"
	args := []any{ms(now), actor, key}
	if expect != 0 {
		q += " AND version = ?"
		args = append(args, expect)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, ErrConflict
	}
	var v int64
	err = tx.QueryRowContext(ctx, "SELECT version FROM rollout WHERE key = ?", key).Scan(&v)
	return v, err
}

// CohortRow is one stored cohort. Members of an allow-list are stored apart (CohortMembers).
type CohortRow struct {
	ID        int64
	Name      string
	Env       string
	Position  int
	Kind      string // list | rules
	Match     string
	Rules     json.RawMessage
	Size      int
	CreatedAt time.Time
	UpdatedAt time.Time
	UpdatedBy string
}

const cohortCols = `id, name, env, position, kind, match, rules, size, created_at, updated_at, updated_by`

func scanCohort(row interface{ Scan(...any) error }) (CohortRow, error) {
	var c CohortRow
	var rules string
	var created, updated int64
	err := row.Scan(&c.ID, &c.Name, &c.Env, &c.Position, &c.Kind, &c.Match, &rules, &c.Size, &created, &updated, &c.UpdatedBy)
	c.Rules, c.CreatedAt, c.UpdatedAt = json.RawMessage(rules), fromMS(created), fromMS(updated)
	return c, err
}

// ListCohorts lists the cohorts by position.
func (d *DB) ListCohorts(ctx context.Context) ([]CohortRow, error) {
	return queryAll(ctx, d.R, "list cohorts", scanCohort, "SELECT "+cohortCols+" FROM cohorts ORDER BY position, id")
}

// Cohort reads one cohort; a missing one is ErrNotFound.
func (d *DB) Cohort(ctx context.Context, id int64) (CohortRow, error) {
	c, err := scanCohort(d.R.QueryRowContext(ctx, "SELECT "+cohortCols+" FROM cohorts WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// CohortMembers lists the user ids of an allow-list, in id order.
func (d *DB) CohortMembers(ctx context.Context, id int64) ([]string, error) {
	rows, err := d.R.QueryContext(ctx, "SELECT user_id FROM cohort_members WHERE cohort_id = ? ORDER BY user_id", id)
	if err != nil {
		return nil, fmt.Errorf("db: cohort members: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CohortChange creates or replaces a cohort. Members replaces an allow-list's members when not
// nil. Expect is the rollout version the change was made against (0: do not check).
type CohortChange struct {
	Cohort  CohortRow
	Members []string
	Expect  int64
}

// SaveCohort inserts (ID 0, placed last) or updates a cohort and its members, bumps the rollout
// version and writes the audit row, in one transaction. A duplicate name is ErrConflict with the
// message naming it; a stale Expect is ErrConflict. It returns the new rollout version.
func (d *DB) SaveCohort(ctx context.Context, rolloutKey string, ch CohortChange, a Audit) (CohortRow, int64, error) {
	now := d.Now()
	c := ch.Cohort
	var version int64
	err := d.tx(ctx, func(tx txer) error {
		var err error
		if version, err = bumpRollout(ctx, tx, rolloutKey, ch.Expect, now, a.Actor); err != nil {
			return err
		}
		size := c.Size
		if ch.Members != nil {
			size = len(ch.Members)
		}
		if c.ID == 0 {
			var pos sql.NullInt64
			if err := tx.QueryRowContext(ctx, "SELECT max(position) FROM cohorts").Scan(&pos); err != nil {
				return err
			}
			c.Position = int(pos.Int64) + 1
			res, err := tx.ExecContext(ctx, `INSERT INTO cohorts (name, env, position, kind, match, rules, size, created_at, updated_at, updated_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.Name, c.Env, c.Position, c.Kind, c.Match, string(c.Rules), size, ms(now), ms(now), a.Actor)
			if err != nil {
				return uniqueName(err, c.Name)
			}
			if c.ID, err = res.LastInsertId(); err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, `UPDATE cohorts SET name = ?, env = ?, match = ?, rules = ?, size = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
				c.Name, c.Env, c.Match, string(c.Rules), size, ms(now), a.Actor, c.ID)
			if err != nil {
				return uniqueName(err, c.Name)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return ErrNotFound
			}
		}
		if ch.Members != nil {
			if _, err := tx.ExecContext(ctx, "DELETE FROM cohort_members WHERE cohort_id = ?", c.ID); err != nil {
				return err
			}
			if err := insertMembers(ctx, tx, c.ID, ch.Members); err != nil {
				return err
			}
		}
		if c, err = scanCohort(tx.QueryRowContext(ctx, "SELECT "+cohortCols+" FROM cohorts WHERE id = ?", c.ID)); err != nil {
			return err
		}
		if a.Target == "" {
			a.Target = fmt.Sprintf("cohort:%d", c.ID)
		}
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("db: save cohort: %w", err)
	}
	return c, version, err
}

// insertMembers writes ids in multi-row statements (500 a statement), so 100k ids take well
// under a second.
func insertMembers(ctx context.Context, tx txer, id int64, ids []string) error {
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		var b strings.Builder
		b.WriteString("INSERT OR IGNORE INTO cohort_members (cohort_id, user_id) VALUES ")
		args := make([]any, 0, 2*len(part))
		for i, u := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?)")
			args = append(args, id, u)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// ErrDuplicateName is a cohort name already in use.
type ErrDuplicateName string

func (e ErrDuplicateName) Error() string {
	return fmt.Sprintf("db: a cohort named %q exists", string(e))
}
func (e ErrDuplicateName) Is(target error) bool { return target == ErrConflict }

func uniqueName(err error, name string) error {
	if strings.Contains(err.Error(), "UNIQUE constraint failed: cohorts.name") {
		return ErrDuplicateName(name)
	}
	return err
}

// DeleteCohort removes a cohort and its members, bumps the rollout version (checking expect when
// not 0) and writes the audit row.
func (d *DB) DeleteCohort(ctx context.Context, rolloutKey string, id, expect int64, a Audit) (int64, error) {
	now := d.Now()
	var version int64
	err := d.tx(ctx, func(tx txer) error {
		var err error
		if version, err = bumpRollout(ctx, tx, rolloutKey, expect, now, a.Actor); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM cohorts WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return insertAudit(ctx, tx, now, a)
	})
	return version, err
}

// ReorderCohorts sets the evaluation order to ids (which must name every cohort once), bumps the
// rollout version and writes the audit row.
func (d *DB) ReorderCohorts(ctx context.Context, rolloutKey string, ids []int64, expect int64, a Audit) (int64, error) {
	now := d.Now()
	var version int64
	err := d.tx(ctx, func(tx txer) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM cohorts").Scan(&n); err != nil {
			return err
		}
		if n != len(ids) {
			return ErrBadOrder
		}
		var err error
		if version, err = bumpRollout(ctx, tx, rolloutKey, expect, now, a.Actor); err != nil {
			return err
		}
		for i, id := range ids {
			res, err := tx.ExecContext(ctx, "UPDATE cohorts SET position = ? WHERE id = ?", i+1, id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return ErrBadOrder
			}
		}
		return insertAudit(ctx, tx, now, a)
	})
	return version, err
}

// ErrBadOrder is a cohort order that does not name every cohort exactly once.
var ErrBadOrder = errors.New("db: the order must name every cohort exactly once")

// SaveReach stores the reach registers of a stage.
func (d *DB) SaveReach(ctx context.Context, stage int, registers []byte) error {
	_, err := d.W.ExecContext(ctx, `INSERT INTO rollout_reach (stage, registers, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (stage) DO UPDATE SET registers = excluded.registers, updated_at = excluded.updated_at`, stage, registers, ms(d.Now()))
	if err != nil {
		return fmt.Errorf("db: save reach: %w", err)
	}
	return nil
}

// LoadReach reads every stage's reach registers.
func (d *DB) LoadReach(ctx context.Context) (map[int][]byte, error) {
	rows, err := d.R.QueryContext(ctx, "SELECT stage, registers FROM rollout_reach")
	if err != nil {
		return nil, fmt.Errorf("db: load reach: %w", err)
	}
	defer rows.Close()
	out := map[int][]byte{}
	for rows.Next() {
		var stage int
		var regs []byte
		if err := rows.Scan(&stage, &regs); err != nil {
			return nil, err
		}
		out[stage] = regs
	}
	return out, rows.Err()
}

// ClearReach forgets every stage's reach (a new plan).
func (d *DB) ClearReach(ctx context.Context) error {
	_, err := d.W.ExecContext(ctx, "DELETE FROM rollout_reach")
	return err
}

// SignalCount is a guardrail's figures: Bad out of Total.
type SignalCount struct{ Bad, Total int64 }

// GuardrailFigures counts production's error signals over [since, until) (until zero: up to
// now), counting only what an unauthenticated party cannot forge, as docs/rollout.md explains:
//   - init_errors: distinct users of verified beacons (their token verified with the
//     environment's beacon key) that reported an initialization_error, out of distinct users of
//     any verified beacon; unverified beacons never count;
//   - api_errors: API calls reported with 5xx or no answer, out of all API calls (authenticated);
//   - rejected_webhooks: deliveries refused although their signature verified with a secret of
//     production (active, or retired lately), once per webhook-id, out of those plus the window's
//     verified webhooks; a delivery without a valid signature never counts;
//   - verify_failures: verifications of production that Tensfer answered by refusing the keys,
//     out of those it answered at all (an unreachable or failing base URL is a configuration
//     error, not a key failure), recorded in the audit log.
//
// Demo traffic counts like any other.
func (d *DB) GuardrailFigures(ctx context.Context, since, until time.Time) (map[string]SignalCount, error) {
	out := map[string]SignalCount{}
	lo, ok, err := d.firstEventAtOrAfter(ctx, since)
	if err != nil {
		return nil, err
	}
	hi := int64(math.MaxInt64)
	untilMS := int64(math.MaxInt64)
	if !until.IsZero() {
		untilMS = ms(until)
		if id, found, err := d.firstEventAtOrAfter(ctx, until); err != nil {
			return nil, err
		} else if found {
			hi = id
		}
	}
	if ok {
		var f SignalCount
		err := d.R.QueryRowContext(ctx, `SELECT count(DISTINCT CASE WHEN type = 'initialization_error' THEN user_id END), count(DISTINCT user_id)
			FROM events WHERE id >= ? AND id < ? AND source = 'callback' AND env = 'production' AND verification IS NOT NULL AND user_id <> ''`, lo, hi).Scan(&f.Bad, &f.Total)
		if err != nil {
			return nil, fmt.Errorf("db: guardrail init errors: %w", err)
		}
		out["init_errors"] = f
		f = SignalCount{}
		err = d.R.QueryRowContext(ctx, `SELECT coalesce(sum(is_error), 0), count(*) FROM events WHERE id >= ? AND id < ? AND source = 'api' AND env = 'production'`, lo, hi).Scan(&f.Bad, &f.Total)
		if err != nil {
			return nil, fmt.Errorf("db: guardrail api errors: %w", err)
		}
		out["api_errors"] = f
	} else {
		lo, hi = math.MaxInt64, 0 // no event in the window: the webhook half below finds nothing
	}
	// Refused webhooks: deliveries that carried a valid signature of production yet were refused,
	// each webhook-id once (a captured delivery replayed a thousand times is one), out of those
	// plus the verified webhooks of the window.
	var f SignalCount
	err = d.R.QueryRowContext(ctx, `SELECT
		(SELECT count(DISTINCT webhook_id) FROM rejected_deliveries INDEXED BY rejected_deliveries_signed
			WHERE received_at >= ? AND received_at < ? AND signed_by IS NOT NULL AND env = 'production'),
		(SELECT count(*) FROM events WHERE id >= ? AND id < ? AND source = 'webhook' AND env = 'production')`,
		ms(since), untilMS, lo, hi).Scan(&f.Bad, &f.Total)
	if err != nil {
		return nil, fmt.Errorf("db: guardrail rejected webhooks: %w", err)
	}
	f.Total += f.Bad
	out["rejected_webhooks"] = f
	f = SignalCount{}
	err = d.R.QueryRowContext(ctx, `SELECT coalesce(sum(outcome IN ('wrong_key', 'wrong_environment')), 0), count(*) FROM (
			SELECT json_extract(after, '$.outcome') AS outcome FROM audit_log
			WHERE at >= ? AND at < ? AND action = 'environment.verify' AND target = 'environment:production')
		WHERE outcome IN ('ok', 'wrong_key', 'wrong_environment')`, ms(since), untilMS).Scan(&f.Bad, &f.Total)
	if err != nil {
		return nil, fmt.Errorf("db: guardrail verifications: %w", err)
	}
	out["verify_failures"] = f
	return out, nil
}
