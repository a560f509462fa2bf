package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Action is one of the plan's actions.
type Action string

// The actions. Operators may take every one but Revive, which is an admin's.
const (
	Advance  Action = "advance"
	Pause    Action = "pause"
	Resume   Action = "resume"
	Rollback Action = "rollback"
	Kill     Action = "kill"
	Revive   Action = "revive" // leave killed for a named stage
)

// ParseAction validates an action name from a URL.
func ParseAction(s string) (Action, bool) {
	switch a := Action(s); a {
	case Advance, Pause, Resume, Rollback, Kill, Revive:
		return a, true
	}
	return "", false
}

// Act applies an action made against version expect (0: the current one) and audits it with
// the state before and after. A transition the state does not allow is a validation.Problem; a
// stale version is ErrStale. stage is the stage to return to, for Revive, and the stage the
// caller saw, for Rollback (0: not given).
//
// The actions that narrow production are never refused for a stale version, since on-call uses
// them from whatever page is open while guardrails move the rollout:
//   - Kill ignores expect; killing a killed rollout answers the current state without a new
//     audit row.
//   - Pause ignores expect; pausing a paused rollout answers the current state without a new
//     audit row.
//   - Rollback with the stage seen ignores expect and goes one stage down from that stage; when
//     the rollout has moved to another stage since, it is refused with *StageMovedError naming
//     both. Without the stage seen, expect applies as for any change.
//
// The actions that widen production (Advance, Resume, Revive to a stage or with production
// cohorts) are refused with *BreachedError while any guardrail is breached unless override is
// true, in which case the audit row says so and names the breached signals (checkWidening).
// Advance without a version during the soak of a stage that auto-advance entered is refused
// with *AutoAdvancedError: whoever sent it may not have seen the auto-advance.
func (s *Service) Act(ctx context.Context, act Action, stage int, expect int64, override bool, a db.Audit) (rollout.Rollout, error) {
	attempts := 3
	seen := 0
	switch {
	case act == Kill, act == Pause:
		expect, attempts = 0, 100
	case act == Rollback && stage > 0:
		expect, attempts, seen = 0, 100, stage
	}
	extra := map[string]any{}
	return s.change(ctx, expect, attempts, a, "rollout."+string(act), extra, func(r rollout.Rollout, now time.Time) (rollout.Rollout, error) {
		clear(extra)
		before := r
		var err error
		switch act {
		case Advance:
			r, err = r.Advance(now)
		case Pause:
			if r.State != rollout.Paused { // paused already: nothing to change, nothing to audit
				r, err = r.Pause()
			}
		case Resume:
			r, err = r.Resume(now)
		case Rollback:
			if seen > 0 && r.Stage != seen && r.State != rollout.Killed {
				return before, &StageMovedError{Seen: seen, Now: r.Stage, Percent: r.Percent()}
			}
			r, err = r.Rollback(now)
		case Kill:
			if r.State != rollout.Killed { // killed already: nothing to change, nothing to audit
				r, err = r.Kill()
			}
		case Revive:
			r, err = r.Revive(stage, now)
		default:
			err = rollout.TransitionError("unknown action " + string(act))
		}
		if err != nil {
			return before, err
		}
		if act == Advance && expect == 0 && before.RecentAutoAdvance(now) {
			return before, &AutoAdvancedError{Percent: before.Percent(), Since: before.StageStartedAt, Until: before.StageStartedAt.Add(before.Stages[before.Stage-1].MinSoak)}
		}
		if act == Advance || act == Resume || act == Revive && (r.Stage > 0 || s.productionCohorts()) {
			if err := s.checkWidening(ctx, before, now, override, extra); err != nil {
				return before, err
			}
		}
		return r, nil
	})
}

// StageMovedError refuses a rollback made from a page (or script) that saw another stage: the
// rollout moved since, and going one stage down from where it is now may not be what was meant.
type StageMovedError struct {
	Seen, Now int     // the stage seen, the stage now
	Percent   float64 // the percentage now
}

func (e *StageMovedError) Error() string {
	return fmt.Sprintf("the rollout is at stage %d (%s) now, not at stage %d as you saw it; nothing was rolled back: check the stage, then roll back again if you still mean to",
		e.Now, rollout.FormatPercent(e.Percent), e.Seen)
}

