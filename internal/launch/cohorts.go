package launch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// CohortInput is a cohort as a person gives it: an allow-list (UserIDs) or rules. For an update,
// nil UserIDs keeps an allow-list's members.
type CohortInput struct {
	Name    string
	Env     string
	UserIDs []string
	Match   string
	Rules   []rollout.Rule
}

// CheckCohort checks a cohort as a person gives it without storing anything: every problem at
// once, as validation.Errors naming the fields (rules[i].op, ...). Forms use it to report all
// their problems in one answer.
func CheckCohort(in CohortInput) error {
	_, err := rollout.CheckCohort(rollout.Cohort{Name: in.Name, Env: rollout.Env(in.Env), UserIDs: in.UserIDs, Match: in.Match, Rules: in.Rules})
	return fieldErrors(err)
}

// Cohorts lists the cohorts in evaluation order (block-lists first), with their sizes.
func (s *Service) Cohorts(ctx context.Context) ([]db.CohortRow, error) {
	rows, err := s.db.ListCohorts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]db.CohortRow, 0, len(rows))
	for _, off := range []bool{true, false} {
		for _, c := range rows {
			if (c.Env == string(rollout.Off)) == off {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// CreateCohort checks and stores a new cohort, placed last. Bad input is validation.Errors. A new
// cohort touches nothing that exists, so it is never refused for a version (expect is kept for the
// callers' symmetry and ignored). A production cohort widens production: while a guardrail is
// breached it needs the override (*BreachedError). It returns the cohort and the new rollout
// version.
func (s *Service) CreateCohort(ctx context.Context, in CohortInput, expect int64, a db.Audit, o ...Overriding) (db.CohortRow, int64, error) {
	return s.saveCohort(ctx, 0, in, expect, a, o)
}

// UpdateCohort replaces a cohort's name, environment and rules (or members, when given). It is
// ErrStale only when that cohort changed after expect (0: unchecked), not when anything else did.
// A change that can send more users to production (cohortWidens) needs the override while a
// guardrail is breached (*BreachedError).
func (s *Service) UpdateCohort(ctx context.Context, id int64, in CohortInput, expect int64, a db.Audit, o ...Overriding) (db.CohortRow, int64, error) {
	cur, err := s.db.Cohort(ctx, id)
	if err != nil {
		return db.CohortRow{}, 0, err
	}
	if cur.Kind == "list" && in.Rules == nil && in.UserIDs == nil {
		// Keep the members: check the rest with a placeholder list.
		return s.saveCohortKeepingMembers(ctx, cur, in, expect, a, o)
	}
	return s.saveCohort(ctx, id, in, expect, a, o)
}

func (s *Service) saveCohortKeepingMembers(ctx context.Context, cur db.CohortRow, in CohortInput, expect int64, a db.Audit, o []Overriding) (db.CohortRow, int64, error) {
	c, err := rollout.CheckCohort(rollout.Cohort{Name: in.Name, Env: rollout.Env(in.Env), UserIDs: []string{}})
	if err != nil {
		return db.CohortRow{}, 0, fieldErrors(err)
	}
	row := cur
	row.Name, row.Env = c.Name, string(c.Env)
	a.Action, a.Target = "cohort.update", fmt.Sprintf("cohort:%d", cur.ID)
	after := map[string]any{"name": row.Name, "environment": row.Env}
	if err := s.checkCohortWidening(ctx, cohortWidens(cur, row, false), o, after); err != nil {
		return db.CohortRow{}, 0, err
	}
	a.Before, a.After = map[string]any{"name": cur.Name, "environment": cur.Env}, after
	saved, v, err := s.db.SaveCohort(ctx, s.cfg.Key, db.CohortChange{Cohort: row, Expect: expect}, a)
	if err != nil {
		return saved, v, conflict(err)
	}
	s.rebuildAfterCommit(ctx)
	return saved, v, nil
}

func (s *Service) saveCohort(ctx context.Context, id int64, in CohortInput, expect int64, a db.Audit, o []Overriding) (db.CohortRow, int64, error) {
	if id == 0 {
		expect = 0
	}
	if in.UserIDs == nil && in.Rules == nil {
		in.UserIDs = []string{} // a new, empty allow-list (members imported next)
	}
	c, err := rollout.CheckCohort(rollout.Cohort{Name: in.Name, Env: rollout.Env(in.Env), UserIDs: in.UserIDs, Match: in.Match, Rules: in.Rules})
	if err != nil {
		return db.CohortRow{}, 0, fieldErrors(err)
	}
	row := db.CohortRow{ID: id, Name: c.Name, Env: string(c.Env), Kind: "list", Rules: json.RawMessage("[]")}
	after := map[string]any{"name": c.Name, "environment": c.Env}
	if !c.IsList() {
		row.Kind, row.Match = "rules", c.Match
		if row.Rules, err = json.Marshal(c.Rules); err != nil {
			return db.CohortRow{}, 0, err
		}
		after["match"], after["rules"] = c.Match, c.Rules
	} else {
		after["members"] = len(c.UserIDs)
	}
	var members []string
	if c.IsList() {
		members = c.UserIDs
	}
	a.Action, a.After = "cohort.create", after
	widens := c.Env == rollout.Production
	if id != 0 {
		a.Action, a.Target = "cohort.update", fmt.Sprintf("cohort:%d", id)
		cur, err := s.db.Cohort(ctx, id)
		if err != nil {
			return db.CohortRow{}, 0, err
		}
		a.Before = map[string]any{"name": cur.Name, "environment": cur.Env, "match": cur.Match, "rules": cur.Rules, "members": cur.Size}
		widens = cohortWidens(cur, row, c.IsList())
	}
	if err := s.checkCohortWidening(ctx, widens, o, after); err != nil {
		if taken := s.nameTaken(ctx, c.Name, id); taken != nil {
			return db.CohortRow{}, 0, taken // what to fix comes before what to confirm
		}
		return db.CohortRow{}, 0, err
	}
	saved, v, err := s.db.SaveCohort(ctx, s.cfg.Key, db.CohortChange{Cohort: row, Members: members, Expect: expect}, a)
	if err != nil {
		return saved, v, conflict(err)
	}
	s.forgetMembers(saved.ID)
	s.rebuildAfterCommit(ctx)
	return saved, v, nil
}

// nameTaken is the validation error of a cohort name that another cohort than id holds, or nil.
// The database refuses such a name when storing; this says it before a confirmation is asked.
func (s *Service) nameTaken(ctx context.Context, name string, id int64) error {
	cs, err := s.db.ListCohorts(ctx)
	if err != nil {
		return nil
	}
	for _, c := range cs {
		if c.ID != id && c.Name == name {
			return conflict(db.ErrDuplicateName(name))
		}
	}
	return nil
}

// cohortWidens reports whether changing cur into next can send more users to production: it
// becomes a production cohort, it stops being a block-list, or a production cohort gets other
// rules, another match or (members) a new member list.
func cohortWidens(cur, next db.CohortRow, members bool) bool {
	switch {
	case next.Env == string(rollout.Production) && cur.Env != string(rollout.Production):
		return true
	case cur.Env == string(rollout.Off) && next.Env != string(rollout.Off):
		return true
	case next.Env != string(rollout.Production):
		return false
	}
	return members || next.Kind != cur.Kind || next.Match != cur.Match || !sameRules(cur.Rules, next.Rules)
}

// sameRules compares two cohorts' stored rules as rules, not as bytes.
func sameRules(a, b json.RawMessage) bool {
	var ra, rb []rollout.Rule
	if json.Unmarshal(a, &ra) != nil || json.Unmarshal(b, &rb) != nil {
		return false
	}
	ja, _ := json.Marshal(ra)
	jb, _ := json.Marshal(rb)
	return bytes.Equal(ja, jb)
}

// forgetMembers drops the cached members of allow-lists whose members were just replaced, so the
// next rebuild reads them (the cache is keyed by updated_at, in milliseconds, which two changes
// in one millisecond share).
func (s *Service) forgetMembers(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.members, id)
	}
}

// ImportMembers replaces an allow-list's members with the ids in a file: one id a line, or CSV
// whose first column (or a column named user_id or id) holds them. New members of a production
// allow-list widen production: while a guardrail is breached that needs the override
// (*BreachedError). It returns how many ids the list now holds.
func (s *Service) ImportMembers(ctx context.Context, id int64, file []byte, expect int64, a db.Audit, o ...Overriding) (int, int64, error) {
	cur, err := s.db.Cohort(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	if cur.Kind != "list" {
		return 0, 0, validation.Problem("this cohort is defined by rules; only allow-lists take a list of user ids")
	}
	raw, err := ParseIDFile(file)
	if err != nil {
		return 0, 0, err
	}
	ids, err := rollout.CheckUserIDs(raw)
	if err != nil {
		return 0, 0, fieldErrors(err)
	}
	a.Action, a.Target = "cohort.import", fmt.Sprintf("cohort:%d", id)
	after := map[string]any{"members": len(ids)}
	if err := s.checkCohortWidening(ctx, cur.Env == string(rollout.Production), o, after); err != nil {
		return 0, 0, err
	}
	a.Before, a.After = map[string]any{"members": cur.Size}, after
	saved, v, err := s.db.SaveCohort(ctx, s.cfg.Key, db.CohortChange{Cohort: cur, Members: ids, Expect: expect}, a)
	if err != nil {
		return 0, v, conflict(err)
	}
	s.forgetMembers(id)
	s.rebuildAfterCommit(ctx)
	return saved.Size, v, nil
}

// ParseIDFile reads user ids from an uploaded file: plain lines, or CSV (detected by a comma or
// a quote on the first line) taking the column named user_id or id, else the first. A first
// line that is just user_id or id is a one-column file's header. The file must be UTF-8.
func ParseIDFile(file []byte) ([]string, error) {
	file = bytes.TrimPrefix(file, []byte("\xef\xbb\xbf"))
	if n := invalidUTF8At(file); n >= 0 {
		// Decisions compare ids with what apps send as UTF-8: a Latin-1 file would never match.
		return nil, validation.Errors{"user_ids": fmt.Sprintf("line %d is not UTF-8 text; save the file as UTF-8", bytes.Count(file[:n], []byte("\n"))+1)}
	}
	first, _, _ := bytes.Cut(file, []byte("\n"))
	if !bytes.ContainsAny(first, ",\"") {
		var ids []string
		sc := bufio.NewScanner(bytes.NewReader(file))
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for line := 0; sc.Scan(); line++ {
			if line == 0 && isIDHeader(sc.Text()) {
				continue
			}
			ids = append(ids, strings.TrimSpace(sc.Text()))
			if len(ids) > rollout.MaxAllowList {
				return nil, validation.Errors{"user_ids": fmt.Sprintf("the file has more than %d ids", rollout.MaxAllowList)}
			}
		}
		if err := sc.Err(); err != nil {
			// The only error reading from memory: a line past the buffer.
			return nil, validation.Problem("the file is not a list of ids, one a line: a line is longer than 64 KiB")
		}
		return ids, nil
	}
	r := csv.NewReader(bytes.NewReader(file))
	r.FieldsPerRecord = -1
	col, header := 0, true
	var ids []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, validation.Problem("the file is not valid CSV: " + err.Error())
		}
		if header {
			header = false
			found := false
			for i, h := range rec {
				if isIDHeader(h) {
					col, found = i, true
					break
				}
			}
			if found {
				continue
			}
		}
		if col < len(rec) {
			ids = append(ids, rec[col])
		}
		if len(ids) > rollout.MaxAllowList {
			return nil, validation.Errors{"user_ids": fmt.Sprintf("the file has more than %d ids", rollout.MaxAllowList)}
		}
	}
	return ids, nil
}

