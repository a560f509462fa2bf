-- The rollout remembers how its current stage was entered (auto_advance, hand, guardrail, plan;
-- empty for a stage entered before this was recorded), so that a versionless advance during the
-- soak of a stage that auto-advance just entered can be refused, and whether the plan lets
-- auto-advance proceed on guardrails that have not seen their minimum volume during the soak
-- (off by default: without volume a guardrail has no evidence either way).
ALTER TABLE rollout ADD COLUMN stage_entered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE rollout ADD COLUMN advance_without_volume INTEGER NOT NULL DEFAULT 0 CHECK (advance_without_volume IN (0, 1));
