package launch

// SHIM (issue 17, controls branch): engine's branch defines BreachedError and gives Act the
// override flag (`Act(ctx, act, stage, expect, override, a)`). Until it is merged, the page calls
// ActWithOverride. At the merge, delete this file and rename the one call of ActWithOverride in
// internal/web/rollout_page.go to Act.

import (
	"context"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// BreachedError refuses an Advance or a Resume while guardrails are breached, unless overridden.
type BreachedError struct{ Breaches []rollout.Status }

func (e *BreachedError) Error() string {
	labels := make([]string, 0, len(e.Breaches))
	for _, b := range e.Breaches {
		labels = append(labels, b.Describe())
	}
	return "guardrails are breached: " + strings.Join(labels, "; ")
}

// ActWithOverride is Act with the override of issue 17 (defect 10): Advance and Resume while a
// guardrail is breached are refused with *BreachedError unless override is set; an override is
// audited with "override_guardrails": true and the breached signals.
func (s *Service) ActWithOverride(ctx context.Context, act Action, stage int, expect int64, override bool, a db.Audit) (rollout.Rollout, error) {
	if act != Advance && act != Resume {
		return s.Act(ctx, act, stage, expect, a)
	}
	if expect != 0 && expect != s.Snapshot().Version() {
		return s.Snapshot().Rollout, ErrStale // a stale page learns that first
	}
	h, err := s.Health(ctx)
	if err != nil {
		return rollout.Rollout{}, err
	}
	if len(h.Breaches) == 0 {
		return s.Act(ctx, act, stage, expect, a)
	}
	if !override {
		return s.Snapshot().Rollout, &BreachedError{Breaches: h.Breaches}
	}
	signals := make([]string, 0, len(h.Breaches))
	for _, b := range h.Breaches {
		signals = append(signals, string(b.Guardrail.Signal))
	}
	extra := map[string]any{"override_guardrails": true, "breached": signals}
	return s.change(ctx, expect, a, "rollout."+string(act), extra, func(r rollout.Rollout, now time.Time) (rollout.Rollout, error) {
		if act == Advance {
			return r.Advance(now)
		}
		return r.Resume(now)
	})
}
