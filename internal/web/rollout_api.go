package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// rolloutJSON is the rollout in the API. key, state, stage, percent, stages and version are the
// documented contract; the rest is added detail.
type rolloutJSON struct {
	Key         string                  `json:"key"`
	State       string                  `json:"state"`
	Stage       int                     `json:"stage"`
	Percent     float64                 `json:"percent"`
	Stages      []rollout.StageInput    `json:"stages"`
	Version     int64                   `json:"version"`
	AutoAdvance bool                    `json:"auto_advance"`
	OnBreach    string                  `json:"on_breach"`
	Guardrails  []launch.GuardrailInput `json:"guardrails"`
	Held        string                  `json:"held,omitempty"`
	// AdvanceWithoutVolume lets auto-advance proceed on guardrails below their minimum volume.
	AdvanceWithoutVolume bool `json:"advance_without_volume"`
	// StageEnteredBy is how the current stage was entered: auto_advance, hand, guardrail, plan
	// ("" when not recorded).
	StageEnteredBy string           `json:"stage_entered_by"`
	StageStartedAt *string          `json:"stage_started_at"`
	NextAdvanceAt  *string          `json:"next_advance_at"`
	UpdatedAt      *string          `json:"updated_at"`
	UpdatedBy      string           `json:"updated_by,omitempty"`
	Reach          []stageReachJSON `json:"reach"`
}

type stageReachJSON struct {
	Stage   int     `json:"stage"`
	Percent float64 `json:"percent"`
	Users   int64   `json:"users"` // distinct users decided into production at this stage (approximate)
}

func (s *Server) rolloutJSON(r rollout.Rollout) rolloutJSON {
	out := rolloutJSON{Key: r.Key, State: string(r.State), Stage: r.Stage, Percent: r.Percent(), Stages: rollout.StageInputs(r.Stages),
		Version: r.Version, AutoAdvance: r.AutoAdvance, OnBreach: r.OnBreach, Guardrails: launch.GuardrailInputs(r.Guardrails), Held: r.Held,
		AdvanceWithoutVolume: r.AdvanceWithoutVolume, StageEnteredBy: r.EnteredBy, StageStartedAt: optTime(r.StageStartedAt), UpdatedAt: optTime(r.UpdatedAt), UpdatedBy: r.UpdatedBy, Reach: []stageReachJSON{}}
	if at, ok := r.NextAdvance(); ok {
		out.NextAdvanceAt = optTime(at)
	}
	for i, st := range r.Stages {
		if i+1 > r.Stage {
			break
		}
		out.Reach = append(out.Reach, stageReachJSON{Stage: i + 1, Percent: st.Percent, Users: s.rollout.Reach(i + 1)})
	}
	return out
}

// apiShowRollout is GET /api/v1/rollout.
func (s *Server) apiShowRollout(w http.ResponseWriter, r *http.Request) error {
	rl := s.rollout.Snapshot().Rollout
	w.Header().Set("ETag", versionETag(rl.Version))
	return writeJSON(w, http.StatusOK, s.rolloutJSON(rl))
}

func versionETag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// expectedVersion reads the version a change was made against: the If-Match header ("12" or
// 12) or the body's version field; 0 when neither is given.
func expectedVersion(r *http.Request, field *int64) (int64, error) {
	if h := strings.TrimSpace(r.Header.Get("If-Match")); h != "" && h != "*" {
		v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
		if err != nil || v <= 0 {
			return 0, errBadRequest("If-Match must be the rollout's version, e.g. \"12\"")
		}
		if field != nil && *field != 0 && *field != v {
			return 0, errBadRequest("If-Match and the version field disagree")
		}
		return v, nil
	}
	if field != nil {
		if *field < 0 {
			return 0, errBadRequest("version must be the rollout's version from GET /api/v1/rollout")
		}
		return *field, nil
	}
	return 0, nil
}