// isIDHeader reports whether a file's header cell names the id column.
func isIDHeader(h string) bool {
	h = strings.ToLower(strings.TrimSpace(h))
	return h == "user_id" || h == "id"
}

// Members lists an allow-list's ids (for export).
func (s *Service) Members(ctx context.Context, id int64) ([]string, error) {
	return s.db.CohortMembers(ctx, id)
}

// ExportMembers lists cohort id's members for export and writes a's audit row first: a list of
// user ids leaves the dashboard, so the log says who took it and how many.
func (s *Service) ExportMembers(ctx context.Context, id int64, a db.Audit) ([]string, error) {
	ids, err := s.Members(ctx, id)
	if err != nil {
		return nil, err
	}
	a.Target, a.After = "cohort:"+strconv.FormatInt(id, 10), map[string]any{"members": len(ids)}
	if err := s.db.InsertAudit(ctx, a); err != nil {
		return nil, err
	}
	return ids, nil
}

// DeleteCohort removes a cohort, keeping it with its members for db.KeepDeletedCohorts so that
// RestoreCohort can undo the deletion. It is ErrStale only when that cohort changed after expect
// (0: unchecked). Deleting a block-list lets its users into production: while a guardrail is
// breached that needs the override (*BreachedError). It returns the new rollout version and the
// deletion's id.
func (s *Service) DeleteCohort(ctx context.Context, id, expect int64, a db.Audit, o ...Overriding) (version, deletion int64, err error) {
	cur, err := s.db.Cohort(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	after := map[string]any{}
	if err := s.checkCohortWidening(ctx, cur.Env == string(rollout.Off), o, after); err != nil {
		return 0, 0, err
	}
	if len(after) > 0 {
		a.After = after
	}
	a.Action, a.Target = "cohort.delete", fmt.Sprintf("cohort:%d", id)
	a.Before = map[string]any{"name": cur.Name, "environment": cur.Env, "match": cur.Match, "rules": cur.Rules, "members": cur.Size, "position": cur.Position}
	version, deletion, err = s.db.DeleteCohort(ctx, s.cfg.Key, id, expect, a)
	if err != nil {
		return version, 0, conflict(err)
	}
	s.rebuildAfterCommit(ctx)
	return version, deletion, nil
}

// DeletedCohorts lists the deletions that can still be undone, newest first.
func (s *Service) DeletedCohorts(ctx context.Context) ([]db.DeletedCohort, error) {
	return s.db.DeletedCohorts(ctx)
}

// RestoreCohort undoes a deletion (see db.RestoreCohort): the cohort comes back with its name,
// environment, rules, members and place. A deletion too old or already undone is db.ErrNotFound;
// a cohort holding its name now is validation.Errors saying so. Bringing back a production
// cohort widens production: while a guardrail is breached that needs the override
// (*BreachedError).
func (s *Service) RestoreCohort(ctx context.Context, deletion int64, a db.Audit, o ...Overriding) (db.CohortRow, int64, error) {
	del, err := s.db.DeletedCohortByID(ctx, deletion)
	if err != nil {
		return db.CohortRow{}, 0, err
	}
	after := map[string]any{"name": del.Name, "environment": del.Env, "members": del.Size, "position": del.Position, "deletion": deletion}
	if err := s.checkCohortWidening(ctx, del.Env == string(rollout.Production), o, after); err != nil {
		return db.CohortRow{}, 0, err
	}
	a.Action, a.After = "cohort.restore", after
	c, v, err := s.db.RestoreCohort(ctx, s.cfg.Key, deletion, a)
	var dup db.ErrDuplicateName
	if errors.As(err, &dup) {
		return c, v, validation.Errors{"name": fmt.Sprintf("a cohort named %q exists now; rename or delete it, then undo the deletion", string(dup))}
	}
	if err != nil {
		return c, v, err
	}
	s.rebuildAfterCommit(ctx)
	return c, v, nil
}

// ReorderCohorts sets the evaluation order (block-lists are evaluated first whatever their place).
// ids must name every cohort exactly once. It is ErrStale only when the order, or the set of
// cohorts, changed after expect (0: unchecked).
func (s *Service) ReorderCohorts(ctx context.Context, ids []int64, expect int64, a db.Audit) (int64, error) {
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			return 0, validation.Problem("the order must name every cohort exactly once")
		}
		seen[id] = true
	}
	cur, err := s.Cohorts(ctx)
	if err != nil {
		return 0, err
	}
	was := make([]int64, 0, len(cur))
	for _, c := range cur {
		was = append(was, c.ID)
	}
	a.Action, a.Target = "cohort.reorder", "rollout:"+s.cfg.Key
	a.Before, a.After = map[string]any{"order": was}, map[string]any{"order": ids}
	v, err := s.db.ReorderCohorts(ctx, s.cfg.Key, ids, expect, a)
	if errors.Is(err, db.ErrBadOrder) {
		return v, validation.Problem("the order must name every cohort exactly once")
	}
	if err != nil {
		return v, conflict(err)
	}
	s.rebuildAfterCommit(ctx)
	return v, nil
}

// invalidUTF8At is the offset of the first byte of b that is not UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}
