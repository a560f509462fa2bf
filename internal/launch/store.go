package launch

import (
	"encoding/json"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// The stored JSON of the plan and the guardrails.
type storedStage struct {
	Percent   float64 `json:"percent"`
	MinSoakMS int64   `json:"min_soak_ms"`
}

type storedGuardrail struct {
	Signal    rollout.Signal `json:"signal"`
	MaxRate   float64        `json:"max_rate"`
	MinVolume int64          `json:"min_volume"`
	WindowMS  int64          `json:"window_ms"`
}

func toRow(r rollout.Rollout) (db.RolloutRow, error) {
	stages := make([]storedStage, 0, len(r.Stages))
	for _, st := range r.Stages {
		stages = append(stages, storedStage{Percent: st.Percent, MinSoakMS: st.MinSoak.Milliseconds()})
	}
	guards := make([]storedGuardrail, 0, len(r.Guardrails))
	for _, g := range r.Guardrails {
		guards = append(guards, storedGuardrail{Signal: g.Signal, MaxRate: g.MaxRate, MinVolume: g.MinVolume, WindowMS: g.Window.Milliseconds()})
	}
	sj, err := json.Marshal(stages)
	if err != nil {
		return db.RolloutRow{}, err
	}
	gj, err := json.Marshal(guards)
	if err != nil {
		return db.RolloutRow{}, err
	}
	return db.RolloutRow{Key: r.Key, Salt: r.Salt, State: string(r.State), Stage: r.Stage, Stages: sj, StageStartedAt: r.StageStartedAt,
		AutoAdvance: r.AutoAdvance, Guardrails: gj, OnBreach: r.OnBreach, Held: r.Held, Version: r.Version, UpdatedBy: r.UpdatedBy,
		StageEnteredBy: r.EnteredBy, AdvanceWithoutVolume: r.AdvanceWithoutVolume}, nil
}

func fromRow(row db.RolloutRow) (rollout.Rollout, error) {
	r := rollout.Rollout{Key: row.Key, Salt: row.Salt, State: rollout.State(row.State), Stage: row.Stage, StageStartedAt: row.StageStartedAt,
		AutoAdvance: row.AutoAdvance, OnBreach: row.OnBreach, Held: row.Held, Version: row.Version, UpdatedAt: row.UpdatedAt, UpdatedBy: row.UpdatedBy,
		EnteredBy: row.StageEnteredBy, AdvanceWithoutVolume: row.AdvanceWithoutVolume}
	var stages []storedStage
	if err := json.Unmarshal(row.Stages, &stages); err != nil {
		return r, err
	}
	for _, st := range stages {
		r.Stages = append(r.Stages, rollout.Stage{Percent: st.Percent, MinSoak: time.Duration(st.MinSoakMS) * time.Millisecond})
	}
	var guards []storedGuardrail
	if err := json.Unmarshal(row.Guardrails, &guards); err != nil {
		return r, err
	}
	for _, g := range guards {
		r.Guardrails = append(r.Guardrails, rollout.Guardrail{Signal: g.Signal, MaxRate: g.MaxRate, MinVolume: g.MinVolume, Window: time.Duration(g.WindowMS) * time.Millisecond})
	}
	return r, nil
}