// Overriding is the option of a cohort change that goes ahead although guardrails are breached
// (checkWidening); the audit row records it with the breached signals.
type Overriding bool

func overriding(o []Overriding) bool { return len(o) > 0 && bool(o[0]) }

// checkWidening refuses a change that can send more users to production while any guardrail
// of r is breached, unless override is set; then extra (the audit row's after) records the
// override and the breached signals. It is the one check behind every widening change: advance,
// resume, revive, and the cohort changes that can widen production (see widens).
func (s *Service) checkWidening(ctx context.Context, r rollout.Rollout, now time.Time, override bool, extra map[string]any) error {
	sts, err := s.statuses(ctx, r, now, false)
	if err != nil {
		return err
	}
	b := rollout.Breaches(sts)
	if len(b) == 0 {
		return nil
	}
	if !override {
		return &BreachedError{Breaches: b}
	}
	signals := make([]string, 0, len(b))
	for _, st := range b {
		signals = append(signals, string(st.Guardrail.Signal))
	}
	extra["override_guardrails"], extra["breached"] = true, signals
	return nil
}

// checkCohortWidening is checkWidening for a cohort change, against the current rollout, when
// widens; the override's record goes into after (the audit row's). While the rollout is killed no
// cohort sends anyone to production (the revive that ends it is checked), so nothing is held.
func (s *Service) checkCohortWidening(ctx context.Context, widens bool, o []Overriding, after map[string]any) error {
	r := s.Snapshot().Rollout
	if !widens || r.State == rollout.Killed {
		return nil
	}
	return s.checkWidening(ctx, r, s.cfg.Now(), overriding(o), after)
}

// productionCohorts reports whether any cohort sends users to production.
func (s *Service) productionCohorts() bool {
	for _, c := range s.Snapshot().Cohorts {
		if c.Env == rollout.Production {
			return true
		}
	}
	return false
}

// BreachedError refuses a change that can send more users to production while guardrails are
// breached, naming them; the change goes through when repeated with the override.
type BreachedError struct {
	Breaches []rollout.Status
}

func (e *BreachedError) Error() string {
	parts := make([]string, 0, len(e.Breaches))
	for _, b := range e.Breaches {
		parts = append(parts, b.Describe())
	}
	return "guardrails are breached: " + strings.Join(parts, "; ") + "; a change that can send more users to production now needs an explicit override of the guardrails"
}

// Labels names the breached guardrails as a person calls them.
func (e *BreachedError) Labels() []string {
	out := make([]string, 0, len(e.Breaches))
	for _, b := range e.Breaches {
		out = append(out, rollout.SignalLabel(b.Guardrail.Signal))
	}
	return out
}

// AutoAdvancedError refuses an advance sent without a version during the soak of a stage that
// auto-advance entered: it may come from someone who saw the previous stage, and would widen
// production twice for one soak. Sending the version seen makes the intent explicit.
type AutoAdvancedError struct {
	Percent      float64
	Since, Until time.Time // the stage's soak
}

func (e *AutoAdvancedError) Error() string {
	return fmt.Sprintf("the rollout auto-advanced to %s, whose soak began at %s and runs until %s; send the version you saw with the advance to advance again",
		rollout.FormatPercent(e.Percent), e.Since.UTC().Format(time.RFC3339), e.Until.UTC().Format(time.RFC3339))
}

// Plan is a change to the rollout's plan and settings; nil fields keep their values.
type Plan struct {
	Stages      *[]rollout.StageInput
	Guardrails  *[]GuardrailInput
	AutoAdvance *bool
	OnBreach    *string
	// AdvanceWithoutVolume lets auto-advance proceed on guardrails that have not seen their
	// minimum volume during the soak.
	AdvanceWithoutVolume *bool
	// Seen is the PlanTag the change was made against (a form's). When set, the change is
	// refused as ErrStale only when what it touches changed since, and the version is not
	// checked: a cohort change or a pause elsewhere does not refuse a plan.
	Seen string
}

