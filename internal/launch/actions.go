package launch

import (
	"context"
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
// stale version is ErrStale. stage is the stage to return to, for Revive.
func (s *Service) Act(ctx context.Context, act Action, stage int, expect int64, a db.Audit) (rollout.Rollout, error) {
	return s.change(ctx, expect, a, "rollout."+string(act), nil, func(r rollout.Rollout, now time.Time) (rollout.Rollout, error) {
		var err error
		switch act {
		case Advance:
			r, err = r.Advance(now)
		case Pause:
			r, err = r.Pause()
		case Resume:
			r, err = r.Resume(now)
		case Rollback:
			r, err = r.Rollback(now)
		case Kill:
			r, err = r.Kill()
		case Revive:
			r, err = r.Revive(stage, now)
		default:
			err = rollout.TransitionError("unknown action " + string(act))
		}
		return r, err
	})
}

// Plan is a change to the rollout's plan and settings; nil fields keep their values.
type Plan struct {
	Stages      *[]rollout.StageInput
	Guardrails  *[]GuardrailInput
	AutoAdvance *bool
	OnBreach    *string
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
// new plan whose percentage is at most the current one, so a new plan never widens production. Bad input is validation.Errors naming the field; nothing is stored.
func (s *Service) Configure(ctx context.Context, p Plan, expect int64, a db.Audit) (rollout.Rollout, error) {
	var stages []rollout.Stage
	var guards []rollout.Guardrail
	if p.Stages != nil {
		var err error
		if stages, err = rollout.ParseStages(*p.Stages); err != nil {
			return rollout.Rollout{}, fieldErrors(err)
		}
	}
	if p.Guardrails != nil {
		guards = make([]rollout.Guardrail, 0, len(*p.Guardrails))
		for i, g := range *p.Guardrails {
			w, err := rollout.ParseDuration(strings.TrimSpace(g.Window))
			if err != nil {
				return rollout.Rollout{}, validation.Errors{fmt.Sprintf("guardrails[%d].window", i): "window must be a duration such as 15m or 1h"}
			}
			guards = append(guards, rollout.Guardrail{Signal: g.Signal, MaxRate: g.MaxRate, MinVolume: g.MinVolume, Window: w})
		}
		if err := rollout.CheckGuardrails(guards); err != nil {
			return rollout.Rollout{}, fieldErrors(err)
		}
	}
	if p.OnBreach != nil && *p.OnBreach != rollout.OnBreachPause && *p.OnBreach != rollout.OnBreachRollback {
		return rollout.Rollout{}, validation.Errors{"on_breach": "on_breach must be pause or rollback"}
	}
	if p.Stages == nil && p.Guardrails == nil && p.AutoAdvance == nil && p.OnBreach == nil {
		return rollout.Rollout{}, validation.Problem("nothing to change; send any of stages, guardrails, auto_advance, on_breach")
	}
	return s.change(ctx, expect, a, "rollout.configure", nil, func(r rollout.Rollout, now time.Time) (rollout.Rollout, error) {
		if p.Stages != nil {
			// Keep the share of users in production from growing with a new plan: stay at the
			// highest new stage whose percentage is at most the current one.
			old := r.Stages
			r.Stages = stages
			if r.Stage > 0 {
				current := old[min(r.Stage, len(old))-1].Percent // the stage's own share, killed or not
				r.Stage = 0
				for i, st := range stages {
					if st.Percent <= current {
						r.Stage = i + 1
					}
				}
			}
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
// (and expect, when given), audits it with what changed, and swaps in the new snapshot.
func (s *Service) change(ctx context.Context, expect int64, a db.Audit, action string, extra map[string]any, fn func(rollout.Rollout, time.Time) (rollout.Rollout, error)) (rollout.Rollout, error) {
	// A change sent without a version applies to whatever is current: when another change lands
	// between the read and the write, it is read and applied again (an on-call kill must not be
	// refused because a guardrail paused the rollout a moment before).
	for attempt := 0; ; attempt++ {
		r, err := s.changeOnce(ctx, expect, a, action, extra, fn)
		if errors.Is(err, ErrStale) && expect == 0 && attempt < 3 {
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
	if len(am) == 0 && action == "rollout.configure" {
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
	add("on_breach", b.OnBreach, a.OnBreach)
	add("held", b.Held, a.Held)
	return bm, am
}
