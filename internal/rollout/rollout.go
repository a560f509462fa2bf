// Package rollout is the production rollout's logic: which environment a user goes to (cohorts,
// then the current stage's percentage), the staged plan and its actions (advance, pause, resume,
// rollback, kill), guardrail evaluation and auto-advance. It is pure: no I/O, no clock reads
// (times are passed in), and it imports no other package of the module. Storage, HTTP and the
// error signals it evaluates live elsewhere.
package rollout

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Env is where a decision sends a user.
type Env string

// The environments a decision can name.
const (
	Production Env = "production"
	Sandbox    Env = "sandbox" // internal testers
	Off        Env = "off"     // not in the rollout: the app keeps its pre-launch path
)

// ParseEnv validates an environment name from outside input.
func ParseEnv(s string) (Env, bool) {
	switch e := Env(s); e {
	case Production, Sandbox, Off:
		return e, true
	}
	return "", false
}

// State is the rollout's state.
type State string

// The rollout's states. Paused holds the current stage's percentage and stops auto-advance;
// killed sends nobody to production, whatever a cohort says.
const (
	Active State = "active"
	Paused State = "paused"
	Killed State = "killed"
)

// Stage is one step of the plan: the share of users in production, and how long it must run
// before the next step.
type Stage struct {
	Percent float64
	MinSoak time.Duration
}

// Limits on a plan.
const (
	MaxStages    = 20
	MaxSoak      = 90 * 24 * time.Hour
	BucketCount  = 10_000
	DefaultKey   = "tensfer-production"
	DefaultOnHit = OnBreachPause
)

// DefaultStages is the plan of a fresh install: 1, 5, 25, 50 and 100 %, a day each.
func DefaultStages() []Stage {
	return []Stage{{1, 24 * time.Hour}, {5, 24 * time.Hour}, {25, 24 * time.Hour}, {50, 24 * time.Hour}, {100, 0}}
}

// What a guardrail breach does.
const (
	OnBreachPause    = "pause"
	OnBreachRollback = "rollback"
)

// Rollout is the stored state of the rollout. Stage 0 is not started (0 %); stage N is the Nth
// entry of Stages.
type Rollout struct {
	Key            string
	Salt           string // never changes during a rollout: it decides every user's bucket
	State          State
	Stage          int
	Stages         []Stage
	StageStartedAt time.Time // when the current stage began (zero before the first)
	AutoAdvance    bool
	Guardrails     []Guardrail
	OnBreach       string // OnBreachPause | OnBreachRollback
	Version        int64  // bumped by every change; a change made against another version is refused
	UpdatedAt      time.Time
	UpdatedBy      string
	// Held says why the rollout stopped by itself (a guardrail breach), until someone acts.
	Held string
	// AdvanceWithoutVolume lets auto-advance proceed on guardrails that have not seen their
	// minimum volume during the soak: an explicit choice of the plan, off by default, since
	// without volume a guardrail has no evidence either way.
	AdvanceWithoutVolume bool
	// EnteredBy is how the current stage was entered (EnteredByHand, EnteredByAutoAdvance, ...;
	// empty when not known, for stages entered before it was recorded).
	EnteredBy string
}

// How the current stage was entered.
const (
	EnteredByHand        = "hand"         // a person's (or a token's) advance, rollback or revive
	EnteredByAutoAdvance = "auto_advance" // auto-advance after a soak
	EnteredByGuardrail   = "guardrail"    // a breach rolled it back
	EnteredByPlan        = "plan"         // a new plan moved the rollout to another stage
)

// New returns a fresh rollout: not started, active, the default plan and guardrails.
func New(key, salt string) Rollout {
	return Rollout{Key: key, Salt: salt, State: Active, Stages: DefaultStages(), Guardrails: DefaultGuardrails(), OnBreach: DefaultOnHit, Version: 1}
}

// Percent is the share of users the percentage sends to production now.
func (r Rollout) Percent() float64 {
	if r.State == Killed || r.Stage <= 0 || r.Stage > len(r.Stages) {
		return 0
	}
	return r.Stages[r.Stage-1].Percent
}

// TransitionError is an action that the rollout's state does not allow; its text says why.
type TransitionError string

func (e TransitionError) Error() string { return string(e) }