// rolloutError maps the launch service's errors: a stale version, a widening change while
// guardrails are breached, a versionless advance right after an auto-advance, and a rollback
// from a stage the rollout has left are 409.
func rolloutError(err error) error {
	var breached *launch.BreachedError
	var auto *launch.AutoAdvancedError
	var moved *launch.StageMovedError
	switch {
	case errors.As(err, &moved):
		return &httpError{status: http.StatusConflict, code: "stage_changed", msg: moved.Error()}
	case errors.Is(err, launch.ErrStale):
		return &httpError{status: http.StatusConflict, code: "version_conflict", msg: "the rollout changed since the version you sent; GET it again and retry"}
	case errors.As(err, &breached):
		return &httpError{status: http.StatusConflict, code: "guardrails_breached", msg: breached.Error() + ` (send "override_guardrails": true, or ?override_guardrails=true where there is no body, to go ahead)`}
	case errors.As(err, &auto):
		return &httpError{status: http.StatusConflict, code: "auto_advanced", msg: auto.Error() + ` (If-Match or "version", from GET /api/v1/rollout)`}
	}
	return err
}

type planJSON struct {
	Stages      *[]rollout.StageInput    `json:"stages"`
	Guardrails  *[]launch.GuardrailInput `json:"guardrails"`
	AutoAdvance *bool                    `json:"auto_advance"`
	OnBreach    *string                  `json:"on_breach"`
	Version     *int64                   `json:"version"`
	// AdvanceWithoutVolume: see rolloutJSON.
	AdvanceWithoutVolume *bool `json:"advance_without_volume"`
}

// apiUpdateRollout is PUT /api/v1/rollout: the plan, guardrails and settings; fields left out
// keep their values.
func (s *Server) apiUpdateRollout(w http.ResponseWriter, r *http.Request) error {
	var p planJSON
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	expect, err := expectedVersion(r, p.Version)
	if err != nil {
		return err
	}
	rl, err := s.rollout.Configure(r.Context(), launch.Plan{Stages: p.Stages, Guardrails: p.Guardrails, AutoAdvance: p.AutoAdvance, OnBreach: p.OnBreach,
		AdvanceWithoutVolume: p.AdvanceWithoutVolume}, expect, s.auditFor(r, "rollout.configure"))
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(rl.Version))
	return writeJSON(w, http.StatusOK, s.rolloutJSON(rl))
}

// apiActRollout is POST /api/v1/rollout/{action} (advance, pause, resume, rollback, kill); it
// answers the new state.
func (s *Server) apiActRollout(w http.ResponseWriter, r *http.Request) error {
	act, ok := launch.ParseAction(chi.URLParam(r, "action"))
	if !ok {
		return errNotFound("there is no rollout action " + strconv.Quote(chi.URLParam(r, "action")) + "; use advance, pause, resume, rollback, kill or revive")
	}
	return s.actOnRollout(w, r, act)
}

// apiReviveRollout is POST /api/v1/rollout/revive {"stage":N}, an admin's way out of killed. Its
// route is static (it needs another scope), so it has no {action} to read.
func (s *Server) apiReviveRollout(w http.ResponseWriter, r *http.Request) error {
	return s.actOnRollout(w, r, launch.Revive)
}

// actOnRollout applies an action. A kill ignores any version it carries, even one that is not a
// version: it is never refused for being late; so does a pause. A rollback's stage is the stage
// the caller saw: given, the version is not checked and the rollback is refused only when the
// rollout has left that stage.
func (s *Server) actOnRollout(w http.ResponseWriter, r *http.Request, act launch.Action) error {
	var body struct {
		Version            *int64 `json:"version"`
		Stage              *int   `json:"stage"`
		OverrideGuardrails bool   `json:"override_guardrails"`
	}
	if err := decodeOptionalJSON(r, &body); err != nil && act != launch.Kill {
		return err
	}
	expect, err := expectedVersion(r, body.Version)
	if err != nil && act != launch.Kill {
		return err
	}
	stage := 0
	switch act {
	case launch.Revive:
		if body.Stage == nil {
			return writeFieldErrors(w, r, map[string]string{"stage": "name the stage to return to (0 is not started)"})
		}
		stage = *body.Stage
	case launch.Rollback:
		if body.Stage != nil {
			if *body.Stage < 1 {
				return writeFieldErrors(w, r, map[string]string{"stage": "stage is the stage you saw the rollout at, from 1; there is nothing to roll back from 0"})
			}
			stage = *body.Stage
		}
	}
	rl, err := s.rollout.Act(r.Context(), act, stage, expect, body.OverrideGuardrails, s.auditFor(r, "rollout."+string(act)))
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(rl.Version))
	return writeJSON(w, http.StatusOK, s.rolloutJSON(rl))
}

