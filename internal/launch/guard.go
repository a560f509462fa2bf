package launch

import (
	"context"
	"errors"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Health is the guardrails' verdict now, and what auto-advance would do.
type Health struct {
	Statuses    []rollout.Status
	Breaches    []rollout.Status
	Waiting     []rollout.Status // guardrails below their minimum volume during the soak (auto-advance waits)
	NextAdvance time.Time        // zero when auto-advance will not advance
	Advance     bool             // due now
	Why         string           // why it will or will not advance
}

// Health evaluates the guardrails over their windows, as of now, and, when auto-advance could
// move the rollout on, what each guardrail has seen since the stage began.
func (s *Service) Health(ctx context.Context) (Health, error) {
	r := s.Snapshot().Rollout
	now := s.cfg.Now()
	_, could := r.NextAdvance()
	statuses, err := s.statuses(ctx, r, now, could && !r.AdvanceWithoutVolume)
	if err != nil {
		return Health{}, err
	}
	h := Health{Statuses: statuses, Breaches: rollout.Breaches(statuses)}
	if could && !r.AdvanceWithoutVolume {
		h.Waiting = rollout.WaitingForData(statuses)
	}
	h.Advance, h.Why = r.ShouldAdvance(now, statuses)
	if at, ok := r.NextAdvance(); ok {
		h.NextAdvance = at
	}
	return h, nil
}

// statuses evaluates r's guardrails over their windows as of now and, when soak is set, fills in
// what each has seen since the stage began (Status.Soak). NB: the soak's figures are read only
// when the window does not already answer: a window that lies inside the soak and holds the
// minimum volume stands in for them (the soak holds at least as much), so a long soak is not
// counted again on every tick.
func (s *Service) statuses(ctx context.Context, r rollout.Rollout, now time.Time, soak bool) ([]rollout.Status, error) {
	figures := func(since time.Time) (map[string]db.SignalCount, error) { return nil, nil }
	if s.cfg.Figures != nil {
		figures = func(since time.Time) (map[string]db.SignalCount, error) {
			return s.cfg.Figures(ctx, since, time.Time{})
		}
	}
	cache := map[time.Time]map[string]db.SignalCount{}
	var ferr error
	read := func(since time.Time, signal rollout.Signal) rollout.Figures {
		figs, ok := cache[since]
		if !ok && ferr == nil {
			figs, ferr = figures(since)
			cache[since] = figs
		}
		c := figs[string(signal)]
		return rollout.Figures{Bad: c.Bad, Total: c.Total}
	}
	statuses := rollout.Evaluate(r.Guardrails, func(g rollout.Guardrail) rollout.Figures { return read(now.Add(-g.Window), g.Signal) })
	if soak {
		for i, st := range statuses {
			g := st.Guardrail
			if inside := !now.Add(-g.Window).Before(r.StageStartedAt); inside && st.Figures.Total >= g.MinVolume {
				statuses[i].Soak = st.Figures
				continue
			}
			statuses[i].Soak = read(r.StageStartedAt, g.Signal)
		}
	}
	return statuses, ferr
}

// Tick is one round of the rollout's own work: a guardrail breach pauses the rollout (or rolls
// it back a stage) with an audit row carrying the figures; otherwise a finished soak advances
// it. Both are made against the version just read, so two servers, or a person acting at the
// same moment, never make it move twice: the loser's change is stale and dropped.
func (s *Service) Tick(ctx context.Context) error {
	// A snapshot behind the stored state (a rebuild after a change failed) is caught up first, or
	// every change below would be made against an old version and dropped.
	if row, err := s.db.Rollout(ctx, s.cfg.Key); err != nil {
		return err
	} else if row.Version != s.Snapshot().Version() {
		if err := s.rebuild(ctx); err != nil {
			return err
		}
	}
	r := s.Snapshot().Rollout
	h, err := s.Health(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	s.checked.Store(&checkedHealth{at: now, statuses: h.Statuses})
	a := db.Audit{Actor: "system (guardrails)"}
	if next, changed := r.OnBreachOf(h.Breaches, now); changed {
		figs := map[string]any{}
		for _, b := range h.Breaches {
			figs[string(b.Guardrail.Signal)] = map[string]any{"bad": b.Figures.Bad, "total": b.Figures.Total, "rate": b.Figures.Rate(),
				"max_rate": b.Guardrail.MaxRate, "window": rollout.FormatDuration(b.Guardrail.Window)}
		}
		_, err := s.change(ctx, r.Version, 1, a, "rollout.guardrail_breach", map[string]any{"figures": figs},
			func(rollout.Rollout, time.Time) (rollout.Rollout, error) { return next, nil })
		if err == nil {
			s.log.Warn("rollout held by a guardrail", "held", next.Held, "state", string(next.State), "stage", next.Stage)
			for _, b := range h.Breaches {
				s.cfg.Metrics.GuardrailTripped(string(b.Guardrail.Signal))
			}
		}
		return ignoreStale(err)
	}
	if h.Advance {
		a.Actor = "system (auto-advance)"
		_, err := s.change(ctx, r.Version, 1, a, "rollout.advance", nil, func(r rollout.Rollout, now time.Time) (rollout.Rollout, error) { return r.AdvanceAuto(now) })
		return ignoreStale(err)
	}
	return nil
}

// ignoreStale drops a change lost to a concurrent one: the next tick looks again.
func ignoreStale(err error) error {
	var p validation.Problem
	if errors.Is(err, ErrStale) || errors.As(err, &p) {
		return nil
	}
	return err
}

// round is one tick of the loop: Tick while this instance leads, nothing on the others.
func (s *Service) round(ctx context.Context) error {
	if !s.cfg.Leader.Leading() {
		return nil
	}
	return s.Tick(ctx)
}

// Run ticks every interval until ctx ends, persisting the reach counters every minute and at the
// end. Only the leading instance ticks (cluster.Leader); every instance saves its own reach.
// Times are read from the stored state, so a restart picks up a soak where it was.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	lastSave := time.Now()
	for {
		select {
		case <-ctx.Done():
			if err := s.SaveReach(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("save rollout reach", "error", err)
			}
			return
		case <-t.C:
		}
		if err := s.round(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("rollout tick", "error", err)
		}
		if time.Since(lastSave) >= time.Minute {
			lastSave = time.Now()
			if err := s.SaveReach(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("save rollout reach", "error", err)
			}
		}
	}
}

// Trend is a guardrail's rate over the last points windows, oldest first (a window with no
// observations is -1), for the page's sparkline.
func (s *Service) Trend(ctx context.Context, g rollout.Guardrail, points int) ([]float64, error) {
	now := s.cfg.Now()
	out := make([]float64, points)
	for i := range points {
		until := now.Add(-time.Duration(points-1-i) * g.Window)
		figs, err := s.cfg.Figures(ctx, until.Add(-g.Window), until)
		if err != nil {
			return nil, err
		}
		c := figs[string(g.Signal)]
		out[i] = -1
		if c.Total > 0 {
			out[i] = float64(c.Bad) / float64(c.Total)
		}
	}
	return out, nil
}

// Check decides for a user without counting the decision in the reach (a person asking).
func (s *Service) Check(u rollout.User) rollout.Decision { return s.Snapshot().Decide(u) }

// Preview says what advancing would do to users: how many go to production now, and how many
// would at the next stage. ok is false when there is no next stage.
func (s *Service) Preview(users []rollout.User) (now, next int, nextPercent float64, ok bool) {
	snap := s.Snapshot()
	r := snap.Rollout
	if r.State == rollout.Killed || r.Stage >= len(r.Stages) {
		return 0, 0, 0, false
	}
	r.Stage++
	nextSnap := snap.AtStage(r.Stage)
	for _, u := range users {
		if snap.Decide(u).Env == rollout.Production {
			now++
		}
		if nextSnap.Decide(u).Env == rollout.Production {
			next++
		}
	}
	return now, next, r.Percent(), true
}