// Advance moves to the next stage (from not started, to the first).
func (r Rollout) Advance(now time.Time) (Rollout, error) {
	switch {
	case r.State == Killed:
		return r, TransitionError("the rollout is killed; an admin must bring it back to a stage first")
	case r.State == Paused:
		return r, TransitionError("the rollout is paused; resume it before advancing")
	case r.Stage >= len(r.Stages):
		return r, TransitionError(fmt.Sprintf("the rollout is already at its last stage (%s)", FormatPercent(r.Percent())))
	}
	r.Stage++
	r.StageStartedAt = now
	r.Held = ""
	r.EnteredBy = EnteredByHand
	return r, nil
}

// AdvanceAuto is Advance made by auto-advance: the stage records that it was entered so, which
// makes a versionless advance during its soak suspect (RecentAutoAdvance).
func (r Rollout) AdvanceAuto(now time.Time) (Rollout, error) {
	r, err := r.Advance(now)
	if err == nil {
		r.EnteredBy = EnteredByAutoAdvance
	}
	return r, err
}

// RecentAutoAdvance reports whether the current stage was entered by auto-advance and is still
// within its soak at now. An advance that names no version then may come from a page or script
// that has not seen the auto-advance, and would widen production twice for one soak.
func (r Rollout) RecentAutoAdvance(now time.Time) bool {
	if r.EnteredBy != EnteredByAutoAdvance || r.Stage < 1 || r.Stage > len(r.Stages) {
		return false
	}
	return now.Before(r.StageStartedAt.Add(r.Stages[r.Stage-1].MinSoak))
}

// Pause holds the current percentage and stops auto-advance.
func (r Rollout) Pause() (Rollout, error) {
	switch r.State {
	case Killed:
		return r, TransitionError("the rollout is killed; pausing it would change nothing")
	case Paused:
		return r, TransitionError("the rollout is already paused")
	}
	r.State = Paused
	return r, nil
}

// Resume lets a paused rollout advance again; the soak of the current stage restarts.
func (r Rollout) Resume(now time.Time) (Rollout, error) {
	switch r.State {
	case Killed:
		return r, TransitionError("the rollout is killed; an admin must bring it back to a stage first")
	case Active:
		return r, TransitionError("the rollout is not paused")
	}
	r.State = Active
	r.StageStartedAt = now
	r.Held = ""
	return r, nil
}

// Rollback returns to the previous stage (to not started from the first) and pauses there, so
// nothing advances again until someone resumes.
func (r Rollout) Rollback(now time.Time) (Rollout, error) {
	switch {
	case r.State == Killed:
		return r, TransitionError("the rollout is killed; an admin must bring it back to a stage first")
	case r.Stage == 0:
		return r, TransitionError("the rollout has not started; there is no stage to roll back from")
	}
	r.Stage--
	r.StageStartedAt = now
	r.State = Paused
	r.EnteredBy = EnteredByHand
	return r, nil
}

// Kill sends nobody to production, at once, whatever the cohorts say.
func (r Rollout) Kill() (Rollout, error) {
	if r.State == Killed {
		return r, TransitionError("the rollout is already killed")
	}
	r.State = Killed
	return r, nil
}

// Revive leaves killed for the named stage (0 to the number of stages), paused there: a
// deliberate step that an admin takes, after which someone resumes.
func (r Rollout) Revive(stage int, now time.Time) (Rollout, error) {
	switch {
	case r.State != Killed:
		return r, TransitionError("the rollout is not killed")
	case stage < 0 || stage > len(r.Stages):
		return r, TransitionError(fmt.Sprintf("stage must be from 0 (not started) to %d", len(r.Stages)))
	}
	r.State, r.Stage, r.StageStartedAt, r.Held, r.EnteredBy = Paused, stage, now, "", EnteredByHand
	return r, nil
}

// WithPlan replaces the plan. A started rollout moves to the highest new stage whose percentage
// is at most its current stage's own (killed or not), so a new plan never widens production. When
// that changes the current stage's percentage or soak, or lands on another stage, the soak
// restarts at now: a stage never inherits soak time it did not run, whatever the plan said
// before. A plan that leaves the current stage as it was keeps its soak.
func (r Rollout) WithPlan(stages []Stage, now time.Time) Rollout {
	old, oldStage := r.Stages, r.Stage
	r.Stages = stages
	if r.Stage == 0 {
		return r
	}
	cur := old[min(oldStage, len(old))-1]
	r.Stage = 0
	for i, st := range stages {
		if st.Percent <= cur.Percent {
			r.Stage = i + 1
		}
	}
	if r.Stage != oldStage {
		r.EnteredBy = EnteredByPlan
	}
	if r.Stage != oldStage || r.Stage > 0 && stages[r.Stage-1] != cur {
		r.StageStartedAt = now
	}
	return r
}