// cohortJSON is a cohort in the API.
type cohortJSON struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Environment string         `json:"environment"`
	Kind        string         `json:"kind"` // list | rules
	Position    int            `json:"position"`
	Size        *int           `json:"size,omitempty"`
	Match       string         `json:"match,omitempty"`
	Rules       []rollout.Rule `json:"rules,omitempty"`
	UpdatedAt   string         `json:"updated_at"`
	Version     int64          `json:"version"` // the rollout version at which it last changed
}

func toCohortJSON(c db.CohortRow) cohortJSON {
	out := cohortJSON{ID: itoa(c.ID), Name: c.Name, Environment: c.Env, Kind: c.Kind, Position: c.Position, UpdatedAt: rfc3339(c.UpdatedAt), Version: c.Version}
	if c.Kind == "list" {
		n := c.Size
		out.Size = &n
	} else {
		out.Match = c.Match
		_ = json.Unmarshal(c.Rules, &out.Rules)
	}
	return out
}

// apiListCohorts is GET /api/v1/rollout/cohorts: in evaluation order.
func (s *Server) apiListCohorts(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.rollout.Cohorts(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Cohorts []cohortJSON `json:"cohorts"`
		Version int64        `json:"version"`
	}{Cohorts: []cohortJSON{}, Version: s.rollout.Snapshot().Version()}
	for _, c := range cs {
		out.Cohorts = append(out.Cohorts, toCohortJSON(c))
	}
	return writeJSON(w, http.StatusOK, out)
}

type cohortBody struct {
	Name        *string         `json:"name"`
	Environment *string         `json:"environment"`
	UserIDs     *[]string       `json:"user_ids"`
	Match       *string         `json:"match"`
	Rules       *[]rollout.Rule `json:"rules"`
	Version     *int64          `json:"version"`
	// OverrideGuardrails lets a change that can send more users to production through while a
	// guardrail is breached (audited as such).
	OverrideGuardrails bool `json:"override_guardrails"`
}

// queryOverride reads ?override_guardrails=true, the override of the changes that have no body.
func queryOverride(r *http.Request) (launch.Overriding, error) {
	switch v := r.URL.Query().Get("override_guardrails"); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, errBadRequest("override_guardrails must be true or false (got %q)", validation.Clip(v, 20))
	}
}

func (b cohortBody) input(cur *db.CohortRow) launch.CohortInput {
	var in launch.CohortInput
	if cur != nil {
		in.Name, in.Env, in.Match = cur.Name, cur.Env, cur.Match
		if cur.Kind == "rules" {
			_ = json.Unmarshal(cur.Rules, &in.Rules)
		}
	}
	if b.Name != nil {
		in.Name = *b.Name
	}
	if b.Environment != nil {
		in.Env = *b.Environment
	}
	if b.Match != nil {
		in.Match = *b.Match
	}
	if b.Rules == nil && b.UserIDs == nil {
		return in
	}
	// The kind the body gives replaces the current one; a body giving both is refused by the check.
	in.Rules, in.UserIDs = nil, nil
	if b.Rules != nil {
		if in.Rules = *b.Rules; in.Rules == nil {
			in.Rules = []rollout.Rule{}
		}
	}
	if b.UserIDs != nil {
		if in.UserIDs = *b.UserIDs; in.UserIDs == nil {
			in.UserIDs = []string{}
		}
	}
	return in
}

