package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
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
	// StageEnteredBy is how the current stage was entered (the rollout package's EnteredBy).
	StageEnteredBy string
	// AdvanceWithoutVolume lets auto-advance proceed on guardrails below their minimum volume.
	AdvanceWithoutVolume bool
}

const rolloutCols = `key, salt, state, stage, stages, stage_started_at, auto_advance, guardrails, on_breach, held, version, updated_at, updated_by,
	stage_entered_by, advance_without_volume`

func scanRollout(row interface{ Scan(...any) error }) (RolloutRow, error) {
	var r RolloutRow
	var stages, guardrails string
	var started sql.NullInt64
	var updated int64
	var auto, noVolume int64
	err := row.Scan(&r.Key, &r.Salt, &r.State, &r.Stage, &stages, &started, &auto, &guardrails, &r.OnBreach, &r.Held, &r.Version, &updated, &r.UpdatedBy,
		&r.StageEnteredBy, &noVolume)
	r.Stages, r.Guardrails = json.RawMessage(stages), json.RawMessage(guardrails)
	r.StageStartedAt, r.UpdatedAt, r.AutoAdvance, r.AdvanceWithoutVolume = fromNullMS(started), fromMS(updated), auto == 1, noVolume == 1
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
	_, err := d.W.ExecContext(ctx, `INSERT INTO rollout (`+rolloutCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO NOTHING`, r.Key, r.Salt, r.State, r.Stage, string(r.Stages), nullMS(r.StageStartedAt), boolInt(r.AutoAdvance),
		string(r.Guardrails), r.OnBreach, r.Held, r.Version, ms(d.Now()), r.UpdatedBy, r.StageEnteredBy, boolInt(r.AdvanceWithoutVolume))
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
			guardrails = ?, on_breach = ?, held = ?, stage_entered_by = ?, advance_without_volume = ?, version = version + 1, updated_at = ?, updated_by = ?
			WHERE key = ? AND version = ?`,
			r.State, r.Stage, string(r.Stages), nullMS(r.StageStartedAt), boolInt(r.AutoAdvance), string(r.Guardrails), r.OnBreach, r.Held,
			r.StageEnteredBy, boolInt(r.AdvanceWithoutVolume), ms(now), a.Actor, r.Key, expect)
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

// bumpRollout bumps the rollout's version inside tx for a change to a cohort: that version covers
// the rollout and its cohorts, so decisions and ETags follow every change. It returns the version
// before the change and the new one.
func bumpRollout(ctx context.Context, tx txer, key string, now time.Time, actor string) (before, after int64, err error) {
	if err := tx.QueryRowContext(ctx, "SELECT version FROM rollout WHERE key = ?", key).Scan(&before); err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE rollout SET version = version + 1, updated_at = ?, updated_by = ? WHERE key = ?", ms(now), actor, key); err != nil {
		return 0, 0, err
	}
	return before, before + 1, nil
}

// checkTouched refuses (ErrConflict) a change made against version expect when what it touches
// changed after expect (changed is the version of that last change) or when expect is a version
// the rollout has not reached (current). expect 0 checks nothing. A change elsewhere (the
// rollout paused by a guardrail, another cohort edited) does not refuse it.
func checkTouched(expect, changed, current int64) error {
	if expect != 0 && (changed > expect || expect > current) {
		return ErrConflict
	}
	return nil
}

// orderVersionKey is the meta key holding the rollout version at which the cohorts' order (or
// their set) last changed.
const orderVersionKey = "rollout.cohort_order_version"

func orderVersion(ctx context.Context, tx txer) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?", orderVersionKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func setOrderVersion(ctx context.Context, tx txer, v int64) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", orderVersionKey, strconv.FormatInt(v, 10))
	return err
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
	// Version is the rollout version at which the cohort last changed: an edit made against
	// this version or a later one is not stale.
	Version int64
}

const cohortCols = `id, name, env, position, kind, match, rules, size, created_at, updated_at, updated_by, version`