// NextAdvance is when auto-advance will move to the next stage, if it will: the rollout is
// active, started, not at its last stage, and auto-advance is on. Guardrails may still hold it.
func (r Rollout) NextAdvance() (time.Time, bool) {
	if !r.AutoAdvance || r.State != Active || r.Stage < 1 || r.Stage >= len(r.Stages) {
		return time.Time{}, false
	}
	return r.StageStartedAt.Add(r.Stages[r.Stage-1].MinSoak), true
}

// FormatPercent writes a percentage as people read it: "5 %", "0.5 %".
func FormatPercent(p float64) string {
	return strconv.FormatFloat(p, 'f', -1, 64) + " %"
}

// StageInput is a plan stage as written by a person: a percentage and a soak duration such as
// "24h" (empty for none).
type StageInput struct {
	Percent float64 `json:"percent"`
	MinSoak string  `json:"min_soak"`
}

// ParseStages checks a plan: 1 to MaxStages stages, percentages in (0, 100] and increasing,
// soaks that parse and are at most MaxSoak. Every problem of every stage is reported at once,
// as FieldErrors naming stages[i].field.
func ParseStages(in []StageInput) ([]Stage, error) {
	if len(in) == 0 {
		return nil, FieldErrors{{"stages", "the plan needs at least one stage"}}
	}
	if len(in) > MaxStages {
		return nil, FieldErrors{{"stages", fmt.Sprintf("the plan has %d stages; at most %d", len(in), MaxStages)}}
	}
	var errs FieldErrors
	out := make([]Stage, 0, len(in))
	prev := 0.0
	for i, s := range in {
		field := fmt.Sprintf("stages[%d]", i)
		switch {
		case math.IsNaN(s.Percent) || math.IsInf(s.Percent, 0):
			errs = append(errs, FieldError{field + ".percent", fmt.Sprintf("stage %d: percent must be a finite number above 0 and at most 100", i+1)})
		case !(s.Percent > 0 && s.Percent <= 100):
			errs = append(errs, FieldError{field + ".percent", fmt.Sprintf("stage %d: percent must be above 0 and at most 100 (got %v)", i+1, s.Percent)})
		case s.Percent <= prev:
			errs = append(errs, FieldError{field + ".percent", fmt.Sprintf("stage %d: percentages must increase (%v after %v)", i+1, s.Percent, prev)})
		case math.Abs(s.Percent*100-math.Round(s.Percent*100)) > 1e-6: // 2.3*100 is 229.99999999999997
			errs = append(errs, FieldError{field + ".percent", fmt.Sprintf("stage %d: percent has at most two decimals (one bucket is 0.01 %%)", i+1)})
		}
		var soak time.Duration
		if v := strings.TrimSpace(s.MinSoak); v != "" {
			d, err := ParseDuration(v)
			if err != nil || d < 0 || d > MaxSoak {
				errs = append(errs, FieldError{field + ".min_soak", fmt.Sprintf("stage %d: min_soak must be a duration such as 30m, 24h or 7d, at most 90d (got %q)", i+1, v)})
			}
			soak = d
		}
		out = append(out, Stage{Percent: s.Percent, MinSoak: soak})
		if s.Percent > prev && s.Percent <= 100 {
			prev = s.Percent // a bad percentage does not make every later stage bad too
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// StageInputs writes stages back in their input form.
func StageInputs(stages []Stage) []StageInput {
	out := make([]StageInput, 0, len(stages))
	for _, s := range stages {
		out = append(out, StageInput{Percent: s.Percent, MinSoak: FormatDuration(s.MinSoak)})
	}
	return out
}

// maxDays is the most whole days a time.Duration holds.
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

// ParseDuration is time.ParseDuration that also takes whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		if n > maxDays || n < -maxDays {
			return 0, fmt.Errorf("duration %q is out of range", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// FormatDuration writes a duration compactly, in the form the API documents: "24h", "90m",
// "168h", "0s" (days are accepted on input only).
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

// FieldError is bad input in one field, said for a person.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Message }

// FieldErrors is every problem found in one input, each naming its field, so that a form or an
// API answer can report them all at once rather than the first alone.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	msgs := make([]string, 0, len(e))
	for _, fe := range e {
		msgs = append(msgs, fe.Message)
	}
	return strings.Join(msgs, "; ")
}

// Err returns e as an error, or nil when there is nothing to fix.
func (e FieldErrors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}