// apiCreateCohort is POST /api/v1/rollout/cohorts.
func (s *Server) apiCreateCohort(w http.ResponseWriter, r *http.Request) error {
	allowLargeBody(w, r, s.cfg.MaxUploadBytes)
	var b cohortBody
	if err := decodeJSON(r, &b); err != nil {
		return err
	}
	expect, err := expectedVersion(r, b.Version)
	if err != nil {
		return err
	}
	c, v, err := s.rollout.CreateCohort(r.Context(), b.input(nil), expect, s.auditFor(r, "cohort.create"), launch.Overriding(b.OverrideGuardrails))
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(v))
	return writeJSON(w, http.StatusCreated, toCohortJSON(c))
}

// apiUpdateCohort is PATCH /api/v1/rollout/cohorts/{id}: fields left out keep their values.
func (s *Server) apiUpdateCohort(w http.ResponseWriter, r *http.Request) error {
	allowLargeBody(w, r, s.cfg.MaxUploadBytes)
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var b cohortBody
	if err := decodeJSON(r, &b); err != nil {
		return err
	}
	expect, err := expectedVersion(r, b.Version)
	if err != nil {
		return err
	}
	cur, err := s.pathCohort(r)
	if err != nil {
		return err
	}
	c, v, err := s.rollout.UpdateCohort(r.Context(), id, b.input(&cur), expect, s.auditFor(r, "cohort.update"), launch.Overriding(b.OverrideGuardrails))
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(v))
	return writeJSON(w, http.StatusOK, toCohortJSON(c))
}

// apiDeleteCohort is DELETE /api/v1/rollout/cohorts/{id}.
func (s *Server) apiDeleteCohort(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	expect, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	override, err := queryOverride(r)
	if err != nil {
		return err
	}
	v, _, err := s.rollout.DeleteCohort(r.Context(), id, expect, s.auditFor(r, "cohort.delete"), override)
	if errors.Is(err, db.ErrNotFound) {
		return errNotFound(fmt.Sprintf("there is no cohort %d", id))
	}
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(v))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiReorderCohorts is PUT /api/v1/rollout/cohorts/order {"ids":[..]}.
func (s *Server) apiReorderCohorts(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		IDs     []string `json:"ids"`
		Version *int64   `json:"version"`
	}
	if err := decodeJSON(r, &b); err != nil {
		return err
	}
	expect, err := expectedVersion(r, b.Version)
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(b.IDs))
	for _, v := range b.IDs {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return writeFieldErrors(w, r, map[string]string{"ids": fmt.Sprintf("%q is not a cohort id", v)})
		}
		ids = append(ids, id)
	}
	v, err := s.rollout.ReorderCohorts(r.Context(), ids, expect, s.auditFor(r, "cohort.reorder"))
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(v))
	return s.apiListCohorts(w, r)
}

// deletedCohortJSON is a deletion that can be undone.
type deletedCohortJSON struct {
	ID              string         `json:"id"`
	CohortID        string         `json:"cohort_id"`
	Name            string         `json:"name"`
	Environment     string         `json:"environment"`
	Kind            string         `json:"kind"`
	Position        int            `json:"position"`
	Size            *int           `json:"size,omitempty"`
	Match           string         `json:"match,omitempty"`
	Rules           []rollout.Rule `json:"rules,omitempty"`
	DeletedAt       string         `json:"deleted_at"`
	DeletedBy       string         `json:"deleted_by"`
	RestorableUntil string         `json:"restorable_until"`
}