func scanCohort(row interface{ Scan(...any) error }) (CohortRow, error) {
	var c CohortRow
	var rules string
	var created, updated int64
	err := row.Scan(&c.ID, &c.Name, &c.Env, &c.Position, &c.Kind, &c.Match, &rules, &c.Size, &created, &updated, &c.UpdatedBy, &c.Version)
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
// nil. Expect is the rollout version the change was made against (0: do not check): an update is
// refused when that cohort changed after it; a new cohort is never refused for a version.
type CohortChange struct {
	Cohort  CohortRow
	Members []string
	Expect  int64
}

// SaveCohort inserts (ID 0, placed last) or updates a cohort and its members, bumps the rollout
// version and writes the audit row, in one transaction. A duplicate name is ErrDuplicateName (an
// ErrConflict); an update whose cohort changed after Expect is ErrConflict. It returns the new
// rollout version.
func (d *DB) SaveCohort(ctx context.Context, rolloutKey string, ch CohortChange, a Audit) (CohortRow, int64, error) {
	now := d.Now()
	c := ch.Cohort
	var version int64
	err := d.tx(ctx, func(tx txer) error {
		if c.ID != 0 {
			var changed int64
			err := tx.QueryRowContext(ctx, "SELECT version FROM cohorts WHERE id = ?", c.ID).Scan(&changed)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			} else if err != nil {
				return err
			}
			if err := checkTouchedNow(ctx, tx, rolloutKey, ch.Expect, changed); err != nil {
				return err
			}
		}
		_, after, err := bumpRollout(ctx, tx, rolloutKey, now, a.Actor)
		if err != nil {
			return err
		}
		version = after
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
			var err error
			c.ID, err = tx.insertID(ctx, `INSERT INTO cohorts (name, env, position, kind, match, rules, size, created_at, updated_at, updated_by, version)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.Name, c.Env, c.Position, c.Kind, c.Match, string(c.Rules), size, ms(now), ms(now), a.Actor, version)
			if err != nil {
				return uniqueName(err, c.Name)
			}
			if err := setOrderVersion(ctx, tx, version); err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, `UPDATE cohorts SET name = ?, env = ?, match = ?, rules = ?, size = ?, updated_at = ?, updated_by = ?, version = ? WHERE id = ?`,
				c.Name, c.Env, c.Match, string(c.Rules), size, ms(now), a.Actor, version, c.ID)
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
	if isUniqueViolationOf(err, "cohorts", "name") {
		return ErrDuplicateName(name)
	}
	return err
}

// checkTouchedNow is checkTouched against the rollout's current version, read inside tx.
func checkTouchedNow(ctx context.Context, tx txer, rolloutKey string, expect, changed int64) error {
	if expect == 0 {
		return nil
	}
	var current int64
	if err := tx.QueryRowContext(ctx, "SELECT version FROM rollout WHERE key = ?", rolloutKey).Scan(&current); err != nil {
		return err
	}
	return checkTouched(expect, changed, current)
}

// KeepDeletedCohorts is how long a deleted cohort is kept, with its members, for an undo.
const KeepDeletedCohorts = 7 * 24 * time.Hour

// DeletedCohort is a deleted cohort kept for an undo.
type DeletedCohort struct {
	ID        int64 // the deletion's id (RestoreCohort takes it)
	CohortID  int64 // the id the cohort had
	Name      string
	Env       string
	Position  int
	Kind      string
	Match     string
	Rules     json.RawMessage
	Size      int
	DeletedAt time.Time
	DeletedBy string
}

// DeleteCohort removes a cohort, keeping it and its members as a deletion that RestoreCohort can
// undo for KeepDeletedCohorts; it bumps the rollout version and writes the audit row, whose after
// names the deletion ({"deletion": id}). A cohort changed after expect is ErrConflict. Deletions
// older than KeepDeletedCohorts are purged on the way. It returns the new rollout version and the
// deletion's id.
func (d *DB) DeleteCohort(ctx context.Context, rolloutKey string, id, expect int64, a Audit) (version, deletion int64, err error) {
	now := d.Now()
	err = d.tx(ctx, func(tx txer) error {
		c, err := scanCohort(tx.QueryRowContext(ctx, "SELECT "+cohortCols+" FROM cohorts WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if err := checkTouchedNow(ctx, tx, rolloutKey, expect, c.Version); err != nil {
			return err
		}
		if _, version, err = bumpRollout(ctx, tx, rolloutKey, now, a.Actor); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM deleted_cohorts WHERE deleted_at < ?", ms(now.Add(-KeepDeletedCohorts))); err != nil {
			return err
		}
		deletion, err = tx.insertID(ctx, `INSERT INTO deleted_cohorts (cohort_id, name, env, position, kind, match, rules, size, created_at, deleted_at, deleted_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Name, c.Env, c.Position, c.Kind, c.Match, string(c.Rules), c.Size, ms(c.CreatedAt), ms(now), a.Actor)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO deleted_cohort_members (deletion_id, user_id) SELECT ?, user_id FROM cohort_members WHERE cohort_id = ?", deletion, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM cohorts WHERE id = ?", id); err != nil {
			return err
		}
		if err := setOrderVersion(ctx, tx, version); err != nil {
			return err
		}
		after := map[string]any{"deletion": deletion}
		if m, ok := a.After.(map[string]any); ok {
			maps.Copy(after, m)
		}
		a.After = after
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("db: delete cohort: %w", err)
	}
	return version, deletion, err
}

// DeletedCohorts lists the deletions that can still be undone, newest first.
func (d *DB) DeletedCohorts(ctx context.Context) ([]DeletedCohort, error) {
	return queryAll(ctx, d.R, "deleted cohorts", scanDeletedCohort, "SELECT "+deletedCohortCols+" FROM deleted_cohorts WHERE deleted_at >= ? ORDER BY id DESC",
		ms(d.Now().Add(-KeepDeletedCohorts)))
}

// DeletedCohortByID reads one deletion that can still be undone; else ErrNotFound.
func (d *DB) DeletedCohortByID(ctx context.Context, id int64) (DeletedCohort, error) {
	c, err := scanDeletedCohort(d.R.QueryRowContext(ctx, "SELECT "+deletedCohortCols+" FROM deleted_cohorts WHERE id = ? AND deleted_at >= ?", id, ms(d.Now().Add(-KeepDeletedCohorts))))
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

const deletedCohortCols = `id, cohort_id, name, env, position, kind, match, rules, size, deleted_at, deleted_by`

func scanDeletedCohort(row interface{ Scan(...any) error }) (DeletedCohort, error) {
	var c DeletedCohort
	var rules string
	var deleted int64
	err := row.Scan(&c.ID, &c.CohortID, &c.Name, &c.Env, &c.Position, &c.Kind, &c.Match, &rules, &c.Size, &deleted, &c.DeletedBy)
	c.Rules, c.DeletedAt = json.RawMessage(rules), fromMS(deleted)
	return c, err
}

// RestoreCohort undoes a deletion: the cohort comes back with its name, environment, rules and
// members, at the place it had (those after it move down one), under a new id; the deletion is
// forgotten. A deletion older than KeepDeletedCohorts (or already undone) is ErrNotFound; a
// cohort holding the name meanwhile is ErrDuplicateName. It bumps the rollout version and writes
// the audit row.
func (d *DB) RestoreCohort(ctx context.Context, rolloutKey string, deletion int64, a Audit) (CohortRow, int64, error) {
	now := d.Now()
	var c CohortRow
	var version int64
	err := d.tx(ctx, func(tx txer) error {
		del, err := scanDeletedCohort(tx.QueryRowContext(ctx, "SELECT "+deletedCohortCols+" FROM deleted_cohorts WHERE id = ? AND deleted_at >= ?",
			deletion, ms(now.Add(-KeepDeletedCohorts))))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		var clash int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM cohorts WHERE name = ?", del.Name).Scan(&clash); err != nil {
			return err
		}
		if clash > 0 {
			return ErrDuplicateName(del.Name)
		}
		if _, version, err = bumpRollout(ctx, tx, rolloutKey, now, a.Actor); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE cohorts SET position = position + 1 WHERE position >= ?", del.Position); err != nil {
			return err
		}
		id, err := tx.insertID(ctx, `INSERT INTO cohorts (name, env, position, kind, match, rules, size, created_at, updated_at, updated_by, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, del.Name, del.Env, del.Position, del.Kind, del.Match, string(del.Rules), del.Size, ms(now), ms(now), a.Actor, version)
		if err != nil {
			return uniqueName(err, del.Name)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO cohort_members (cohort_id, user_id) SELECT ?, user_id FROM deleted_cohort_members WHERE deletion_id = ?", id, deletion); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM deleted_cohorts WHERE id = ?", deletion); err != nil {
			return err
		}
		if err := setOrderVersion(ctx, tx, version); err != nil {
			return err
		}
		if c, err = scanCohort(tx.QueryRowContext(ctx, "SELECT "+cohortCols+" FROM cohorts WHERE id = ?", id)); err != nil {
			return err
		}
		a.Target = fmt.Sprintf("cohort:%d", id)
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("db: restore cohort: %w", err)
	}
	return c, version, err
}

// ReorderCohorts sets the evaluation order to ids (which must name every cohort once), bumps the
// rollout version and writes the audit row. It is ErrConflict when the order or the set of
// cohorts changed after expect (0: unchecked), and ErrBadOrder when ids do not name every cohort.
func (d *DB) ReorderCohorts(ctx context.Context, rolloutKey string, ids []int64, expect int64, a Audit) (int64, error) {
	now := d.Now()
	var version int64
	err := d.tx(ctx, func(tx txer) error {
		changed, err := orderVersion(ctx, tx)
		if err != nil {
			return err
		}
		if err := checkTouchedNow(ctx, tx, rolloutKey, expect, changed); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM cohorts").Scan(&n); err != nil {
			return err
		}
		if n != len(ids) {
			return ErrBadOrder
		}
		if _, version, err = bumpRollout(ctx, tx, rolloutKey, now, a.Actor); err != nil {
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
		if err := setOrderVersion(ctx, tx, version); err != nil {
			return err
		}
		return insertAudit(ctx, tx, now, a)
	})
	return version, err
}

// ErrBadOrder is a cohort order that does not name every cohort exactly once.
var ErrBadOrder = errors.New("db: the order must name every cohort exactly once")

// SaveReach merges registers into the stored reach registers of a stage, each register keeping
// the larger value. Several instances count decisions, each into its own sketch: merging (never
// overwriting) makes the stored sketch count the users of all of them (LoadReach reads it back).
func (d *DB) SaveReach(ctx context.Context, stage int, registers []byte) error {
	merged := append([]byte(nil), registers...)
	err := d.tx(ctx, func(tx txer) error {
		var stored []byte
		err := tx.QueryRowContext(ctx, "SELECT registers FROM rollout_reach WHERE stage = ?", stage).Scan(&stored)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if len(stored) == len(merged) {
			for i, v := range stored {
				merged[i] = max(merged[i], v)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO rollout_reach (stage, registers, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (stage) DO UPDATE SET registers = excluded.registers, updated_at = excluded.updated_at`, stage, merged, ms(d.Now()))
		return err
	})
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
	err = d.R.QueryRowContext(ctx, `SELECT coalesce(sum(CASE WHEN outcome IN ('wrong_key', 'wrong_environment') THEN 1 ELSE 0 END), 0), count(*) FROM (
			SELECT json_extract(after, '$.outcome') AS outcome FROM audit_log
			WHERE at >= ? AND at < ? AND action = 'environment.verify' AND target = 'environment:production') AS v
		WHERE outcome IN ('ok', 'wrong_key', 'wrong_environment')`, ms(since), untilMS).Scan(&f.Bad, &f.Total)
	if err != nil {
		return nil, fmt.Errorf("db: guardrail verifications: %w", err)
	}
	out["verify_failures"] = f
	return out, nil
}
