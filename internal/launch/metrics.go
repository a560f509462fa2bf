package launch

import (
	"time"

	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// checkedHealth is the guardrails' verdict at a Tick.
type checkedHealth struct {
	at       time.Time
	statuses []rollout.Status
}

// metricsState is the rollout now, with the guardrails as the last Tick saw them (evaluating
// them again for a scrape would query the events for nothing new).
func (s *Service) metricsState() metrics.RolloutState {
	snap := s.Snapshot()
	r := snap.Rollout
	st := metrics.RolloutState{State: string(r.State), Stage: r.Stage, Stages: len(r.Stages), ProductionRatio: r.Percent() / 100,
		Held: r.Held != "", StageStartedAt: r.StageStartedAt, Reach: s.reach.Count(r.Stage)}
	if c := s.checked.Load(); c != nil {
		st.GuardrailsCheckedAt = c.at
		for _, g := range c.statuses {
			st.Guardrails = append(st.Guardrails, metrics.GuardrailState{Signal: string(g.Guardrail.Signal), Bad: g.Figures.Bad,
				Total: g.Figures.Total, MaxRatio: g.Guardrail.MaxRate, MinVolume: g.Guardrail.MinVolume, Window: g.Guardrail.Window,
				Breached: g.Breached})
		}
	}
	return st
}