// apiListDeletedCohorts is GET /api/v1/rollout/cohorts/deleted: deletions that can be undone.
func (s *Server) apiListDeletedCohorts(w http.ResponseWriter, r *http.Request) error {
	dels, err := s.rollout.DeletedCohorts(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Deleted []deletedCohortJSON `json:"deleted"`
	}{Deleted: []deletedCohortJSON{}}
	for _, d := range dels {
		j := deletedCohortJSON{ID: itoa(d.ID), CohortID: itoa(d.CohortID), Name: d.Name, Environment: d.Env, Kind: d.Kind, Position: d.Position,
			DeletedAt: rfc3339(d.DeletedAt), DeletedBy: d.DeletedBy, RestorableUntil: rfc3339(d.DeletedAt.Add(db.KeepDeletedCohorts))}
		if d.Kind == "list" {
			n := d.Size
			j.Size = &n
		} else {
			j.Match = d.Match
			_ = json.Unmarshal(d.Rules, &j.Rules)
		}
		out.Deleted = append(out.Deleted, j)
	}
	return writeJSON(w, http.StatusOK, out)
}

// apiRestoreCohort is POST /api/v1/rollout/cohorts/deleted/{id}/restore: undo a deletion.
func (s *Server) apiRestoreCohort(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	override, err := queryOverride(r)
	if err != nil {
		return err
	}
	c, v, err := s.rollout.RestoreCohort(r.Context(), id, s.auditFor(r, "cohort.restore"), override)
	if errors.Is(err, db.ErrNotFound) {
		return errNotFound(fmt.Sprintf("there is no deletion %d that can be undone (deletions are kept for 7 days, and undone once)", id))
	}
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(v))
	return writeJSON(w, http.StatusCreated, toCohortJSON(c))
}

// pathCohort loads the cohort named in the path; an unknown one is 404.
func (s *Server) pathCohort(r *http.Request) (db.CohortRow, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return db.CohortRow{}, err
	}
	c, err := s.db.Cohort(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return c, errNotFound(fmt.Sprintf("there is no cohort %d", id))
	}
	return c, err
}

// defaultMaxUpload bounds an allow-list upload by default (Config.MaxUploadBytes): a million
// ids of typical length.
const defaultMaxUpload = 64 << 20

// exportMembers is GET /api/v1/rollout/cohorts/{id}/members and, for admins in the browser,
// GET /rollout/cohorts/{id}/members: one id a line.
func (s *Server) exportMembers(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pathCohort(r)
	if err != nil {
		return err
	}
	id := c.ID
	ids, err := s.rollout.ExportMembers(r.Context(), id, s.auditFor(r, "cohort.export")) // audited: the ids leave the dashboard
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="cohort-`+itoa(id)+`-`+safeFileName(c.Name)+`.txt"`)
	bw := make([]byte, 0, 64<<10)
	for _, u := range ids {
		bw = append(append(bw, u...), '\n')
		if len(bw) > 60<<10 {
			if _, err := w.Write(bw); err != nil {
				return nil
			}
			bw = bw[:0]
		}
	}
	_, _ = w.Write(bw)
	return nil
}

// apiImportMembers is PUT /api/v1/rollout/cohorts/{id}/members: the body is the list, one id a
// line, or CSV (a user_id or id column, else the first). It replaces the members.
func (s *Server) apiImportMembers(w http.ResponseWriter, r *http.Request) error {
	allowLargeBody(w, r, s.cfg.MaxUploadBytes)
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	expect, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, s.cfg.MaxUploadBytes)
	if err != nil {
		return err
	}
	override, err := queryOverride(r)
	if err != nil {
		return err
	}
	n, v, err := s.rollout.ImportMembers(r.Context(), id, body, expect, s.auditFor(r, "cohort.import"), override)
	if errors.Is(err, db.ErrNotFound) {
		return errNotFound(fmt.Sprintf("there is no cohort %d", id))
	}
	if err != nil {
		return rolloutError(err)
	}
	w.Header().Set("ETag", versionETag(v))
	return writeJSON(w, http.StatusOK, map[string]any{"id": itoa(id), "size": n, "version": v})
}

// safeFileName keeps a name's letters, digits, _ and - for a download's file name.
func safeFileName(s string) string {
	return validation.Clip(strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			return c
		}
		return '_'
	}, s), 80)
}