// PlanTag fingerprints what a plan save touches and depends on: the stages, the guardrails, the
// settings, and the stage the rollout is at (a new plan lands relative to it).
func PlanTag(r rollout.Rollout) string {
	b, _ := json.Marshal([]any{rollout.StageInputs(r.Stages), GuardrailInputs(r.Guardrails), r.AutoAdvance, r.AdvanceWithoutVolume, r.OnBreach, r.Stage})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// GuardrailInput is a guardrail as a person writes it (window as a duration such as "15m").
type GuardrailInput struct {
	Signal    rollout.Signal `json:"signal"`
	MaxRate   float64        `json:"max_rate"`
	MinVolume int64          `json:"min_volume"`
	Window    string         `json:"window"`
}

// GuardrailInputs writes guardrails back in their input form.
func GuardrailInputs(gs []rollout.Guardrail) []GuardrailInput {
	out := make([]GuardrailInput, 0, len(gs))
	for _, g := range gs {
		out = append(out, GuardrailInput{Signal: g.Signal, MaxRate: g.MaxRate, MinVolume: g.MinVolume, Window: rollout.FormatDuration(g.Window)})
	}
	return out
}

// Configure changes the plan and settings. A started rollout moves to the highest stage of the
// new plan whose percentage is at most the current one, so a new plan never widens production,
// and a plan that changes the current stage's percentage or soak (or lands on another stage)
// restarts its soak (rollout.WithPlan). Bad input is validation.Errors naming the field; nothing
// is stored.
func (s *Service) Configure(ctx context.Context, p Plan, expect int64, a db.Audit) (rollout.Rollout, error) {
	var stages []rollout.Stage
	var guards []rollout.Guardrail
	errs := validation.Errors{}
	if p.Stages != nil {
		var err error
		if stages, err = rollout.ParseStages(*p.Stages); err != nil {
			if err := addFieldErrors(errs, err); err != nil {
				return rollout.Rollout{}, err
			}
		}
	}
	if p.Guardrails != nil {
		guards = make([]rollout.Guardrail, 0, len(*p.Guardrails))
		for i, g := range *p.Guardrails {
			w, err := rollout.ParseDuration(strings.TrimSpace(g.Window))
			if err != nil {
				errs.Add(fmt.Sprintf("guardrails[%d].window", i), fmt.Sprintf("%s: window must be a duration such as 15m or 1h", g.Signal))
				w = time.Minute // checked above; the rest of the row is still checked below
			}
			guards = append(guards, rollout.Guardrail{Signal: g.Signal, MaxRate: g.MaxRate, MinVolume: g.MinVolume, Window: w})
		}
		if err := addFieldErrors(errs, rollout.CheckGuardrails(guards)); err != nil {
			return rollout.Rollout{}, err
		}
	}
	if p.OnBreach != nil && *p.OnBreach != rollout.OnBreachPause && *p.OnBreach != rollout.OnBreachRollback {
		errs.Add("on_breach", "on_breach must be pause or rollback")
	}
	if len(errs) > 0 {
		return rollout.Rollout{}, errs
	}
	if p.Stages == nil && p.Guardrails == nil && p.AutoAdvance == nil && p.OnBreach == nil && p.AdvanceWithoutVolume == nil {
		return rollout.Rollout{}, validation.Problem("nothing to change; send any of stages, guardrails, auto_advance, advance_without_volume, on_breach")
	}
	if p.Seen != "" {
		expect = 0
	}
	return s.change(ctx, expect, 3, a, "rollout.configure", nil, func(r rollout.Rollout, now time.Time) (rollout.Rollout, error) {
		if p.Seen != "" && PlanTag(r) != p.Seen {
			return r, ErrStale
		}
		if p.Stages != nil {
			r = r.WithPlan(stages, now)
		}
		if p.AdvanceWithoutVolume != nil {
			r.AdvanceWithoutVolume = *p.AdvanceWithoutVolume
		}
		if p.Guardrails != nil {
			r.Guardrails = guards
		}
		if p.AutoAdvance != nil {
			r.AutoAdvance = *p.AutoAdvance
		}
		if p.OnBreach != nil {
			r.OnBreach = *p.OnBreach
		}
		return r, nil
	})
}

// addFieldErrors adds the rollout's field errors in err to errs (a field already named keeps its
// first message); any other error is returned.
func addFieldErrors(errs validation.Errors, err error) error {
	if err == nil {
		return nil
	}
	var ve validation.Errors
	if !errors.As(fieldErrors(err), &ve) {
		return err
	}
	for k, v := range ve {
		errs.Add(k, v)
	}
	return nil
}

// fieldErrors maps the rollout's field errors (one, or several at once) to validation.Errors.
func fieldErrors(err error) error {
	var fes rollout.FieldErrors
	if errors.As(err, &fes) {
		out := validation.Errors{}
		for _, fe := range fes {
			out.Add(fe.Field, fe.Message)
		}
		return out
	}
	var fe rollout.FieldError
	if errors.As(err, &fe) {
		return validation.Errors{fe.Field: fe.Message}
	}
	return err
}

// change reads the rollout, applies fn, stores the result if the version is still the one read
// (and expect, when given), audits it with what changed, and swaps in the new snapshot. A change
// that changes nothing stores nothing and answers the current state.
func (s *Service) change(ctx context.Context, expect int64, attempts int, a db.Audit, action string, extra map[string]any, fn func(rollout.Rollout, time.Time) (rollout.Rollout, error)) (rollout.Rollout, error) {
	// A change sent without a version applies to whatever is current: when another change lands
	// between the read and the write, it is read and applied again, up to attempts times (an
	// on-call kill must not be refused because a guardrail paused the rollout a moment before).
	for attempt := 1; ; attempt++ {
		r, err := s.changeOnce(ctx, expect, a, action, extra, fn)
		if errors.Is(err, ErrStale) && expect == 0 && attempt < attempts && ctx.Err() == nil {
			continue
		}
		return r, err
	}
}

func (s *Service) changeOnce(ctx context.Context, expect int64, a db.Audit, action string, extra map[string]any, fn func(rollout.Rollout, time.Time) (rollout.Rollout, error)) (rollout.Rollout, error) {
	row, err := s.db.Rollout(ctx, s.cfg.Key)
	if err != nil {
		return rollout.Rollout{}, err
	}
	if expect != 0 && expect != row.Version {
		return rollout.Rollout{}, ErrStale
	}
	before, err := fromRow(row)
	if err != nil {
		return rollout.Rollout{}, err
	}
	after, err := fn(before, s.cfg.Now())
	var te rollout.TransitionError
	if errors.As(err, &te) {
		return before, validation.Problem(string(te))
	}
	if err != nil {
		return before, err
	}
	next, err := toRow(after)
	if err != nil {
		return before, err
	}
	a.Action, a.Target = action, "rollout:"+s.cfg.Key
	bm, am := Diff(before, after)
	if len(am) == 0 {
		return before, nil // nothing changed
	}
	for k, v := range extra {
		am[k] = v
	}
	a.Before, a.After = bm, am
	stored, err := s.db.UpdateRollout(ctx, next, row.Version, a)
	if err != nil {
		return before, conflict(err)
	}
	s.rebuildAfterCommit(ctx)
	if after.Stage != before.Stage {
		s.log.Info("rollout stage changed", "from", before.Stage, "to", after.Stage, "percent", after.Percent(), "actor", a.Actor)
	}
	return fromRow(stored)
}

// Diff lists the fields that differ between two rollouts, as the audit log's before and after.
func Diff(b, a rollout.Rollout) (map[string]any, map[string]any) {
	bm, am := map[string]any{}, map[string]any{}
	add := func(k string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			bm[k], am[k] = x, y
		}
	}
	add("state", string(b.State), string(a.State))
	add("stage", b.Stage, a.Stage)
	add("percent", b.Percent(), a.Percent())
	add("stages", rollout.StageInputs(b.Stages), rollout.StageInputs(a.Stages))
	add("guardrails", GuardrailInputs(b.Guardrails), GuardrailInputs(a.Guardrails))
	add("auto_advance", b.AutoAdvance, a.AutoAdvance)
	add("advance_without_volume", b.AdvanceWithoutVolume, a.AdvanceWithoutVolume)
	add("on_breach", b.OnBreach, a.OnBreach)
	add("held", b.Held, a.Held)
	return bm, am
}
